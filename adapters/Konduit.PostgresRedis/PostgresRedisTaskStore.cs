using System.Collections.Concurrent;
using Konduit.Postgres;
using Npgsql;
using StackExchange.Redis;

namespace Konduit.PostgresRedis;

/// <summary>
/// A hybrid <see cref="ITaskStore"/>: PostgreSQL is the only truth and the only place that decides who holds a
/// task; a Redis stream per queue (<c>{prefix:queue}:dispatch</c>, one consumer group) carries the ids of newly
/// enqueued tasks as a dispatch signal (ADR 007).
/// </summary>
/// <remarks>
/// <para>Enqueue commits to PostgreSQL first (through an inner <see cref="PostgresTaskStore"/>), then XADDs the new
/// ids. Lease reads and acknowledges the ids waiting in the consumer group, then leases through PostgreSQL's
/// fenced <c>FOR UPDATE SKIP LOCKED</c> statement, which keeps the contract's exact lease order
/// (priority, run-at, enqueue order) and covers scheduled tasks, retries and reclaimed tasks, which never pass
/// through the stream. Ids already claimed, terminal or not yet due are acknowledged and dropped. With
/// <see cref="DispatchMode.ClaimIds"/> the dispatched ids are claimed by primary key first, trading exact order
/// for contention-free claims (see <see cref="PostgresRedisTaskStoreOptions.Dispatch"/>).</para>
/// <para>Redis never fails an operation: a Redis error or a call slower than
/// <see cref="PostgresRedisTaskStoreOptions.RedisTimeout"/> switches the store to PostgreSQL alone, a background
/// probe watches for Redis to answer again, and then every dispatch stream this store has used is rebuilt from the
/// pending rows. A stream that vanished (Redis lost its data) is rebuilt the same way.</para>
/// <para>Everything except enqueue and lease (heartbeat, complete, fail, reclaim, cancel, redrive, get, query,
/// stats, purge, migrate, wake-up by LISTEN/NOTIFY) is the inner Postgres store's.</para>
/// </remarks>
public sealed partial class PostgresRedisTaskStore : ITaskStore
{
    /// <summary>The consumer group of every dispatch stream.</summary>
    internal const string GroupName = "konduit";

    /// <summary>The stream field holding a task id.</summary>
    internal const string IdField = "id";

    private readonly PostgresTaskStore _inner;
    private readonly NpgsqlDataSource _dataSource;

    /// <summary>The PostgreSQL data source the store runs on (the application's, or the one it built), for tests.</summary>
    internal NpgsqlDataSource DataSource => _dataSource;
    private readonly bool _ownsDataSource;
    private readonly Lazy<Task<IConnectionMultiplexer>> _redis;
    private readonly bool _ownsRedis;
    private readonly string _keyPrefix;
    private readonly TimeSpan _redisTimeout;
    private readonly TimeSpan _probeInterval;
    private readonly int _rebuildLimit;
    private readonly DispatchMode _dispatch;
    private readonly ConcurrentDictionary<string, bool> _groupsReady = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _queues = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _disposing = new();
    private readonly Lock _probeGate = new();
    private Task? _probe;
    private int _redisDown;
    private int _disposed;
    private long _hintsRead;
    private long _redisFailures;
    private long _rebuilds;
    private long _claimedByHint;

    /// <summary>Creates a store. Nothing is sent to either server until the first operation.</summary>
    /// <param name="options">Settings; validated here.</param>
    /// <param name="dataSource">The application's PostgreSQL data source (not disposed by the store), or null to build one from <see cref="PostgresRedisTaskStoreOptions.ConnectionString"/>.</param>
    /// <param name="redis">The application's Redis connection (not disposed by the store), or null to connect with <see cref="PostgresRedisTaskStoreOptions.RedisConfiguration"/>.</param>
    public PostgresRedisTaskStore(PostgresRedisTaskStoreOptions options, NpgsqlDataSource? dataSource = null, IConnectionMultiplexer? redis = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (dataSource is null)
        {
            if (string.IsNullOrWhiteSpace(options.ConnectionString))
                throw new ArgumentException("PostgresRedisTaskStoreOptions.ConnectionString is required when no NpgsqlDataSource is given.", nameof(options));
            // The same data source the Postgres store would build: no reset round on returned connections.
            dataSource = PostgresDataSources.CreateOwned(options.ConnectionString);
            _ownsDataSource = true;
        }
        if (redis is null)
        {
            if (string.IsNullOrWhiteSpace(options.RedisConfiguration))
                throw new ArgumentException("PostgresRedisTaskStoreOptions.RedisConfiguration is required when no IConnectionMultiplexer is given.", nameof(options));
            var configuration = ConfigurationOptions.Parse(options.RedisConfiguration);
            // Start even when Redis is down, and fail commands at once while disconnected: PostgreSQL carries on.
            configuration.AbortOnConnectFail = false;
            configuration.BacklogPolicy = BacklogPolicy.FailFast;
            _redis = new Lazy<Task<IConnectionMultiplexer>>(
                async () => await ConnectionMultiplexer.ConnectAsync(configuration).ConfigureAwait(false));
            _ownsRedis = true;
        }
        else
        {
            _redis = new Lazy<Task<IConnectionMultiplexer>>(Task.FromResult(redis));
        }
        _dataSource = dataSource;
        _inner = new PostgresTaskStore(
            new PostgresTaskStoreOptions
            {
                Schema = options.Schema,
                MaxPayloadBytes = options.MaxPayloadBytes,
                DefaultRetryPolicy = options.DefaultRetryPolicy,
            },
            dataSource);
        _keyPrefix = options.KeyPrefix;
        _redisTimeout = options.RedisTimeout;
        _probeInterval = options.RedisProbeInterval;
        _rebuildLimit = options.RebuildLimit;
        _dispatch = options.Dispatch;
        // Postgres decides, so a batch is one transaction across queues; ClaimIds trades exact lease order (ADR 007).
        var exactOrder = _dispatch == DispatchMode.Signal;
        Capabilities = new() { TransactionalEnqueue = false, PushWakeUp = true, OrdersByRunAt = exactOrder, StrictLeaseOrder = exactOrder, AtomicCrossQueueBatches = true, RetentionGranularity = _inner.Capabilities.RetentionGranularity };
    }

    /// <inheritdoc />
    public string Name => "postgresredis";

    /// <inheritdoc />
    /// <remarks>
    /// With <see cref="DispatchMode.ClaimIds"/>, <see cref="StoreCapabilities.StrictLeaseOrder"/> and
    /// <see cref="StoreCapabilities.OrdersByRunAt"/> are false: a dispatched task may be leased ahead of a
    /// higher-priority or earlier one (ADR 007).
    /// </remarks>
    public StoreCapabilities Capabilities { get; }

    /// <summary>The PostgreSQL store that holds the truth (the same schema and data source).</summary>
    public PostgresTaskStore Postgres => _inner;

    /// <summary>True while the store runs on PostgreSQL alone because Redis did not answer.</summary>
    public bool IsRedisDegraded => Volatile.Read(ref _redisDown) != 0;

    internal long HintsRead => Interlocked.Read(ref _hintsRead);

    internal long RedisFailures => Interlocked.Read(ref _redisFailures);

    internal long ClaimedByHint => Interlocked.Read(ref _claimedByHint);

    internal long Rebuilds => Interlocked.Read(ref _rebuilds);

    /// <summary>The dispatch stream key of <paramref name="queue"/> (hash-tagged: one slot per queue).</summary>
    public string StreamKey(string queue) => "{" + _keyPrefix + ":" + queue + "}:dispatch";

    /// <summary>Creates or upgrades the PostgreSQL schema (see <see cref="PostgresTaskStore.MigrateAsync"/>).</summary>
    public Task MigrateAsync(CancellationToken cancellationToken = default) => _inner.MigrateAsync(cancellationToken);

    // ---------------------------------------------------------------------------------------------- enqueue

    /// <inheritdoc />
    public async Task<EnqueueResult> EnqueueAsync(EnqueueRequest request, CancellationToken cancellationToken = default)
    {
        var result = await _inner.EnqueueAsync(request, cancellationToken).ConfigureAwait(false);
        if (result.Created) await DispatchAsync(request.Queue, [result.TaskId]).ConfigureAwait(false);
        return result;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, CancellationToken cancellationToken = default)
    {
        var results = await _inner.EnqueueManyAsync(requests, cancellationToken).ConfigureAwait(false);
        Dictionary<string, List<Guid>>? byQueue = null;
        for (var i = 0; i < results.Count; i++)
        {
            if (!results[i].Created) continue;
            byQueue ??= new Dictionary<string, List<Guid>>(StringComparer.Ordinal);
            if (!byQueue.TryGetValue(requests[i].Queue, out var ids)) byQueue[requests[i].Queue] = ids = [];
            ids.Add(results[i].TaskId);
        }
        if (byQueue is not null)
        {
            foreach (var (queue, ids) in byQueue) await DispatchAsync(queue, ids).ConfigureAwait(false);
        }
        return results;
    }

    // The signal, after the PostgreSQL commit: best effort, never throws, never waits longer than RedisTimeout.
    // Deliberately not cancellable by the caller: the task is already committed and its signal should go out.
    private async Task DispatchAsync(string queue, IReadOnlyList<Guid> ids)
    {
        _queues.TryAdd(queue, 0);
        if (IsRedisDegraded || Volatile.Read(ref _disposed) != 0) return;
        try
        {
            var db = await DatabaseAsync().ConfigureAwait(false);
            await EnsureGroupAsync(db, queue).ConfigureAwait(false);
            var key = StreamKey(queue);
            var adds = new Task[ids.Count];
            for (var i = 0; i < ids.Count; i++) adds[i] = db.StreamAddAsync(key, IdField, ids[i].ToString("D"));
            await Task.WhenAll(adds).WaitAsync(_redisTimeout).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsRedisFailure(ex))
        {
            RedisFailed();
        }
    }

    // ---------------------------------------------------------------------------------------------- lease

    /// <inheritdoc />
    public async Task<IReadOnlyList<TaskLease>> LeaseAsync(string queue, string workerId, int maxCount, TimeSpan leaseDuration, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateLease(queue, workerId, maxCount, leaseDuration);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        _queues.TryAdd(queue, 0);
        if (_dispatch == DispatchMode.Signal)
        {
            if (IsRedisDegraded) return await _inner.LeaseAsync(queue, workerId, maxCount, leaseDuration, cancellationToken).ConfigureAwait(false);
            // PostgreSQL decides and the hinted ids are not used, only consumed: drain them alongside the lease
            // instead of before it, so Redis adds no round trips to the pickup path.
            return await LeaseWhileDrainingAsync(queue, workerId, maxCount, leaseDuration, cancellationToken).ConfigureAwait(false);
        }
        IReadOnlyList<Guid> hinted = [];
        if (!IsRedisDegraded) hinted = await DrainHintsAsync(queue, workerId, maxCount, cancellationToken).ConfigureAwait(false);
        if (hinted.Count == 0)
        {
            // PostgreSQL decides: the fenced SKIP LOCKED lease in contract order. A hinted id that another worker
            // claimed first, that was canceled, or that is not due yet is simply not among the rows it takes.
            return await _inner.LeaseAsync(queue, workerId, maxCount, leaseDuration, cancellationToken).ConfigureAwait(false);
        }

        // ClaimIds: the dispatched ids by primary key first, then the ordered lease for the rest (scheduled,
        // retried, reclaimed and redriven tasks never pass through the stream).
        var leases = await ClaimIdsAsync(queue, workerId, hinted, leaseDuration, cancellationToken).ConfigureAwait(false);
        if (leases.Count < maxCount)
            leases.AddRange(await _inner.LeaseAsync(queue, workerId, maxCount - leases.Count, leaseDuration, cancellationToken).ConfigureAwait(false));
        leases.Sort(CompareLeaseOrder);
        return leases;
    }

    // The contract's lease order (ITaskStore.LeaseAsync): priority descending, run-at, id. Both parts arrive sorted
    // from PostgreSQL; their merge is sorted here.
    private static int CompareLeaseOrder(TaskLease a, TaskLease b)
    {
        var c = b.Priority.CompareTo(a.Priority);
        if (c == 0) c = a.RunAt.CompareTo(b.RunAt);
        return c != 0 ? c : a.TaskId.CompareTo(b.TaskId);
    }

    /// <summary>
    /// <see cref="DispatchMode.Signal"/>: the fenced SKIP LOCKED lease in contract order while the queue's hints are
    /// read and acknowledged concurrently. The lease's outcome is what counts: once it has leased tasks, a failing
    /// drain (canceled, or a stream rebuild that could not read PostgreSQL) never loses them; the next lease drains
    /// again. The lease's own failure is thrown after the drain has finished.
    /// </summary>
    private async Task<IReadOnlyList<TaskLease>> LeaseWhileDrainingAsync(string queue, string workerId, int maxCount, TimeSpan leaseDuration, CancellationToken cancellationToken)
    {
        var drain = DrainHintsAsync(queue, workerId, maxCount, cancellationToken);
        try
        {
            return await _inner.LeaseAsync(queue, workerId, maxCount, leaseDuration, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            try
            {
                await drain.ConfigureAwait(false);
            }
#pragma warning disable CA1031 // Hints are only consumed in this mode: their failure must not undo a lease.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
    }

    // The Postgres store's dispatcher seam: claims exactly the hinted ids, fenced, if still pending and due.
    private async Task<List<TaskLease>> ClaimIdsAsync(string queue, string workerId, IReadOnlyList<Guid> ids, TimeSpan leaseDuration, CancellationToken cancellationToken)
    {
        var leases = new List<TaskLease>(await _inner.LeaseByIdsAsync(queue, ids, workerId, leaseDuration, cancellationToken).ConfigureAwait(false));
        Interlocked.Add(ref _claimedByHint, leases.Count);
        return leases;
    }

    /// <summary>
    /// Reads up to <paramref name="maxCount"/> ids waiting in the queue's consumer group and acknowledges (and
    /// deletes) every one of them, whatever its state in PostgreSQL. Returns the ids read; never throws for Redis.
    /// </summary>
    internal async Task<IReadOnlyList<Guid>> DrainHintsAsync(string queue, string workerId, int maxCount, CancellationToken cancellationToken)
    {
        try
        {
            var db = await DatabaseAsync().ConfigureAwait(false);
            var key = StreamKey(queue);
            await EnsureGroupAsync(db, queue).ConfigureAwait(false);
            StreamEntry[] entries;
            try
            {
                entries = await db.StreamReadGroupAsync(key, GroupName, workerId, StreamPosition.NewMessages, maxCount)
                    .WaitAsync(_redisTimeout, cancellationToken).ConfigureAwait(false);
            }
            catch (RedisServerException ex) when (ex.Message.Contains("NOGROUP", StringComparison.Ordinal))
            {
                // The stream (or its group) vanished: Redis lost its data. Recreate and refill it from PostgreSQL.
                _groupsReady.TryRemove(queue, out _);
                await EnsureGroupAsync(db, queue).ConfigureAwait(false);
                await RebuildQueueAsync(db, queue, cancellationToken).ConfigureAwait(false);
                return [];
            }
            if (entries.Length == 0) return [];
            var messageIds = new RedisValue[entries.Length];
            var ids = new List<Guid>(entries.Length);
            for (var i = 0; i < entries.Length; i++)
            {
                messageIds[i] = entries[i].Id;
                if (Guid.TryParse((string?)entries[i][IdField], out var id)) ids.Add(id);
            }
            Interlocked.Add(ref _hintsRead, ids.Count);
            // Acknowledge and drop every id read, claimed by us or not: PostgreSQL alone decides who runs it.
            await Task.WhenAll(
                    db.StreamAcknowledgeAsync(key, GroupName, messageIds),
                    db.StreamDeleteAsync(key, messageIds))
                .WaitAsync(_redisTimeout, cancellationToken).ConfigureAwait(false);
            return ids;
        }
        catch (Exception ex) when (IsRedisFailure(ex))
        {
            RedisFailed();
            return [];
        }
    }

    // ---------------------------------------------------------------------------------------------- Redis upkeep

    private async Task<IDatabase> DatabaseAsync() =>
        (await _redis.Value.WaitAsync(_redisTimeout).ConfigureAwait(false)).GetDatabase();

    private async Task EnsureGroupAsync(IDatabase db, string queue)
    {
        if (_groupsReady.ContainsKey(queue)) return;
        try
        {
            // From the beginning, so ids added before the group existed (e.g. a stream recreated by XADD) are read.
            await db.StreamCreateConsumerGroupAsync(StreamKey(queue), GroupName, StreamPosition.Beginning, createStream: true)
                .WaitAsync(_redisTimeout).ConfigureAwait(false);
        }
        catch (RedisServerException ex) when (ex.Message.Contains("BUSYGROUP", StringComparison.Ordinal))
        {
            // Already there.
        }
        _groupsReady[queue] = true;
    }

    // Re-adds the ids of the queue's pending, due rows (in lease order). Duplicated hints are harmless.
    private async Task RebuildQueueAsync(IDatabase db, string queue, CancellationToken cancellationToken)
    {
        var ids = await _inner.ReadDueIdsAsync(queue, _rebuildLimit, cancellationToken).ConfigureAwait(false);
        if (ids.Count > 0)
        {
            var key = StreamKey(queue);
            var adds = ids.Select(id => (Task)db.StreamAddAsync(key, IdField, id.ToString("D"))).ToArray();
            await Task.WhenAll(adds).WaitAsync(_redisTimeout, cancellationToken).ConfigureAwait(false);
        }
        Interlocked.Increment(ref _rebuilds);
    }

    private void RedisFailed()
    {
        Interlocked.Increment(ref _redisFailures);
        if (Interlocked.Exchange(ref _redisDown, 1) != 0) return;
        lock (_probeGate)
        {
            if (Volatile.Read(ref _disposed) != 0) return;
            _probe = Task.Run(ProbeUntilRedisAnswersAsync);
        }
    }

    // Runs while degraded: waits for Redis to answer, then rebuilds every known queue's stream from PostgreSQL.
    private async Task ProbeUntilRedisAnswersAsync()
    {
        var token = _disposing.Token;
        while (!token.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_probeInterval, token).ConfigureAwait(false);
                var db = await DatabaseAsync().ConfigureAwait(false);
                await db.PingAsync().WaitAsync(_redisTimeout, token).ConfigureAwait(false);
                // Back before the rebuild, so enqueues from now on signal again; a hint in both is harmless.
                _groupsReady.Clear();
                Volatile.Write(ref _redisDown, 0);
                foreach (var queue in _queues.Keys)
                {
                    await EnsureGroupAsync(db, queue).ConfigureAwait(false);
                    await RebuildQueueAsync(db, queue, token).ConfigureAwait(false);
                }
                return;
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // The probe must survive anything (Redis or PostgreSQL trouble) and try again.
            catch (Exception)
#pragma warning restore CA1031
            {
                Volatile.Write(ref _redisDown, 1);
            }
        }
    }

    private static bool IsRedisFailure(Exception ex) => ex is RedisException or TimeoutException;

    /// <summary>
    /// PostgreSQL must answer (it holds the truth: otherwise this throws); Redis only degrades the store, so a Redis that
    /// does not answer within <see cref="PostgresRedisTaskStoreOptions.RedisTimeout"/> is reported, not thrown.
    /// </summary>
    public async Task<string?> ProbeAsync(CancellationToken cancellationToken = default)
    {
        await ((ITaskStore)_inner).ProbeAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var db = await DatabaseAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
            await db.PingAsync().WaitAsync(_redisTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsRedisFailure(ex) && !cancellationToken.IsCancellationRequested)
        {
            RedisFailed(); // the same path as a failed dispatch: degraded, probing until Redis answers
            return $"Redis did not answer ({ex.GetType().Name}): leasing and wake-ups run on PostgreSQL alone until it does.";
        }
        return IsRedisDegraded ? "Redis answers again; the store returns to Redis dispatch at its next probe." : null;
    }

    // ---------------------------------------------------------------------------------------------- delegated

    /// <inheritdoc />
    public Task<TaskLease> HeartbeatAsync(TaskLease lease, TimeSpan extension, CancellationToken cancellationToken = default) =>
        _inner.HeartbeatAsync(lease, extension, cancellationToken);

    /// <inheritdoc />
    /// <remarks>The Postgres store's one statement for all the leases; Redis plays no part in renewal.</remarks>
    public Task<HeartbeatManyResult> HeartbeatManyAsync(IReadOnlyList<TaskLease> leases, TimeSpan extension, CancellationToken cancellationToken = default) =>
        _inner.HeartbeatManyAsync(leases, extension, cancellationToken);

    /// <inheritdoc />
    public Task CompleteAsync(TaskLease lease, byte[]? result = null, CancellationToken cancellationToken = default) =>
        _inner.CompleteAsync(lease, result, cancellationToken);

    /// <inheritdoc />
    public Task<IReadOnlyList<Guid>> CompleteManyAsync(IReadOnlyList<TaskCompletion> completions, CancellationToken cancellationToken = default) =>
        _inner.CompleteManyAsync(completions, cancellationToken);

    /// <inheritdoc />
    public Task<FailResult> FailAsync(TaskLease lease, string error, FailOptions? options = null, CancellationToken cancellationToken = default) =>
        _inner.FailAsync(lease, error, options, cancellationToken);

    /// <inheritdoc />
    /// <remarks>Also prunes idle consumers of the dispatch streams (see <see cref="PruneIdleConsumersAsync"/>).</remarks>
    public async Task<IReadOnlyList<ReclaimedTask>> ReclaimExpiredAsync(CancellationToken cancellationToken = default)
    {
        var reclaimed = await _inner.ReclaimExpiredAsync(cancellationToken).ConfigureAwait(false);
        await PruneIdleConsumersAsync(cancellationToken).ConfigureAwait(false);
        return reclaimed;
    }

    /// <inheritdoc />
    /// <remarks>The Postgres store's fenced statement; a task it returns to Pending is dispatched like a reclaimed one.</remarks>
    public Task<ReclaimedTask?> ExpireLeaseAsync(Guid taskId, long leaseToken, CancellationToken cancellationToken = default) =>
        _inner.ExpireLeaseAsync(taskId, leaseToken, cancellationToken);

    /// <inheritdoc />
    public Task<bool> CancelAsync(Guid taskId, CancellationToken cancellationToken = default) => _inner.CancelAsync(taskId, cancellationToken);

    /// <inheritdoc />
    public Task RedriveAsync(Guid taskId, CancellationToken cancellationToken = default) => _inner.RedriveAsync(taskId, cancellationToken);

    /// <inheritdoc />
    public Task<IReadOnlyList<Guid>> CancelManyAsync(TaskQuery filter, int maxCount, CancellationToken cancellationToken = default) =>
        _inner.CancelManyAsync(filter, maxCount, cancellationToken);

    /// <inheritdoc />
    /// <remarks>Like <see cref="RedriveAsync"/>: PostgreSQL's ordered lease picks the redriven tasks up (no dispatch hint needed).</remarks>
    public Task<IReadOnlyList<Guid>> RedriveManyAsync(TaskQuery filter, int maxCount, CancellationToken cancellationToken = default) =>
        _inner.RedriveManyAsync(filter, maxCount, cancellationToken);

    /// <inheritdoc />
    /// <remarks>
    /// PostgreSQL holds the pause, so both dispatch modes honour it: the ordered lease and the claim of dispatched ids
    /// take nothing from a paused queue. Hints drained meanwhile are only hints: the tasks are leased by the ordered
    /// lease once the queue is resumed.
    /// </remarks>
    public Task PauseQueueAsync(string queue, CancellationToken cancellationToken = default) => _inner.PauseQueueAsync(queue, cancellationToken);

    /// <inheritdoc />
    public Task ResumeQueueAsync(string queue, CancellationToken cancellationToken = default) => _inner.ResumeQueueAsync(queue, cancellationToken);

    /// <inheritdoc />
    public Task<IReadOnlyCollection<string>> GetPausedQueuesAsync(CancellationToken cancellationToken = default) => _inner.GetPausedQueuesAsync(cancellationToken);

    /// <inheritdoc />
    public Task<TaskSnapshot> GetAsync(Guid taskId, CancellationToken cancellationToken = default) => _inner.GetAsync(taskId, cancellationToken);

    /// <inheritdoc />
    public Task<TaskPage> QueryAsync(TaskQuery filter, PageRequest? page = null, CancellationToken cancellationToken = default) =>
        _inner.QueryAsync(filter, page, cancellationToken);

    /// <inheritdoc />
    public Task<IReadOnlyList<QueueStats>> GetStatsAsync(CancellationToken cancellationToken = default) => _inner.GetStatsAsync(cancellationToken);

    /// <inheritdoc />
    /// <remarks>Also deletes the dispatch streams of the queues left with no pending task (see <see cref="DropIdleDispatchStreamsAsync"/>).</remarks>
    public async Task<IReadOnlyList<PurgedTask>> PurgeAsync(TimeSpan olderThan, IReadOnlyCollection<TaskState>? states = null, string? queue = null, CancellationToken cancellationToken = default)
    {
        var purged = await _inner.PurgeAsync(olderThan, states, queue, cancellationToken).ConfigureAwait(false);
        await DropIdleDispatchStreamsAsync(queue, purged, cancellationToken).ConfigureAwait(false);
        return purged;
    }

    /// <inheritdoc />
    /// <remarks>The Postgres store's retention (partition drops), then the dispatch streams left idle, as for <see cref="PurgeAsync"/>.</remarks>
    public async Task<IReadOnlyList<PurgedTask>> ApplyRetentionAsync(TimeSpan olderThan, CancellationToken cancellationToken = default)
    {
        var purged = await _inner.ApplyRetentionAsync(olderThan, cancellationToken).ConfigureAwait(false);
        await DropIdleDispatchStreamsAsync(null, purged, cancellationToken).ConfigureAwait(false);
        return purged;
    }

    /// <inheritdoc />
    /// <remarks>Woken by the inner store's LISTEN/NOTIFY, which works whether Redis is up or not.</remarks>
    public Task<bool> WaitForWorkAsync(string queue, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        _inner.WaitForWorkAsync(queue, timeout, cancellationToken);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        Task? probe;
        lock (_probeGate) probe = _probe;
        await _disposing.CancelAsync().ConfigureAwait(false);
        if (probe is not null) await probe.ConfigureAwait(false);
        _disposing.Dispose();
        await _inner.DisposeAsync().ConfigureAwait(false);
        if (_ownsDataSource) await _dataSource.DisposeAsync().ConfigureAwait(false);
        if (_ownsRedis && _redis.IsValueCreated)
        {
            try
            {
                var redis = await _redis.Value.ConfigureAwait(false);
                await redis.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (IsRedisFailure(ex))
            {
                // Never connected: nothing to close.
            }
        }
    }
}
