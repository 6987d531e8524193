namespace Konduit.Hosting;

/// <summary>
/// What a store adapter tells the core when it registers itself with
/// <see cref="KonduitStoreRegistrationExtensions.AddStore{TOptions}(IKonduitBuilder, string, KonduitStoreDefinition{TOptions})"/>.
/// </summary>
/// <typeparam name="TOptions">The adapter's options, bound from <c>Konduit:&lt;StoreName&gt;</c>.</typeparam>
public sealed class KonduitStoreDefinition<TOptions> where TOptions : TaskStoreOptions
{
    /// <summary>Creates the store (once per container, only when this store is the selected one). Must not connect eagerly.</summary>
    public required Func<IServiceProvider, TOptions, ITaskStore> Factory { get; init; }

    /// <summary>
    /// Extra start-up checks, run only when this store is selected. Receives the options and the configuration
    /// path of the store's section (e.g. <c>Konduit:Postgres</c>); returns failure messages, each naming its key.
    /// <see cref="TaskStoreOptions.Validate"/> is always run as well.
    /// </summary>
    public Func<IServiceProvider, TOptions, string, IEnumerable<string>>? Validate { get; init; }

    /// <summary>
    /// Optional work run once when the host starts, before any worker leases (e.g. schema migrations). A failure
    /// stops the host from starting.
    /// </summary>
    public Func<IServiceProvider, ITaskStore, TOptions, CancellationToken, Task>? InitializeAsync { get; init; }
}
