namespace Konduit.Hosting;

/// <summary>
/// One registered component, type-erased: what the runtime (or an operator tool) needs to select, check, create,
/// start, migrate and maintain it without knowing its service or options type.
/// </summary>
public sealed class KonduitComponent
{
    internal KonduitComponent(
        KonduitComponentKind kind,
        string name,
        Type serviceType,
        IReadOnlyList<Type> settingsTypes,
        Func<IServiceProvider, object> create,
        Func<IServiceProvider, string, IReadOnlyList<string>> validate,
        Func<IServiceProvider, object, CancellationToken, Task>? start,
        Func<IServiceProvider, object, CancellationToken, Task>? migrate,
        Func<IServiceProvider, object, CancellationToken, Task>? maintain)
    {
        Kind = kind;
        Name = name;
        ServiceType = serviceType;
        SettingsTypes = settingsTypes;
        _create = create;
        _validate = validate;
        Start = start;
        Migrate = migrate;
        Maintain = maintain;
    }

    private readonly Func<IServiceProvider, object> _create;
    private readonly Func<IServiceProvider, string, IReadOnlyList<string>> _validate;

    /// <summary>The component's kind.</summary>
    public KonduitComponentKind Kind { get; }

    /// <summary>The name configuration selects it by (case-insensitive), e.g. <c>Postgres</c>.</summary>
    public string Name { get; }

    /// <summary>The settings section, relative to the Konduit section (<c>Postgres</c>, <c>PostgresEventLog</c>).</summary>
    public string SectionName => Kind.SectionName(Name);

    /// <summary>The service the component provides.</summary>
    public Type ServiceType { get; }

    /// <summary>The classes bound from the settings section: the options type first, then any the adapter also binds.</summary>
    public IReadOnlyList<Type> SettingsTypes { get; }

    /// <summary>The start-up step, or null.</summary>
    public Func<IServiceProvider, object, CancellationToken, Task>? Start { get; }

    /// <summary>The explicit migration, or null when the component has no schema.</summary>
    public Func<IServiceProvider, object, CancellationToken, Task>? Migrate { get; }

    /// <summary>The periodic upkeep, or null.</summary>
    public Func<IServiceProvider, object, CancellationToken, Task>? Maintain { get; }

    /// <summary>Creates a new instance (the caller keeps one per container and owns it).</summary>
    public object Create(IServiceProvider services)
    {
        ArgumentNullException.ThrowIfNull(services);
        return _create(services);
    }

    /// <summary>Checks the settings; every failure names its key under <paramref name="sectionPath"/>.</summary>
    public IReadOnlyList<string> Validate(IServiceProvider services, string sectionPath)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(sectionPath);
        return _validate(services, sectionPath);
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Kind.Key} {Name}";
}
