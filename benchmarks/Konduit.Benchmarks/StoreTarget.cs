using Konduit.Testing.Conformance;

namespace Konduit.Benchmarks;

/// <summary>
/// What a store's entry in <see cref="Targets.All"/> may add to its conformance fixture: measurements and paths only
/// some backends have. Every hook is optional; a store with none is benchmarked through <see cref="ITaskStore"/> alone.
/// </summary>
/// <typeparam name="TFixture">The store's conformance fixture, which the hooks may read (its schema, its connection).</typeparam>
public sealed record StoreHooks<TFixture> where TFixture : TaskStoreFixture
{
    /// <summary>The report header's "where": server, version and namespace. Default: the fixture's type name.</summary>
    public Func<TFixture, CancellationToken, Task<string>>? Describe { get; init; }

    /// <summary>Table plus index bytes of the fixture's task table(s). With it, the target is measured for WAL and churn.</summary>
    public Func<TFixture, CancellationToken, Task<long?>>? RelationBytes { get; init; }

    /// <summary>The server's WAL position in bytes (server-wide).</summary>
    public Func<TFixture, CancellationToken, Task<long?>>? WalPosition { get; init; }

    /// <summary>Every table and index of the fixture's schema, with vacuum statistics (the churn and horizon scenarios).</summary>
    public Func<TFixture, CancellationToken, Task<StorageSnapshot>>? Storage { get; init; }

    /// <summary>A transaction holding an xid on the fixture's server. With it, the target runs the pinned-horizon scenario.</summary>
    public Func<TFixture, CancellationToken, Task<HorizonPin>>? PinHorizon { get; init; }

    /// <summary>A bulk path beside <see cref="ITaskStore.EnqueueManyAsync"/> (binary COPY), measured as its own row.</summary>
    public Func<ITaskStore, IReadOnlyList<EnqueueRequest>, CancellationToken, Task>? CopyEnqueue { get; init; }
}

/// <summary>
/// A Konduit store driven through <see cref="ITaskStore"/> only, built by the store's conformance fixture: any store that
/// passes the suite is benchmarked by adding its fixture to <see cref="Targets.All"/>. A reset disposes the fixture (its
/// schema, keys and stores) and starts a fresh one, so every scenario begins on an empty store.
/// </summary>
public sealed class StoreTarget<TFixture> : IBenchTarget where TFixture : TaskStoreFixture
{
    private readonly Func<TFixture> _newFixture;
    private readonly StoreHooks<TFixture> _hooks;
    private TFixture _fixture;
    private ITaskStore _store;

    private StoreTarget(string name, string where, string? baseline, Func<TFixture> newFixture, StoreHooks<TFixture> hooks, TFixture fixture, ITaskStore store)
    {
        Name = name;
        Where = where;
        Baseline = baseline;
        _newFixture = newFixture;
        _hooks = hooks;
        _fixture = fixture;
        _store = store;
    }

    /// <param name="name">The row label (<c>postgres</c>, <c>redis</c>, …).</param>
    /// <param name="baseline">The raw target this store is reported as a ratio of, or null.</param>
    /// <param name="newFixture">A new, uninitialized fixture (one per scenario).</param>
    /// <param name="hooks">The store's optional extras.</param>
    public static async Task<IBenchTarget> CreateAsync(string name, string? baseline, Func<TFixture> newFixture, StoreHooks<TFixture> hooks, CancellationToken cancellationToken)
    {
        var (fixture, store) = await OpenAsync(newFixture);
        try
        {
            var where = hooks.Describe is null ? typeof(TFixture).Name : await hooks.Describe(fixture, cancellationToken);
            return new StoreTarget<TFixture>(name, where, baseline, newFixture, hooks, fixture, store);
        }
        catch
        {
            await fixture.DisposeAsync();
            throw;
        }
    }

    private static async Task<(TFixture Fixture, ITaskStore Store)> OpenAsync(Func<TFixture> newFixture)
    {
        var fixture = newFixture();
        try
        {
            await fixture.InitializeAsync();
            return (fixture, await fixture.CreateStoreAsync());
        }
        catch
        {
            await fixture.DisposeAsync();
            throw;
        }
    }

    public string Name { get; }
    public string Where { get; }
    public string? Baseline { get; }
    public ITaskStore? Store => _store;
    public bool MeasuresStorage => _hooks.RelationBytes is not null;
    public bool SupportsCopy => _hooks.CopyEnqueue is not null;

    public Task EnqueueOneAsync(string queue, long n, CancellationToken cancellationToken) =>
        _store.EnqueueAsync(new EnqueueRequest(queue, Targets.Payload(n)) { IdempotencyKey = queue + ":" + n.ToString(System.Globalization.CultureInfo.InvariantCulture) }, cancellationToken);

    public Task EnqueueBatchAsync(string queue, long first, int count, bool copy, CancellationToken cancellationToken)
    {
        var requests = new EnqueueRequest[count];
        for (var i = 0; i < count; i++) requests[i] = new EnqueueRequest(queue, Targets.Payload(first + i));
        return copy && _hooks.CopyEnqueue is { } bulk
            ? bulk(_store, requests, cancellationToken)
            : _store.EnqueueManyAsync(requests, cancellationToken);
    }

    public async Task<int> CycleAsync(string queue, string worker, int max, CancellationToken cancellationToken)
    {
        var leases = await _store.LeaseAsync(queue, worker, max, TimeSpan.FromSeconds(30), cancellationToken);
        if (leases.Count == 0) return 0;
        if (leases.Count == 1)
        {
            await _store.CompleteAsync(leases[0], null, cancellationToken);
            return 1;
        }
        var completions = new TaskCompletion[leases.Count];
        for (var i = 0; i < completions.Length; i++) completions[i] = new TaskCompletion(leases[i]);
        await _store.CompleteManyAsync(completions, cancellationToken);
        return leases.Count;
    }

    // The lease each worker of the chained cycle holds, by (queue, worker).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string, string), TaskLease> _held = new();

    public bool SupportsCompleteAndLease => true;

    public async Task<int> CompleteAndLeaseCycleAsync(string queue, string worker, CancellationToken cancellationToken)
    {
        IReadOnlyList<TaskLease> leases;
        if (_held.TryGetValue((queue, worker), out var held))
            leases = (await _store.CompleteAndLeaseAsync(new TaskCompletion(held), worker, 1, TimeSpan.FromSeconds(30), cancellationToken)).Leases;
        else
            leases = await _store.LeaseAsync(queue, worker, 1, TimeSpan.FromSeconds(30), cancellationToken);
        if (leases.Count == 0)
        {
            _held.TryRemove((queue, worker), out _);
            return 0;
        }
        _held[(queue, worker)] = leases[0];
        return 1;
    }

    public async Task<IHeartbeats> LeaseForHeartbeatsAsync(string queue, string worker, int count, CancellationToken cancellationToken)
    {
        var leases = new List<TaskLease>(count);
        while (leases.Count < count)
        {
            var got = await _store.LeaseAsync(queue, worker, Math.Min(100, count - leases.Count), TimeSpan.FromMinutes(5), cancellationToken);
            if (got.Count == 0) break;
            leases.AddRange(got);
        }
        return new Beats(_store, [.. leases]);
    }

    private sealed class Beats(ITaskStore store, TaskLease[] leases) : IHeartbeats
    {
        public int Count => leases.Length;

        public async Task BeatAsync(int index, CancellationToken cancellationToken) =>
            leases[index] = await store.HeartbeatAsync(leases[index], TimeSpan.FromSeconds(30), cancellationToken);
    }

    public Task<long?> RelationBytesAsync(CancellationToken cancellationToken) =>
        _hooks.RelationBytes is { } bytes ? bytes(_fixture, cancellationToken) : Task.FromResult<long?>(null);

    public Task<long?> WalPositionAsync(CancellationToken cancellationToken) =>
        _hooks.WalPosition is { } wal ? wal(_fixture, cancellationToken) : Task.FromResult<long?>(null);

    public async Task<StorageSnapshot?> StorageAsync(CancellationToken cancellationToken) =>
        _hooks.Storage is { } storage ? await storage(_fixture, cancellationToken) : null;

    public bool CanPinHorizon => _hooks.PinHorizon is not null;

    public async Task<HorizonPin?> PinHorizonAsync(CancellationToken cancellationToken) =>
        _hooks.PinHorizon is { } pin ? await pin(_fixture, cancellationToken) : null;

    public async Task ResetAsync(CancellationToken cancellationToken)
    {
        // The old fixture first: it drops its schema / keys, so the server never holds two scenarios' data.
        await _fixture.DisposeAsync();
        (_fixture, _store) = await OpenAsync(_newFixture);
    }

    public ValueTask DisposeAsync() => _fixture.DisposeAsync(); // disposes the store it created, then its namespace
}
