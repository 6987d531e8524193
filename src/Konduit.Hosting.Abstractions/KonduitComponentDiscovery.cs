using System.Reflection;

namespace Konduit.Hosting;

/// <summary>
/// Finds adapters by name through <see cref="KonduitComponentAttribute"/> on assembly <c>Konduit.&lt;Name&gt;</c>, and
/// lists the components of the <c>Konduit.*</c> assemblies the application ships with (for messages).
/// </summary>
public static class KonduitComponentDiscovery
{
    /// <summary>
    /// Registers the component of <paramref name="kind"/> that configuration selects, when no code registered it:
    /// loads <c>Konduit.&lt;name&gt;</c> and runs its adapter. True when the component is registered afterwards.
    /// </summary>
    public static bool RegisterSelected(IKonduitBuilder builder, KonduitComponentKind kind)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(kind);
        var name = builder.Configuration[kind.Key];
        if (string.IsNullOrWhiteSpace(name)) return false;
        if (builder.Components.TryGet(kind, name, out _)) return true;
        // Only plain identifiers become assembly names: configuration is not allowed to load arbitrary files.
        if (!KonduitComponentRegistry.IsIdentifier(name)) return false;
        var assembly = Load("Konduit." + name);
        if (assembly is null) return false;
        foreach (var attribute in assembly.GetCustomAttributes<KonduitComponentAttribute>())
        {
            if (!Matches(attribute, kind, name)) continue;
            ((IKonduitComponentAdapter)Activator.CreateInstance(attribute.AdapterType)!).Register(builder);
            return builder.Components.TryGet(kind, name, out _);
        }
        return false;
    }

    /// <summary>
    /// The components the application could select: those declared by the <c>Konduit.&lt;Name&gt;</c> assemblies
    /// already loaded or shipped in the application's directory. Loads those assemblies; meant for messages.
    /// </summary>
    public static IReadOnlyList<KonduitComponentAttribute> Available()
    {
        var names = AppDomain.CurrentDomain.GetAssemblies().Select(a => a.GetName().Name ?? "")
            .Concat(ShippedAssemblyNames())
            .Where(IsAdapterAssemblyName)
            .Distinct(StringComparer.OrdinalIgnoreCase);
        var found = new List<KonduitComponentAttribute>();
        foreach (var name in names)
        {
            if (Load(name) is { } assembly) found.AddRange(assembly.GetCustomAttributes<KonduitComponentAttribute>());
        }
        return found;
    }

    /// <summary>The names of <paramref name="kind"/> in <see cref="Available"/>, sorted.</summary>
    public static IReadOnlyList<string> AvailableNames(KonduitComponentKind kind)
    {
        ArgumentNullException.ThrowIfNull(kind);
        return [.. Available().Where(a => string.Equals(a.Kind, kind.Key, StringComparison.OrdinalIgnoreCase))
            .Select(a => a.Name).Distinct(StringComparer.OrdinalIgnoreCase).Order(StringComparer.OrdinalIgnoreCase)];
    }

    private static bool Matches(KonduitComponentAttribute attribute, KonduitComponentKind kind, string name) =>
        string.Equals(attribute.Kind, kind.Key, StringComparison.OrdinalIgnoreCase)
        && string.Equals(attribute.Name, name, StringComparison.OrdinalIgnoreCase);

    // Konduit.<Name> with a plain identifier: the only assemblies discovery would ever load.
    private static bool IsAdapterAssemblyName(string name) =>
        name.StartsWith("Konduit.", StringComparison.OrdinalIgnoreCase) && KonduitComponentRegistry.IsIdentifier(name["Konduit.".Length..]);

    private static IEnumerable<string> ShippedAssemblyNames()
    {
        try
        {
            return Directory.EnumerateFiles(AppContext.BaseDirectory, "Konduit.*.dll").Select(f => Path.GetFileNameWithoutExtension(f)).ToList();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static Assembly? Load(string assemblyName)
    {
        var loaded = AppDomain.CurrentDomain.GetAssemblies()
            .FirstOrDefault(a => string.Equals(a.GetName().Name, assemblyName, StringComparison.OrdinalIgnoreCase));
        if (loaded is not null) return loaded;
        try
        {
            return Assembly.Load(new AssemblyName(assemblyName));
        }
        catch (Exception ex) when (ex is FileNotFoundException or FileLoadException or BadImageFormatException)
        {
            // Not referenced by the application: validation reports the unknown name with the available ones.
            return null;
        }
    }
}
