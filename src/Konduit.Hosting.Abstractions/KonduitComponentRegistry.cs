using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Konduit.Hosting;

/// <summary>Every component registered on one service collection, by kind and name (names are case-insensitive).</summary>
public sealed class KonduitComponentRegistry
{
    private readonly Dictionary<(string Kind, string Name), KonduitComponent> _components = new(KeyComparer.Instance);

    /// <summary>Creates an empty registry for the Konduit section at <paramref name="sectionPath"/>.</summary>
    public KonduitComponentRegistry(string sectionPath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(sectionPath);
        SectionPath = sectionPath;
    }

    /// <summary>The configuration path of the Konduit section, for messages (e.g. <c>Konduit</c>).</summary>
    public string SectionPath { get; }

    /// <summary>Every registered component, in registration order of kinds and names.</summary>
    public IReadOnlyCollection<KonduitComponent> All => _components.Values;

    /// <summary>Finds component <paramref name="name"/> of <paramref name="kind"/>.</summary>
    public bool TryGet(KonduitComponentKind kind, string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out KonduitComponent? component)
    {
        ArgumentNullException.ThrowIfNull(kind);
        ArgumentNullException.ThrowIfNull(name);
        return _components.TryGetValue((kind.Key, name), out component);
    }

    /// <summary>The names registered for <paramref name="kind"/>, sorted.</summary>
    public IReadOnlyList<string> NamesOf(KonduitComponentKind kind)
    {
        ArgumentNullException.ThrowIfNull(kind);
        return [.. _components.Values.Where(c => c.Kind.Equals(kind)).Select(c => c.Name).Order(StringComparer.OrdinalIgnoreCase)];
    }

    /// <summary>Adds <paramref name="component"/>; false (and nothing changes) when its kind and name are taken.</summary>
    public bool TryAdd(KonduitComponent component)
    {
        ArgumentNullException.ThrowIfNull(component);
        return _components.TryAdd((component.Kind.Key, component.Name), component);
    }

    /// <summary>The registry of <paramref name="services"/>, or null when neither <c>AddKonduit</c> nor <c>AddKonduitStore</c> ran.</summary>
    public static KonduitComponentRegistry? Find(IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        for (var i = services.Count - 1; i >= 0; i--)
        {
            if (services[i].ServiceType == typeof(KonduitComponentRegistry) && services[i].ImplementationInstance is KonduitComponentRegistry registry)
                return registry;
        }
        return null;
    }

    /// <summary>The registry of <paramref name="services"/>, added (as a singleton) on first use.</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">The Konduit section; its path names keys in messages.</param>
    public static KonduitComponentRegistry GetOrAdd(IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        if (Find(services) is { } existing) return existing;
        var path = configuration is IConfigurationSection section ? section.Path : "";
        var registry = new KonduitComponentRegistry(string.IsNullOrEmpty(path) ? "Konduit" : path);
        services.AddSingleton(registry);
        return registry;
    }

    internal static bool IsIdentifier(string name) => name.Length is > 0 and <= 64 && name.All(char.IsAsciiLetterOrDigit);

    private sealed class KeyComparer : IEqualityComparer<(string Kind, string Name)>
    {
        public static readonly KeyComparer Instance = new();

        public bool Equals((string Kind, string Name) x, (string Kind, string Name) y) =>
            StringComparer.OrdinalIgnoreCase.Equals(x.Kind, y.Kind) && StringComparer.OrdinalIgnoreCase.Equals(x.Name, y.Name);

        public int GetHashCode((string Kind, string Name) key) =>
            HashCode.Combine(StringComparer.OrdinalIgnoreCase.GetHashCode(key.Kind), StringComparer.OrdinalIgnoreCase.GetHashCode(key.Name));
    }
}
