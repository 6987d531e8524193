using System.Reflection;

namespace Konduit.Hosting;

/// <summary>Finds a store adapter by name through <see cref="KonduitStoreAdapterAttribute"/> on assembly <c>Konduit.&lt;Store&gt;</c>.</summary>
internal static class KonduitStoreDiscovery
{
    public static bool TryRegister(IKonduitBuilder builder, string storeName)
    {
        // Only plain identifiers become assembly names: configuration is not allowed to load arbitrary files.
        if (!storeName.All(char.IsAsciiLetterOrDigit)) return false;

        var assembly = FindLoaded(storeName) ?? TryLoad(storeName);
        if (assembly is null) return false;

        foreach (var attribute in assembly.GetCustomAttributes<KonduitStoreAdapterAttribute>())
        {
            if (!string.Equals(attribute.StoreName, storeName, StringComparison.OrdinalIgnoreCase)) continue;
            var adapter = (IKonduitStoreAdapter)Activator.CreateInstance(attribute.AdapterType)!;
            adapter.Register(builder);
            return true;
        }
        return false;
    }

    private static Assembly? FindLoaded(string storeName)
    {
        var wanted = "Konduit." + storeName;
        return AppDomain.CurrentDomain.GetAssemblies()
            .FirstOrDefault(a => string.Equals(a.GetName().Name, wanted, StringComparison.OrdinalIgnoreCase));
    }

    private static Assembly? TryLoad(string storeName)
    {
        try
        {
            return Assembly.Load(new AssemblyName("Konduit." + storeName));
        }
        catch (Exception ex) when (ex is FileNotFoundException or FileLoadException or BadImageFormatException)
        {
            // Not referenced by the application: validation reports the unknown store with the registered names.
            return null;
        }
    }
}
