using Xunit;

namespace Konduit.Testing.Conformance;

/// <summary>
/// What an adapter provides to run the store conformance suite: a way to create stores against one server.
/// One fixture instance serves one test class (xUnit class fixture); isolate tests by unique queue names
/// (and, where the backend has them, a schema/keyspace/prefix per fixture), never by a new server per test.
/// </summary>
public abstract class TaskStoreFixture : IAsyncLifetime
{
    private readonly Lock _storesGate = new();
    private readonly List<ITaskStore> _stores = [];

    /// <summary>
    /// Creates a store over this fixture's server. <paramref name="configure"/> adjusts the common options
    /// (payload limit, default retry policy) on the adapter's own options object before the store is built.
    /// Stores created here are disposed by the fixture.
    /// </summary>
    public abstract ValueTask<ITaskStore> CreateStoreAsync(Action<TaskStoreOptions>? configure = null);

    /// <summary>
    /// Another node's store over the same data as <paramref name="store"/>: by default a new store from
    /// <see cref="CreateStoreAsync"/> (a second instance against the same server, namespace and prefix, sharing no
    /// process memory with the first). A store whose data lives in its process has one node only: its fixture returns
    /// a view of <paramref name="store"/> itself.
    /// </summary>
    public virtual ValueTask<ITaskStore> CreateOtherNodeAsync(ITaskStore store) => CreateStoreAsync();

    /// <summary>Present when the store declares <see cref="StoreCapabilities.TransactionalEnqueue"/>.</summary>
    public virtual ITransactionalEnqueueHarness? TransactionalEnqueue => null;

    /// <summary>Connects to (or starts) the server and prepares an isolated namespace.</summary>
    public virtual ValueTask InitializeAsync() => ValueTask.CompletedTask;

    /// <summary>Disposes every store <see cref="Track{TStore}"/> registered; overrides drop what they created, then call this.</summary>
    public virtual async ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        ITaskStore[] stores;
        lock (_storesGate)
        {
            stores = [.. _stores];
            _stores.Clear();
        }
        foreach (var store in stores) await store.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Registers <paramref name="store"/> to be disposed with the fixture; returns it.</summary>
    protected TStore Track<TStore>(TStore store) where TStore : ITaskStore
    {
        lock (_storesGate) _stores.Add(store);
        return store;
    }
}

/// <summary>Finds the server a test fixture runs against, the same way for every adapter.</summary>
public static class TestServer
{
    /// <summary>
    /// The server's address: the environment variable <paramref name="variable"/> when set (a locally started
    /// server); else <paramref name="startContainer"/> (Testcontainers, where a Docker engine answers); else an
    /// <see cref="InvalidOperationException"/> that says how to start one (<paramref name="howToStart"/>) — a
    /// missing server is a failure with instructions, never a skip.
    /// </summary>
    /// <param name="variable">E.g. <c>KONDUIT_TEST_POSTGRES</c>.</param>
    /// <param name="serverName">For the message, e.g. <c>PostgreSQL</c>.</param>
    /// <param name="howToStart">For the message, e.g. <c>run `scripts/services.sh up &amp;&amp; source .services/env`</c>.</param>
    /// <param name="startContainer">Starts a container and returns its address.</param>
    public static async Task<string> LocateAsync(string variable, string serverName, string howToStart, Func<Task<string>> startContainer)
    {
        ArgumentNullException.ThrowIfNull(startContainer);
        var configured = Environment.GetEnvironmentVariable(variable);
        if (!string.IsNullOrWhiteSpace(configured)) return configured;
        try
        {
            return await startContainer().ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Any failure here means "no Docker": report how to get a server instead.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            throw new InvalidOperationException(
                $"No {serverName} for tests: {howToStart} (or set {variable}). Docker was tried as a fallback and failed: {ex.Message}", ex);
        }
    }
}

/// <summary>Lets the suite enqueue inside a backend transaction without knowing the backend.</summary>
public interface ITransactionalEnqueueHarness
{
    /// <summary>Opens a backend transaction, enqueues <paramref name="request"/> in it through the store's transactional API, then commits or rolls back.</summary>
    Task<EnqueueResult> EnqueueInTransactionAsync(ITaskStore store, EnqueueRequest request, bool commit, CancellationToken cancellationToken);
}
