using System.Globalization;
using System.Text;
using StackExchange.Redis;

namespace Konduit.Redis;

/// <summary>
/// An <see cref="ITaskStore"/> on Redis (ADR 004): every queue's keys share one hash tag (<c>{prefix:queue}</c>),
/// so each operation on a queue is one atomic Lua script in one slot; leases come from a lexicographically
/// ordered ready set (exact contract order: priority desc, run-at, id), fenced by a token bumped in the same
/// script; delayed tasks wait in a sorted set by run-at, running ones in a sorted set by lease expiry (the
/// sweeper's index); wake-up is Redis pub/sub.
/// </summary>
/// <remarks>
/// <para>The store connects lazily: constructing it never touches the server. The server's clock (<c>TIME</c>,
/// read inside the scripts) decides due times and lease expiry.</para>
/// <para>Durability is the server's: run it with <c>appendonly yes</c> (a task acknowledged by enqueue survives a
/// restart up to the <c>appendfsync</c> window).</para>
/// <para>Scripts are loaded once per server and invoked by SHA1; after a <c>SCRIPT FLUSH</c> or a failover the
/// first call gets <c>NOSCRIPT</c> and is re-sent with the script text, which caches it again.</para>
/// </remarks>
public class RedisTaskStore : ITaskStore
{
    private const int SweepLimit = 1000;
    private const int PurgeLimit = 500;
    private const int QueryChunk = 128;
    private const long UnixEpochTicks = 621355968000000000;
    private static readonly TaskState[] RedriveStates = [TaskState.Failed, TaskState.Canceled];

    private readonly RedisScripts _scripts = RedisScripts.Instance;
    private readonly string _prefix;
    private readonly RedisKey _queuesKey;
    private readonly RedisKey _idsKey;
    private readonly string _wakeChannel;
    private readonly int _maxPayloadBytes;
    private readonly RetryPolicy _defaultRetryPolicy;
    private readonly Lazy<Task<IConnectionMultiplexer>> _connection;
    private readonly bool _ownsConnection;
    private readonly Lock _signalGate = new();
    private readonly Dictionary<string, QueueSignal> _signals = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _subscribeGate = new(1, 1);
    private ChannelMessageQueue? _subscription;
    private int _disposed;

    /// <summary>Creates a store. Nothing is sent to the server until the first operation.</summary>
    /// <param name="options">Settings; validated here and copied, so later changes do not affect the store.</param>
    /// <param name="connection">
    /// The application's multiplexer, if it has one (it is not disposed by the store). When null the store
    /// connects (lazily) with <see cref="RedisTaskStoreOptions.Configuration"/> and owns that connection.
    /// </param>
    public RedisTaskStore(RedisTaskStoreOptions options, IConnectionMultiplexer? connection = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (connection is null)
        {
            if (string.IsNullOrWhiteSpace(options.Configuration))
                throw new ArgumentException("RedisTaskStoreOptions.Configuration is required when no IConnectionMultiplexer is given.", nameof(options));
            var config = ConfigurationOptions.Parse(options.Configuration);
            // An unreachable server must not fail construction or DI; operations fail (and retry) instead.
            config.AbortOnConnectFail = false;
            _connection = new Lazy<Task<IConnectionMultiplexer>>(async () =>
                await ConnectionMultiplexer.ConnectAsync(config).ConfigureAwait(false));
            _ownsConnection = true;
        }
        else
        {
            _connection = new Lazy<Task<IConnectionMultiplexer>>(Task.FromResult(connection));
        }
        _prefix = options.KeyPrefix;
        _queuesKey = "{" + _prefix + "}:queues";
        _idsKey = "{" + _prefix + "}:ids";
        _wakeChannel = _prefix + ":wake";
        _maxPayloadBytes = options.MaxPayloadBytes;
        _defaultRetryPolicy = options.DefaultRetryPolicy;
    }

    /// <inheritdoc />
    public string Name => "redis";

    /// <inheritdoc />
    public StoreCapabilities Capabilities { get; } = new() { PushWakeUp = true, TransactionalEnqueue = false, OrdersByRunAt = true };

    /// <summary>The key prefix (every key of this store starts with <c>{prefix</c>).</summary>
    public string KeyPrefix => _prefix;

    /// <summary>The hash-tagged base name of a queue's keys: <c>{prefix:queue}</c>.</summary>
    internal RedisKey QueueBase(string queue) => "{" + _prefix + ":" + queue + "}";

    // ---------------------------------------------------------------------------------------------- enqueue

    /// <inheritdoc />
    public async Task<EnqueueResult> EnqueueAsync(EnqueueRequest request, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateEnqueue(request, _maxPayloadBytes);
        var results = await EnqueueCoreAsync([request], cancellationToken).ConfigureAwait(false);
        return results[0];
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateEnqueueBatch(requests, _maxPayloadBytes);
        if (requests.Count == 0) return [];
        return await EnqueueCoreAsync(requests, cancellationToken).ConfigureAwait(false);
    }

    private async Task<EnqueueResult[]> EnqueueCoreAsync(IReadOnlyList<EnqueueRequest> requests, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var db = await DatabaseAsync().ConfigureAwait(false);
        var ids = new string[requests.Count];
        for (var i = 0; i < ids.Length; i++) ids[i] = Hex(TaskIdGenerator.NewId());

        // The id -> queue index lives in its own slot, so it cannot join the queue's script: it is written first,
        // so that every created task is findable by id, and entries of tasks not created are removed after (ADR 004).
        var entries = new HashEntry[ids.Length];
        for (var i = 0; i < ids.Length; i++) entries[i] = new HashEntry(ids[i], requests[i].Queue);
        await db.HashSetAsync(_idsKey, entries).ConfigureAwait(false);

        var results = new EnqueueResult[requests.Count];
        try
        {
            // One script per queue: atomic per queue. A batch spanning queues runs queue by queue (ADR 004).
            foreach (var group in Enumerable.Range(0, requests.Count).GroupBy(i => requests[i].Queue, StringComparer.Ordinal))
            {
                var indexes = group.ToArray();
                var args = new List<RedisValue>(3 + indexes.Length * 9) { _wakeChannel, group.Key, indexes.Length };
                foreach (var i in indexes)
                {
                    var r = requests[i];
                    args.Add(ids[i]);
                    args.Add(r.IdempotencyKey ?? "");
                    args.Add(r.Priority);
                    args.Add(r.RunAt is { } runAt ? ToMicros(runAt).ToString(CultureInfo.InvariantCulture) : "");
                    args.Add(r.MaxAttempts);
                    args.Add(r.Tenant ?? "");
                    args.Add(RedisJson.WriteHeaders(r.Headers));
                    args.Add(r.Payload);
                    args.Add(RedisJson.WriteRetryPolicy(r.RetryPolicy));
                }
                var reply = (RedisResult[])(await EvalAsync(db, _scripts.Enqueue, group.Key, args).ConfigureAwait(false))!;
                for (var k = 0; k < indexes.Length; k++)
                    results[indexes[k]] = new EnqueueResult(ParseHex((string)reply[2 * k]!), (int)reply[(2 * k) + 1] == 1);
            }
        }
        catch
        {
            // Nothing (or only whole queues' groups) was stored; drop index entries of ids that were never created.
            var orphans = ids.Where((id, i) => results[i].TaskId == Guid.Empty).Select(id => (RedisValue)id).ToArray();
            await db.HashDeleteAsync(_idsKey, orphans, CommandFlags.FireAndForget).ConfigureAwait(false);
            throw;
        }

        var unused = ids.Where((id, i) => !results[i].Created).Select(id => (RedisValue)id).ToArray();
        if (unused.Length > 0) await db.HashDeleteAsync(_idsKey, unused).ConfigureAwait(false);
        await db.SetAddAsync(_queuesKey, requests.Select(r => (RedisValue)r.Queue).Distinct().ToArray()).ConfigureAwait(false);
        return results;
    }

    // ---------------------------------------------------------------------------------------------- leases

    /// <inheritdoc />
    public async Task<IReadOnlyList<TaskLease>> LeaseAsync(string queue, string workerId, int maxCount, TimeSpan leaseDuration, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateLease(queue, workerId, maxCount, leaseDuration);
        cancellationToken.ThrowIfCancellationRequested();
        var db = await DatabaseAsync().ConfigureAwait(false);
        var reply = (RedisResult[])(await EvalAsync(db, _scripts.Lease, queue, [workerId, maxCount, Micros(leaseDuration)]).ConfigureAwait(false))!;
        var leases = new TaskLease[reply.Length];
        for (var i = 0; i < reply.Length; i++)
        {
            var h = ToHash(reply[i]);
            leases[i] = new TaskLease
            {
                TaskId = ParseHex(Str(h, "id")!),
                Queue = Str(h, "q")!,
                WorkerId = Str(h, "o")!,
                Token = Long(Str(h, "tk")),
                Attempt = (int)Long(Str(h, "a")),
                MaxAttempts = (int)Long(Str(h, "m")),
                ExpiresAt = Time(Str(h, "le")),
                Payload = Bin(h, "pl") ?? [],
                Priority = (int)Long(Str(h, "p")),
                Tenant = Str(h, "tn"),
                Headers = RedisJson.ReadHeaders(Str(h, "hd")),
                RetryPolicy = RedisJson.ReadRetryPolicy(Str(h, "rp")),
                EnqueuedAt = Time(Str(h, "ca")),
                RunAt = Time(Str(h, "ra")),
            };
        }
        return leases;
    }

    /// <inheritdoc />
    public async Task<TaskLease> HeartbeatAsync(TaskLease lease, TimeSpan extension, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        TaskValidation.ValidateDuration(extension, nameof(extension));
        cancellationToken.ThrowIfCancellationRequested();
        if (!IsValidQueue(lease.Queue)) throw new LeaseLostException(lease.TaskId, lease.Token, null);
        var db = await DatabaseAsync().ConfigureAwait(false);
        var reply = (RedisResult[])(await EvalAsync(db, _scripts.Heartbeat, lease.Queue,
            [Hex(lease.TaskId), lease.Token, Micros(extension)]).ConfigureAwait(false))!;
        if ((int)reply[0] != 1) throw new LeaseLostException(lease.TaskId, lease.Token, StateOrNull((int)reply[1]));
        return lease with { ExpiresAt = Time((string?)reply[1]) };
    }

    /// <inheritdoc />
    public async Task CompleteAsync(TaskLease lease, byte[]? result = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        cancellationToken.ThrowIfCancellationRequested();
        var outcome = await CompleteGroupAsync(lease.Queue, [new TaskCompletion(lease, result)]).ConfigureAwait(false);
        if (outcome[0] != 100) throw new LeaseLostException(lease.TaskId, lease.Token, StateOrNull(outcome[0]));
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<Guid>> CompleteManyAsync(IReadOnlyList<TaskCompletion> completions, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(completions);
        for (var i = 0; i < completions.Count; i++)
        {
            if (completions[i].Lease is null)
                throw new ArgumentException($"{nameof(completions)}[{i}] has no lease.", nameof(completions));
        }
        cancellationToken.ThrowIfCancellationRequested();
        var lost = new List<Guid>();
        foreach (var group in completions.GroupBy(c => c.Lease.Queue, StringComparer.Ordinal))
        {
            var items = group.ToArray();
            var outcome = await CompleteGroupAsync(group.Key, items).ConfigureAwait(false);
            for (var i = 0; i < items.Length; i++)
                if (outcome[i] != 100) lost.Add(items[i].Lease.TaskId);
        }
        return lost;
    }

    private async Task<int[]> CompleteGroupAsync(string queue, IReadOnlyList<TaskCompletion> items)
    {
        // A lease naming a queue that cannot exist cannot be valid: lost, the task unknown there.
        if (!IsValidQueue(queue)) return [.. items.Select(_ => -1)];
        var db = await DatabaseAsync().ConfigureAwait(false);
        var args = new List<RedisValue>(1 + items.Count * 4) { items.Count };
        foreach (var (lease, result) in items)
        {
            args.Add(Hex(lease.TaskId));
            args.Add(lease.Token);
            args.Add(result is null ? "0" : "1");
            args.Add(result ?? []);
        }
        var reply = (RedisResult[])(await EvalAsync(db, _scripts.Complete, queue, args).ConfigureAwait(false))!;
        return [.. reply.Select(r => (int)r)];
    }

    /// <inheritdoc />
    public async Task<FailResult> FailAsync(TaskLease lease, string error, FailOptions? options = null, CancellationToken cancellationToken = default)
    {
        var message = TaskValidation.ValidateFail(lease, error, options);
        options ??= FailOptions.Retry;
        cancellationToken.ThrowIfCancellationRequested();
        if (!IsValidQueue(lease.Queue)) throw new LeaseLostException(lease.TaskId, lease.Token, null);
        var db = await DatabaseAsync().ConfigureAwait(false);
        var id = Hex(lease.TaskId);

        // Resolve the delay against the stored task, not whatever policy the caller's lease object claims. The
        // attempt count cannot change under a valid token, and the script re-checks the token.
        var delay = TimeSpan.Zero;
        if (options.Retryable)
        {
            var stored = await db.HashGetAsync(QueueBase(lease.Queue).Append(":t:" + id), ["rp", "a"]).ConfigureAwait(false);
            var attempt = stored[1].IsNull ? lease.Attempt : (int)(long)stored[1];
            delay = options.ResolveDelay(lease with { Attempt = attempt, RetryPolicy = RedisJson.ReadRetryPolicy(stored[0]) }, _defaultRetryPolicy);
        }
        var reply = (RedisResult[])(await EvalAsync(db, _scripts.Fail, lease.Queue,
            [id, lease.Token, message, options.Retryable ? "1" : "0", Micros(delay), _wakeChannel]).ConfigureAwait(false))!;
        return (int)reply[0] switch
        {
            0 => throw new LeaseLostException(lease.TaskId, lease.Token, StateOrNull((int)reply[1])),
            1 => new FailResult(TaskState.Pending, Time((string?)reply[1])),
            _ => new FailResult(TaskState.Failed, null),
        };
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ReclaimedTask>> ReclaimExpiredAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var db = await DatabaseAsync().ConfigureAwait(false);
        var queues = await db.SetMembersAsync(_queuesKey).ConfigureAwait(false);
        var perQueue = await Task.WhenAll(queues.Select(async q =>
        {
            var queue = (string)q!;
            var reclaimed = new List<ReclaimedTask>();
            while (true)
            {
                var reply = (RedisResult[])(await EvalAsync(db, _scripts.Reclaim, queue, [SweepLimit, _wakeChannel, queue]).ConfigureAwait(false))!;
                for (var i = 2; i + 5 < reply.Length; i += 6)
                    reclaimed.Add(new ReclaimedTask(ParseHex((string)reply[i]!), queue, EmptyAsNull((string?)reply[i + 4]),
                        (int)reply[i + 1], (long)reply[i + 2], EmptyAsNull((string?)reply[i + 3]), (TaskState)(int)reply[i + 5]));
                if ((int)reply[1] < SweepLimit) return reclaimed;
            }
        })).ConfigureAwait(false);
        return perQueue.SelectMany(r => r).ToList();
    }

    private static string? EmptyAsNull(string? value) => string.IsNullOrEmpty(value) ? null : value;

    // ---------------------------------------------------------------------------------------------- by id

    /// <inheritdoc />
    public async Task<bool> CancelAsync(Guid taskId, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var (db, queue) = await FindQueueAsync(taskId).ConfigureAwait(false);
        var outcome = (int)(await EvalAsync(db, _scripts.Cancel, queue, [Hex(taskId)]).ConfigureAwait(false));
        return outcome switch
        {
            -1 => throw new TaskNotFoundException(taskId),
            100 => true,
            _ => false,
        };
    }

    /// <inheritdoc />
    public async Task RetryAsync(Guid taskId, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var (db, queue) = await FindQueueAsync(taskId).ConfigureAwait(false);
        var outcome = (int)(await EvalAsync(db, _scripts.Redrive, queue, [Hex(taskId), _wakeChannel, queue]).ConfigureAwait(false));
        if (outcome == -1) throw new TaskNotFoundException(taskId);
        if (outcome != 100) throw new InvalidTaskStateException(taskId, (TaskState)outcome, "retry", RedriveStates);
    }

    /// <inheritdoc />
    public async Task<TaskSnapshot> GetAsync(Guid taskId, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var (db, queue) = await FindQueueAsync(taskId).ConfigureAwait(false);
        var snapshots = await LoadAsync(db, queue, [Hex(taskId)]).ConfigureAwait(false);
        return snapshots[0] ?? throw new TaskNotFoundException(taskId);
    }

    private async Task<(IDatabase Db, string Queue)> FindQueueAsync(Guid taskId)
    {
        var db = await DatabaseAsync().ConfigureAwait(false);
        var queue = await db.HashGetAsync(_idsKey, Hex(taskId)).ConfigureAwait(false);
        if (queue.IsNull) throw new TaskNotFoundException(taskId);
        return (db, (string)queue!);
    }

    private async Task<TaskSnapshot?[]> LoadAsync(IDatabase db, string queue, IReadOnlyList<string> ids)
    {
        var reply = (RedisResult[])(await EvalAsync(db, _scripts.LoadTasks, queue, [.. ids.Select(id => (RedisValue)id)]).ConfigureAwait(false))!;
        var snapshots = new TaskSnapshot?[ids.Count];
        for (var i = 0; i < ids.Count; i++)
        {
            var fields = (RedisResult[])reply[2 * i]!;
            if (fields.Length == 0) continue;
            snapshots[i] = ToSnapshot(ToHash(reply[2 * i]), (RedisResult[])reply[(2 * i) + 1]!);
        }
        return snapshots;
    }

    // ---------------------------------------------------------------------------------------------- query, stats, purge

    /// <inheritdoc />
    public async Task<TaskPage> QueryAsync(TaskQuery filter, PageRequest? page = null, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateQuery(filter, page);
        page ??= PageRequest.First;
        cancellationToken.ThrowIfCancellationRequested();
        var db = await DatabaseAsync().ConfigureAwait(false);
        IEnumerable<string> queues = filter.Queue is { } only
            ? [only]
            : (await db.SetMembersAsync(_queuesKey).ConfigureAwait(false)).Select(q => (string)q!);
        var states = filter.States is { Count: > 0 } s ? s.Distinct().ToArray() : null;

        // The most selective secondary index per queue (state sets, else the tenant's set, else all ids), each read
        // newest first below the cursor; merged by id across queues and states.
        var sources = new List<IdSource>();
        foreach (var queue in queues)
        {
            var b = QueueBase(queue);
            if (states is not null)
                foreach (var state in states) sources.Add(new IdSource(queue, b.Append(":s" + (int)state)));
            else if (filter.Tenant is { } tenant) sources.Add(new IdSource(queue, b.Append(":n:" + tenant)));
            else sources.Add(new IdSource(queue, b.Append(":a")));
        }
        var cursor = page.After is { } after ? Hex(after) : null;
        foreach (var source in sources) source.Cursor = cursor;

        var items = new List<TaskSnapshot>(page.Limit + 1);
        while (items.Count <= page.Limit)
        {
            cancellationToken.ThrowIfCancellationRequested();
            // Take the next ids in global (descending) order, then load them per queue in one script each.
            var want = page.Limit + 1 - items.Count;
            var next = new List<(string Queue, string Id)>(want);
            while (next.Count < want)
            {
                IdSource? best = null;
                foreach (var source in sources)
                {
                    if (!await source.EnsureAsync(db).ConfigureAwait(false)) continue;
                    if (best is null || string.CompareOrdinal(source.Head, best.Head) > 0) best = source;
                }
                if (best is null) break;
                var id = best.Take();
                // The same id can head two state sources only if it moved between reads: take it once.
                foreach (var source in sources)
                    if (source != best && source.HasHead && source.Head == id) source.Take();
                next.Add((best.Queue, id));
            }
            if (next.Count == 0) break;
            var loaded = new Dictionary<string, TaskSnapshot?>(StringComparer.Ordinal);
            foreach (var group in next.GroupBy(n => n.Queue, StringComparer.Ordinal))
            {
                var ids = group.Select(g => g.Id).ToArray();
                var snapshots = await LoadAsync(db, group.Key, ids).ConfigureAwait(false);
                for (var i = 0; i < ids.Length; i++) loaded[ids[i]] = snapshots[i];
            }
            foreach (var (_, id) in next)
            {
                if (loaded[id] is not { } task) continue;
                if (states is not null && !states.Contains(task.State)) continue;
                if (filter.Tenant is not null && !string.Equals(task.Tenant, filter.Tenant, StringComparison.Ordinal)) continue;
                if (filter.CreatedFrom is { } from && task.CreatedAt < from) continue;
                if (filter.CreatedTo is { } to && task.CreatedAt >= to) continue;
                items.Add(task);
            }
        }
        var hasMore = items.Count > page.Limit;
        if (hasMore) items.RemoveAt(items.Count - 1);
        return new TaskPage(items, hasMore ? items[^1].Id : null);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<QueueStats>> GetStatsAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var db = await DatabaseAsync().ConfigureAwait(false);
        var queues = (await db.SetMembersAsync(_queuesKey).ConfigureAwait(false)).Select(q => (string)q!).ToArray();
        RedisValue[] fields = ["0", "1", "2", "3", "4"];
        var counts = await Task.WhenAll(queues.Select(q => db.HashGetAsync(QueueBase(q).Append(":c"), fields))).ConfigureAwait(false);
        var stats = new List<QueueStats>(queues.Length);
        for (var i = 0; i < queues.Length; i++)
        {
            var c = counts[i].Select(v => v.IsNull ? 0L : (long)v).ToArray();
            var s = new QueueStats(queues[i], c[0], c[1], c[2], c[3], c[4]);
            if (s.Total > 0) stats.Add(s);
        }
        stats.Sort((a, b) => string.CompareOrdinal(a.Queue, b.Queue));
        return stats;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<PurgedTask>> PurgeAsync(TimeSpan olderThan, IReadOnlyCollection<TaskState>? states = null, string? queue = null, CancellationToken cancellationToken = default)
    {
        var purgeStates = TaskValidation.ValidatePurge(olderThan, states, queue);
        cancellationToken.ThrowIfCancellationRequested();
        var db = await DatabaseAsync().ConfigureAwait(false);
        var queues = queue is not null
            ? [queue]
            : (await db.SetMembersAsync(_queuesKey).ConfigureAwait(false)).Select(q => (string)q!).ToArray();
        var deleted = new List<PurgedTask>();
        foreach (var q in queues)
        {
            var args = new List<RedisValue> { Micros(olderThan), PurgeLimit };
            args.AddRange(purgeStates.Distinct().Select(s => (RedisValue)(int)s));
            while (true)
            {
                var reply = (RedisResult[])(await EvalAsync(db, _scripts.Purge, q, args).ConfigureAwait(false))!;
                var n = (long)reply[0];
                var remaining = (long)reply[1];
                for (var i = 2; i + 2 < reply.Length; i += 3)
                    deleted.Add(new PurgedTask(ParseHex((string)reply[i]!), q, EmptyAsNull((string?)reply[i + 1]), (TaskState)(int)reply[i + 2]));
                if (remaining == 0)
                {
                    // The queue is empty: drop it from the registry, then re-add it if an enqueue raced in (ADR 004).
                    await db.SetRemoveAsync(_queuesKey, q).ConfigureAwait(false);
                    if (await db.KeyExistsAsync(QueueBase(q).Append(":c")).ConfigureAwait(false))
                        await db.SetAddAsync(_queuesKey, q).ConfigureAwait(false);
                }
                if (n < PurgeLimit) break;
            }
        }
        // The id index entries of purged tasks: every id whose task hash is gone.
        if (deleted.Count > 0) await PruneIdIndexAsync(db, queues).ConfigureAwait(false);
        return deleted;
    }

    private async Task PruneIdIndexAsync(IDatabase db, IReadOnlyCollection<string> queues)
    {
        var scope = queues.ToHashSet(StringComparer.Ordinal);
        await foreach (var entry in db.HashScanAsync(_idsKey, pageSize: 1000).ConfigureAwait(false))
        {
            var queue = (string)entry.Value!;
            if (!scope.Contains(queue)) continue;
            var id = (string)entry.Name!;
            if (!await db.KeyExistsAsync(QueueBase(queue).Append(":t:" + id)).ConfigureAwait(false))
                await db.HashDeleteAsync(_idsKey, entry.Name).ConfigureAwait(false);
        }
    }

    // ---------------------------------------------------------------------------------------------- wake-up

    /// <inheritdoc />
    public async Task<bool> WaitForWorkAsync(string queue, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateQueue(queue);
        if (timeout < TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "timeout must not be negative (except Timeout.InfiniteTimeSpan).");
        cancellationToken.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        await EnsureSubscribedAsync().ConfigureAwait(false);

        TaskCompletionSource<bool> waiter;
        lock (_signalGate)
        {
            var signal = SignalFor(queue);
            if (signal.Latched)
            {
                signal.Latched = false;
                return true;
            }
            if (timeout == TimeSpan.Zero) return false;
            waiter = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            signal.Waiters.Add(waiter);
        }
        try
        {
            return await waiter.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            lock (_signalGate)
            {
                if (_signals.TryGetValue(queue, out var signal)) signal.Waiters.Remove(waiter);
                // A signal handed to this waiter just as it gave up is kept, never dropped.
                if (waiter.Task.IsCompletedSuccessfully && waiter.Task.Result)
                {
                    if (ex is TimeoutException) return true;
                    if (signal is not null) signal.Latched = true;
                }
            }
            if (ex is TimeoutException) return false;
            throw;
        }
    }

    private async Task EnsureSubscribedAsync()
    {
        if (Volatile.Read(ref _subscription) is not null) return;
        await _subscribeGate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_subscription is not null) return;
            var connection = await _connection.Value.ConfigureAwait(false);
            var subscription = await connection.GetSubscriber().SubscribeAsync(RedisChannel.Literal(_wakeChannel)).ConfigureAwait(false);
            subscription.OnMessage(message =>
            {
                Signal((string)message.Message!);
                return Task.CompletedTask;
            });
            Volatile.Write(ref _subscription, subscription);
        }
        finally
        {
            _subscribeGate.Release();
        }
    }

    private void Signal(string queue)
    {
        lock (_signalGate)
        {
            var signal = SignalFor(queue);
            if (signal.Waiters.Count == 0)
            {
                signal.Latched = true;
                return;
            }
            foreach (var waiter in signal.Waiters) waiter.TrySetResult(true);
            signal.Waiters.Clear();
        }
    }

    private QueueSignal SignalFor(string queue)
    {
        if (!_signals.TryGetValue(queue, out var signal))
        {
            signal = new QueueSignal();
            _signals.Add(queue, signal);
        }
        return signal;
    }

    /// <summary>Releases waiters (they return false), unsubscribes, and closes the connection if the store opened it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        GC.SuppressFinalize(this);
        lock (_signalGate)
        {
            foreach (var signal in _signals.Values)
            {
                foreach (var waiter in signal.Waiters) waiter.TrySetResult(false);
                signal.Waiters.Clear();
            }
        }
        if (_subscription is { } subscription) await subscription.UnsubscribeAsync().ConfigureAwait(false);
        if (_ownsConnection && _connection.IsValueCreated)
        {
            try
            {
                var connection = await _connection.Value.ConfigureAwait(false);
                await connection.DisposeAsync().ConfigureAwait(false);
            }
#pragma warning disable CA1031 // A connection that never came up has nothing to close.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
        _subscribeGate.Dispose();
    }

    // ---------------------------------------------------------------------------------------------- plumbing

    private async Task<IDatabase> DatabaseAsync()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var connection = await _connection.Value.ConfigureAwait(false);
        return connection.GetDatabase();
    }

    /// <summary>
    /// Runs <paramref name="script"/> on <paramref name="queue"/>'s slot by SHA1; on <c>NOSCRIPT</c> (script cache
    /// flushed, failover, new node) re-sends it as <c>EVAL</c> with its text, which caches it again.
    /// </summary>
    internal async Task<RedisResult> EvalAsync(IDatabase db, RedisScript script, string queue, IReadOnlyCollection<RedisValue> args)
    {
        var key = QueueBase(queue);
        var command = new List<object>(3 + args.Count) { script.Sha1, 1, key };
        foreach (var arg in args) command.Add(arg);
        try
        {
            return await db.ExecuteAsync("EVALSHA", command).ConfigureAwait(false);
        }
        catch (RedisServerException ex) when (ex.Message.StartsWith("NOSCRIPT", StringComparison.Ordinal))
        {
            command[0] = script.Text;
            return await db.ExecuteAsync("EVAL", command).ConfigureAwait(false);
        }
    }

    internal static string Hex(Guid id) => id.ToString("N");

    private static Guid ParseHex(string id) => Guid.ParseExact(id, "N");

    private static bool IsValidQueue(string? queue)
    {
        try
        {
            TaskValidation.ValidateQueue(queue);
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static TaskState? StateOrNull(int state) => state < 0 ? null : (TaskState)state;

    private static long Micros(TimeSpan span) => span.Ticks / 10;

    private static long ToMicros(DateTimeOffset time) => (long)Math.Floor((time.UtcTicks - UnixEpochTicks) / 10.0);

    private static DateTimeOffset Time(string? micros) =>
        new(UnixEpochTicks + (long.Parse(micros!, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture) * 10), TimeSpan.Zero);

    private static DateTimeOffset? OptionalTime(string? micros) => string.IsNullOrEmpty(micros) ? null : Time(micros);

    private static long Long(string? value) => long.Parse(value!, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);

    private static Dictionary<string, RedisValue> ToHash(RedisResult result)
    {
        var values = (RedisResult[])result!;
        var hash = new Dictionary<string, RedisValue>(values.Length / 2, StringComparer.Ordinal);
        for (var i = 0; i + 1 < values.Length; i += 2) hash[(string)values[i]!] = (RedisValue)values[i + 1];
        return hash;
    }

    private static string? Str(Dictionary<string, RedisValue> h, string field) => h.TryGetValue(field, out var v) ? (string?)v : null;

    private static byte[]? Bin(Dictionary<string, RedisValue> h, string field) => h.TryGetValue(field, out var v) ? (byte[]?)v : null;

    private static TaskSnapshot ToSnapshot(Dictionary<string, RedisValue> h, RedisResult[] errors)
    {
        var state = (TaskState)Long(Str(h, "s"));
        return new TaskSnapshot
        {
            Id = ParseHex(Str(h, "id")!),
            Queue = Str(h, "q")!,
            State = state,
            Priority = (int)Long(Str(h, "p")),
            Attempts = (int)Long(Str(h, "a")),
            MaxAttempts = (int)Long(Str(h, "m")),
            LeaseToken = Long(Str(h, "tk")),
            RunAt = Time(Str(h, "ra")),
            CreatedAt = Time(Str(h, "ca")),
            UpdatedAt = Time(Str(h, "ua")),
            StartedAt = OptionalTime(Str(h, "sa")),
            FinishedAt = OptionalTime(Str(h, "fa")),
            LeaseOwner = Str(h, "o"),
            LeaseExpiresAt = state == TaskState.Running ? OptionalTime(Str(h, "le")) : null,
            IdempotencyKey = Str(h, "k"),
            Tenant = Str(h, "tn"),
            Headers = RedisJson.ReadHeaders(Str(h, "hd")),
            Payload = Bin(h, "pl") ?? [],
            Result = Bin(h, "rs"),
            Errors = [.. errors.Select(e => ParseError((string)e!))],
        };
    }

    private static TaskError ParseError(string entry)
    {
        // "attempt|at_us|message": the message may itself contain '|', so split on the first two only.
        var first = entry.IndexOf('|', StringComparison.Ordinal);
        var second = entry.IndexOf('|', first + 1);
        return new TaskError(
            int.Parse(entry.AsSpan(0, first), CultureInfo.InvariantCulture),
            entry[(second + 1)..],
            Time(entry[(first + 1)..second]));
    }

    /// <summary>One secondary index read newest first, below a cursor, a chunk at a time.</summary>
    private sealed class IdSource(string queue, RedisKey key)
    {
        private readonly Queue<string> _buffer = new();
        private bool _exhausted;

        public string Queue { get; } = queue;
        public string? Cursor { get; set; }
        public bool HasHead => _buffer.Count > 0;
        public string Head => _buffer.Peek();

        public string Take() => _buffer.Dequeue();

        public async Task<bool> EnsureAsync(IDatabase db)
        {
            if (_buffer.Count > 0) return true;
            if (_exhausted) return false;
            var max = Cursor is null ? "+" : "(" + Cursor;
            var reply = (RedisResult[])(await db.ExecuteAsync("ZRANGE", key, max, "-", "BYLEX", "REV", "LIMIT", 0, QueryChunk).ConfigureAwait(false))!;
            foreach (var member in reply) _buffer.Enqueue((string)member!);
            if (reply.Length < QueryChunk) _exhausted = true;
            if (reply.Length > 0) Cursor = (string)reply[^1]!;
            return _buffer.Count > 0;
        }
    }

    /// <summary>A per-queue latched wake-up signal.</summary>
    private sealed class QueueSignal
    {
        public bool Latched { get; set; }
        public List<TaskCompletionSource<bool>> Waiters { get; } = [];
    }
}
