namespace Konduit.Hosting;

/// <summary>
/// What an adapter tells the core about one component when it registers it with
/// <see cref="KonduitComponentBuilderExtensions.AddComponent{TService, TOptions}"/>: how to create it and, optionally,
/// how to check its settings, what to do at start-up, how to migrate it and what upkeep it needs.
/// </summary>
/// <typeparam name="TService">The service the component provides (<c>ITaskStore</c>, <c>ITaskEventLog</c>, …).</typeparam>
/// <typeparam name="TOptions">The adapter's options, bound from the component's settings section.</typeparam>
public sealed class KonduitComponentDefinition<TService, TOptions>
    where TService : class
    where TOptions : class
{
    /// <summary>Creates the component: once per container, only when configuration selects it. Must not connect.</summary>
    public required Func<IServiceProvider, TOptions, TService> Factory { get; init; }

    /// <summary>
    /// Start-up checks of the settings, run only when the component is selected. Receives the options and the
    /// configuration path of the component's section (e.g. <c>Konduit:Postgres</c>); returns failure messages, each
    /// naming its key (<see cref="KonduitValidation"/> turns an options class's <c>Validate()</c> into such messages).
    /// </summary>
    public Func<IServiceProvider, TOptions, string, IEnumerable<string>>? Validate { get; init; }

    /// <summary>
    /// The start-up step, run once when the host starts, before any worker leases: check that the server answers,
    /// migrate when the settings ask for it, provision. A failure stops the host (for stores); it should be a
    /// <see cref="KonduitStartupException"/> naming the configuration key to fix. The runtime decides the policy per
    /// kind (the event log's step is retried in the background instead, ADR 005).
    /// </summary>
    public Func<KonduitComponentContext, TService, TOptions, CancellationToken, Task>? StartAsync { get; init; }

    /// <summary>Creates or upgrades the component's schema now, whatever the settings say (operator tools). Idempotent.</summary>
    public Func<KonduitComponentContext, TService, TOptions, CancellationToken, Task>? MigrateAsync { get; init; }

    /// <summary>
    /// Periodic upkeep, e.g. deleting expired events where the backend has no native TTL. Run on every node at the
    /// runtime's interval for the kind, so it must be safe to run concurrently; a failure is logged and retried.
    /// </summary>
    public Func<KonduitComponentContext, TService, TOptions, CancellationToken, Task>? MaintainAsync { get; init; }

    /// <summary>
    /// Other settings classes the adapter binds from the same section (e.g. a hosting-only <c>MigrateOnStartup</c>
    /// switch), so that the start-up check of unknown keys knows their keys too.
    /// </summary>
    public IReadOnlyList<Type> AlsoBoundFromSection { get; init; } = [];
}

/// <summary>What a component's start-up step, migration and upkeep receive besides the instance and its options.</summary>
public sealed class KonduitComponentContext
{
    /// <summary>Creates the context.</summary>
    public KonduitComponentContext(IServiceProvider services, string sectionPath)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(sectionPath);
        Services = services;
        SectionPath = sectionPath;
    }

    /// <summary>The container.</summary>
    public IServiceProvider Services { get; }

    /// <summary>The configuration path of the component's section, e.g. <c>Konduit:Postgres</c>.</summary>
    public string SectionPath { get; }

    /// <summary>The full key of <paramref name="setting"/> in the component's section, for messages (<c>Konduit:Postgres:ConnectionString</c>).</summary>
    public string Key(string setting) => $"{SectionPath}:{setting}";
}
