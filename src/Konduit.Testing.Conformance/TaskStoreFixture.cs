using Xunit;

namespace Konduit.Testing.Conformance;

/// <summary>
/// What an adapter provides to run the store conformance suite: a way to create stores against one server.
/// One fixture instance serves one test class (xUnit class fixture); isolate tests by unique queue names
/// (and, where the backend has them, a schema/keyspace/prefix per fixture), never by a new server per test.
/// </summary>
public abstract class TaskStoreFixture : IAsyncLifetime
{
    /// <summary>
    /// Creates a store over this fixture's server. <paramref name="configure"/> adjusts the common options
    /// (payload limit, default retry policy) on the adapter's own options object before the store is built.
    /// Stores created here are disposed by the fixture.
    /// </summary>
    public abstract ValueTask<ITaskStore> CreateStoreAsync(Action<TaskStoreOptions>? configure = null);

    /// <summary>Present when the store declares <see cref="StoreCapabilities.TransactionalEnqueue"/>.</summary>
    public virtual ITransactionalEnqueueHarness? TransactionalEnqueue => null;

    /// <summary>Connects to (or starts) the server and prepares an isolated namespace.</summary>
    public virtual ValueTask InitializeAsync() => ValueTask.CompletedTask;

    /// <summary>Drops what <see cref="InitializeAsync"/> created.</summary>
    public virtual ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }
}

/// <summary>Lets the suite enqueue inside a backend transaction without knowing the backend.</summary>
public interface ITransactionalEnqueueHarness
{
    /// <summary>Opens a backend transaction, enqueues <paramref name="request"/> in it through the store's transactional API, then commits or rolls back.</summary>
    Task<EnqueueResult> EnqueueInTransactionAsync(ITaskStore store, EnqueueRequest request, bool commit, CancellationToken cancellationToken);
}
