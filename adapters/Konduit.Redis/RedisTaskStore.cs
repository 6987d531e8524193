using System.Collections.Concurrent;
using System.Globalization;
using StackExchange.Redis;

namespace Konduit.Redis;

/// <summary>
/// An <see cref="ITaskStore"/> on Redis Streams (ADR 004). Each queue has one stream per priority band with a
/// consumer group; <c>XREADGROUP</c> leases, <c>XACK</c> + <c>XDEL</c> finish, and the group's pending entries
/// list (PEL) is the sweeper's index of running tasks. Task state lives in a hash per task, and every state change
/// is one Lua script that checks and bumps the fencing token. Every key of a queue shares the hash tag
/// <c>{prefix:queue}</c>, so each script touches one slot (Redis Cluster-ready). Wake-up is Redis pub/sub.
/// </summary>
/// <remarks>
/// <para>The store connects lazily: constructing it never touches the server. The server's clock (<c>TIME</c>,
/// read inside the scripts) decides due times and lease expiry.</para>
/// <para>Equal-priority tasks are handed out in the order they became due (stream order), not by run-at:
/// <see cref="StoreCapabilities.OrdersByRunAt"/> is false.</para>
/// <para>Durability is the server's: run it with <c>appendonly yes</c> and <c>maxmemory-policy noeviction</c>
/// (a task acknowledged by enqueue survives a restart up to the <c>appendfsync</c> window).</para>
/// <para>Scripts are loaded once per server and invoked by SHA1; after a <c>SCRIPT FLUSH</c>, a restart or a
/// failover the first call gets <c>NOSCRIPT</c> and is re-sent with the script text, which caches it again.</para>
/// </remarks>
public sealed partial class RedisTaskStore : ITaskStore
{
    private const int SweepLimit = 1000;
    private const long UnixEpochTicks = 621355968000000000;
    private static readonly TaskState[] RedriveStates = [TaskState.Failed, TaskState.Canceled];

    /// <summary>
    /// The idle window of PEL entries owned by a consumer whose name carries no lease length (<c>worker</c> rather
    /// than <c>worker|ms</c>): entries stamped by an older version of the store with <c>expiry − this</c>, whose idle
    /// time reaches this value exactly at expiry. Current leases are owned by <c>worker|lease ms</c> (ADR 004).
    /// </summary>
    internal static readonly long PelBaseMilliseconds = (long)TaskValidation.MaxLeaseDuration.TotalMilliseconds;

    /// <summary>The sweeper removes group consumers (worker ids) that hold nothing and were idle this long.</summary>
    internal static readonly long ConsumerIdleMilliseconds = (long)TimeSpan.FromMinutes(10).TotalMilliseconds;

    /// <summary>The consumer group of every stream (also in the Lua scripts).</summary>
    internal const string GroupName = "konduit";

    private readonly RedisScripts _scripts = RedisScripts.Instance;
    private readonly string _prefix;
    private readonly RedisKey _queuesKey;
    private readonly RedisKey _pausedKey;
    // Queues this process has registered in {prefix}:queues (see EnqueueCoreAsync).
    private readonly ConcurrentDictionary<string, bool> _registeredQueues = new(StringComparer.Ordinal);
    private readonly string _wakeChannel;
    private readonly int _maxPayloadBytes;
    private readonly RetryPolicy _defaultRetryPolicy;
    private readonly Lazy<Task<IConnectionMultiplexer>> _connection;
    private readonly bool _ownsConnection;
    private IConnectionMultiplexer? _multiplexer;

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
            if (options.TlsCertificateAuthorityPath is { } authority) config.TrustIssuer(authority);
            // An unreachable server must not fail construction or DI; operations fail instead, fast: a call waits at
            // most OperationTimeout, and while disconnected it fails at once rather than queueing for the reconnect.
            config.AbortOnConnectFail = false;
            var timeout = (int)options.OperationTimeout.TotalMilliseconds;
            config.AsyncTimeout = timeout;
            config.SyncTimeout = timeout;
            config.ConnectTimeout = timeout;
            config.BacklogPolicy = BacklogPolicy.FailFast;
            // Re-read the topology every 5 s (default 60): a promoted replica is found soon after a failover.
            config.ConfigCheckSeconds = 5;
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
        _pausedKey = "{" + _prefix + "}:paused";
        _wakeChannel = _prefix + ":wake";
        _maxPayloadBytes = options.MaxPayloadBytes;
        _defaultRetryPolicy = options.DefaultRetryPolicy;
    }

    /// <inheritdoc />
    public string Name => "redis";

    /// <inheritdoc />
    /// <remarks>
    /// <see cref="StoreCapabilities.OrdersByRunAt"/> is false: a stream is a log, so equal-priority tasks are handed
    /// out in the order they entered their band's stream (became due), not by run-at (ADR 004).
    /// <see cref="StoreCapabilities.AtomicCrossQueueBatches"/> is false: a script is atomic in one queue's slot, so a
    /// batch spanning queues runs one script per queue.
    /// </remarks>
    public StoreCapabilities Capabilities { get; } = new() { PushWakeUp = true, TransactionalEnqueue = false, OrdersByRunAt = false, StrictLeaseOrder = true, AtomicCrossQueueBatches = false };

    /// <summary>The key prefix (every key of this store starts with <c>{prefix</c>).</summary>
    public string KeyPrefix => _prefix;

    /// <summary>The hash-tagged base name of a queue's keys: <c>{prefix:queue}</c>.</summary>
    internal RedisKey QueueBase(string queue) => "{" + _prefix + ":" + queue + "}";

    /// <summary>The stream of one priority band of a queue: <c>{prefix:queue}:q:priority</c>.</summary>
    internal RedisKey StreamKey(string queue, int priority) => QueueBase(queue).Append(":q:" + priority.ToString(CultureInfo.InvariantCulture));

    // ---------------------------------------------------------------------------------------------- enqueue

    /// <inheritdoc />
    public async Task<EnqueueResult> EnqueueAsync(EnqueueRequest request, CancellationToken cancellationToken = default)
    {
        try
        {
            TaskValidation.ValidateEnqueue(request, _maxPayloadBytes);
            var results = await EnqueueCoreAsync([request], cancellationToken).ConfigureAwait(false);
            return results[0];
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw Unavailable("enqueue", ex);
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, CancellationToken cancellationToken = default)
    {
        try
        {
            TaskValidation.ValidateEnqueueBatch(requests, _maxPayloadBytes);
            if (requests.Count == 0) return [];
            return await EnqueueCoreAsync(requests, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw Unavailable("enqueue", ex);
        }
    }

    private async Task<EnqueueResult[]> EnqueueCoreAsync(IReadOnlyList<EnqueueRequest> requests, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var db = await DatabaseAsync().ConfigureAwait(false);

        // No store-wide key on the hot path (issue 16): the id -> queue entry is written by the queue's own script
        // (under a base in the queue's slot, see RedisTaskStore.Slots.cs). The queue registry ({prefix}:queues, read
        // by the sweeper, queries and stats) is written only the first time this process enqueues to a queue — in
        // the same pipeline, ahead of the script, so the queue is known even if this process dies right after
        // sending — and again whenever the script reports that the queue held no task before, since a purge may
        // have emptied and unregistered it (ADR 004).
        var groups = new List<(string Queue, int[] Indexes, Task<RedisResult> Reply)>();
        var registrations = new List<Task>();
        foreach (var group in Enumerable.Range(0, requests.Count).GroupBy(i => requests[i].Queue, StringComparer.Ordinal))
        {
            var queue = group.Key;
            if (!_registeredQueues.ContainsKey(queue)) registrations.Add(db.SetAddAsync(_queuesKey, queue));
            var indexes = group.ToArray();
            var args = new List<RedisValue>(3 + indexes.Length * 7) { _wakeChannel, queue, indexes.Length };
            foreach (var i in indexes)
            {
                var r = requests[i];
                args.Add(Hex(NewTaskId(queue)));
                args.Add(r.IdempotencyKey ?? "");
                args.Add(r.Priority);
                args.Add(r.RunAt is { } runAt ? ToMicros(runAt).ToString(CultureInfo.InvariantCulture) : "");
                args.Add(r.Tenant ?? "");
                // The immutable fields go packed into one hash field (issue 16); the script prepends the created time.
                args.Add(RedisPack.WriteTail(r.MaxAttempts, r.Tenant, RedisJson.WriteHeaders(r.Headers), r.RetryPolicy));
                args.Add(r.Payload);
            }
            // One script per queue: atomic per queue. A batch spanning queues runs queue by queue (ADR 004).
            groups.Add((queue, indexes, EvalAsync(db, _scripts.Enqueue, [QueueBase(queue), IdsBase(QueueSlot(queue))], [.. args])));
        }

        var results = new EnqueueResult[requests.Count];
        Exception? failure = null;
        var again = new List<RedisValue>();
        foreach (var (queue, indexes, replyTask) in groups)
        {
            try
            {
                var reply = (RedisResult[])(await replyTask.ConfigureAwait(false))!;
                for (var k = 0; k < indexes.Length; k++)
                    results[indexes[k]] = new EnqueueResult(ParseHex((string)reply[2 * k]!), (int)reply[(2 * k) + 1] == 1);
                if ((int)reply[^1] == 1) again.Add(queue);
            }
#pragma warning disable CA1031 // Every group's reply is awaited; the first failure is rethrown after the registrations below.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                failure ??= ex;
            }
        }
        if (again.Count > 0) registrations.Add(db.SetAddAsync(_queuesKey, [.. again]));
        await Task.WhenAll(registrations).ConfigureAwait(false);
        foreach (var (queue, _, _) in groups) _registeredQueues.TryAdd(queue, true);
        if (failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        return results;
    }

    // ---------------------------------------------------------------------------------------------- leases

    /// <inheritdoc />
    public async Task<IReadOnlyList<TaskLease>> LeaseAsync(string queue, string workerId, int maxCount, TimeSpan leaseDuration, CancellationToken cancellationToken = default)
    {
        try
        {
            TaskValidation.ValidateLease(queue, workerId, maxCount, leaseDuration);
            cancellationToken.ThrowIfCancellationRequested();
            var db = await DatabaseAsync().ConfigureAwait(false);
            var reply = (RedisResult[])(await EvalAsync(db, _scripts.Lease, queue,
                [workerId, maxCount, Micros(leaseDuration)]).ConfigureAwait(false))!;
            return ReadLeases(reply, 0, queue, workerId);
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw Unavailable("lease", ex);
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// One script (<c>CompleteAndLease</c>) in the queue's slot: the completion, judged as in <see cref="CompleteAsync"/>,
    /// then the lease, exactly as <see cref="LeaseAsync"/>; one round trip instead of two, and no other command runs
    /// between the halves (issue 16, ADR 004 "Complete-and-lease in one script").
    /// </remarks>
    public async Task<CompleteAndLeaseResult> CompleteAndLeaseAsync(TaskCompletion completion, string workerId, int maxCount, TimeSpan leaseDuration,
        CancellationToken cancellationToken = default)
    {
        try
        {
            TaskValidation.ValidateCompleteAndLease(completion, workerId, maxCount, leaseDuration);
            cancellationToken.ThrowIfCancellationRequested();
            var (lease, result) = completion;
            var db = await DatabaseAsync().ConfigureAwait(false);
            var reply = (RedisResult[])(await EvalAsync(db, _scripts.CompleteAndLease, lease.Queue,
                [workerId, maxCount, Micros(leaseDuration), 1, Hex(lease.TaskId), lease.LeaseToken, result is null ? "0" : "1", result ?? []])
                .ConfigureAwait(false))!;
            return new CompleteAndLeaseResult((int)reply[0] == 100, ReadLeases(reply, 1, lease.Queue, workerId));
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw Unavailable("complete and lease", ex);
        }
    }

    // The Lease script's reply from index `start`: {expiry, then per task: id, token, attempt, payload, priority, run_at,
    // pack (RedisPack)}.
    private static TaskLease[] ReadLeases(RedisResult[] reply, int start, string queue, string workerId)
    {
        const int Width = 7;
        var count = (reply.Length - start - 1) / Width;
        if (count == 0) return [];
        var expiresAt = Time((string?)reply[start]);
        var leases = new TaskLease[count];
        string? lastHeaders = null, lastRetry = null;
        IReadOnlyDictionary<string, string> headers = RedisJson.EmptyHeaders;
        RetryPolicy? retry = null;
        for (var i = 0; i < count; i++)
        {
            var o = start + 1 + (i * Width);
            var pack = RedisPack.Read((byte[])reply[o + 6]!);
            // Tasks of one batch usually share headers and retry policy: parse each distinct value once per call.
            if (!string.Equals(pack.HeadersJson, lastHeaders, StringComparison.Ordinal))
            {
                headers = RedisJson.ReadHeaders(pack.HeadersJson);
                lastHeaders = pack.HeadersJson;
            }
            if (i == 0 || !string.Equals(pack.Retry, lastRetry, StringComparison.Ordinal))
            {
                retry = RedisPack.ReadRetry(pack.Retry);
                lastRetry = pack.Retry;
            }
            leases[i] = new TaskLease
            {
                TaskId = ParseHex((string)reply[o]!),
                Queue = queue,
                WorkerId = workerId,
                LeaseToken = (long)reply[o + 1],
                Attempt = (int)reply[o + 2],
                MaxAttempts = pack.MaxAttempts,
                ExpiresAt = expiresAt,
                Payload = (byte[]?)reply[o + 3] ?? [],
                Priority = (int)reply[o + 4],
                Tenant = pack.Tenant,
                Headers = headers,
                RetryPolicy = retry,
                EnqueuedAt = FromMicros(pack.CreatedMicros),
                RunAt = Time((string?)reply[o + 5]),
            };
        }
        return leases;
    }

    /// <inheritdoc />
    public async Task<TaskLease> HeartbeatAsync(TaskLease lease, TimeSpan extension, CancellationToken cancellationToken = default)
    {
        try
        {
            ArgumentNullException.ThrowIfNull(lease);
            TaskValidation.ValidateDuration(extension, nameof(extension));
            cancellationToken.ThrowIfCancellationRequested();
            if (!IsValidQueue(lease.Queue)) throw new LeaseLostException(lease.TaskId, lease.LeaseToken, null);
            var db = await DatabaseAsync().ConfigureAwait(false);
            var reply = (RedisResult[])(await EvalAsync(db, _scripts.Heartbeat, lease.Queue,
                [Hex(lease.TaskId), lease.LeaseToken, Micros(extension)]).ConfigureAwait(false))!;
            if ((int)reply[0] != 1) throw new LeaseLostException(lease.TaskId, lease.LeaseToken, StateOrNull((int)reply[1]));
            return lease with { ExpiresAt = Time((string?)reply[1]) };
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw Unavailable("heartbeat", ex);
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// One script per queue (each atomic in its queue's slot), sent together in one pipeline; each lease is judged on
    /// its own, like <see cref="HeartbeatAsync"/>, and its PEL entry moves with one <c>XCLAIM</c> per band and worker.
    /// </remarks>
    public async Task<HeartbeatManyResult> HeartbeatManyAsync(IReadOnlyList<TaskLease> leases, TimeSpan extension, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateHeartbeats(leases, extension);
        cancellationToken.ThrowIfCancellationRequested();
        if (leases.Count == 0) return new HeartbeatManyResult([], []);
        try
        {
            var db = await DatabaseAsync().ConfigureAwait(false);
            var renewed = new TaskLease?[leases.Count];
            var calls = new List<(int[] Indexes, Task<RedisResult> Reply)>();
            foreach (var group in Enumerable.Range(0, leases.Count).GroupBy(i => leases[i].Queue, StringComparer.Ordinal))
            {
                // A lease naming a queue that cannot exist cannot be valid: lost.
                if (!IsValidQueue(group.Key)) continue;
                var indexes = group.ToArray();
                var args = new List<RedisValue>(3 + (indexes.Length * 2)) { indexes.Length, Micros(extension) };
                foreach (var i in indexes)
                {
                    args.Add(Hex(leases[i].TaskId));
                    args.Add(leases[i].LeaseToken);
                }
                calls.Add((indexes, EvalAsync(db, _scripts.HeartbeatMany, group.Key, [.. args])));
            }
            foreach (var (indexes, replyTask) in calls)
            {
                var reply = (RedisResult[])(await replyTask.ConfigureAwait(false))!;
                var expiresAt = Time((string?)reply[0]);
                for (var k = 0; k < indexes.Length; k++)
                    if ((int)reply[k + 1] == 1) renewed[indexes[k]] = leases[indexes[k]] with { ExpiresAt = expiresAt };
            }
            var kept = new List<TaskLease>(leases.Count);
            var lost = new List<Guid>();
            for (var i = 0; i < leases.Count; i++)
            {
                if (renewed[i] is { } lease) kept.Add(lease);
                else lost.Add(leases[i].TaskId);
            }
            return new HeartbeatManyResult(kept, lost);
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw Unavailable("heartbeat", ex);
        }
    }

    /// <inheritdoc />
    public async Task CompleteAsync(TaskLease lease, byte[]? result = null, CancellationToken cancellationToken = default)
    {
        try
        {
            ArgumentNullException.ThrowIfNull(lease);
            cancellationToken.ThrowIfCancellationRequested();
            var outcome = await CompleteGroupAsync(lease.Queue, [new TaskCompletion(lease, result)]).ConfigureAwait(false);
            if (outcome[0] != 100) throw new LeaseLostException(lease.TaskId, lease.LeaseToken, StateOrNull(outcome[0]));
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw Unavailable("complete", ex);
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<Guid>> CompleteManyAsync(IReadOnlyList<TaskCompletion> completions, CancellationToken cancellationToken = default)
    {
        try
        {
            TaskValidation.ValidateCompletions(completions);
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
        catch (Exception ex) when (IsTransient(ex))
        {
            throw Unavailable("complete", ex);
        }
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
            args.Add(lease.LeaseToken);
            args.Add(result is null ? "0" : "1");
            args.Add(result ?? []);
        }
        var reply = (RedisResult[])(await EvalAsync(db, _scripts.Complete, queue, [.. args]).ConfigureAwait(false))!;
        return [.. reply.Select(r => (int)r)];
    }

    /// <inheritdoc />
    public async Task<FailResult> FailAsync(TaskLease lease, string error, FailOptions? options = null, CancellationToken cancellationToken = default)
    {
        try
        {
            var message = TaskValidation.ValidateFail(lease, error, options);
            options ??= FailOptions.Retry;
            cancellationToken.ThrowIfCancellationRequested();
            if (!IsValidQueue(lease.Queue)) throw new LeaseLostException(lease.TaskId, lease.LeaseToken, null);
            var db = await DatabaseAsync().ConfigureAwait(false);
            var id = Hex(lease.TaskId);

            // Resolve the delay against the stored task, not whatever policy the caller's lease object claims. The
            // attempt count cannot change under a valid token, and the script re-checks the token.
            var delay = TimeSpan.Zero;
            if (options.Retryable)
            {
                var stored = await db.HashGetAsync(QueueBase(lease.Queue).Append(":t:" + id), ["rp", "a", "x", "i"]).ConfigureAwait(false);
                var attempt = stored[1].IsNull ? lease.Attempt : (int)(long)stored[1];
                var spilled = stored[2].IsNull ? [] : ((string)stored[2]!).Split(',');
                // The policy is in the pack 'i' (issue 16), or in 'rp' in a hash written before the pack; a value
                // longer than 64 bytes lives in its own key (RedisScripts.lua, "B:x:<id>:<f>").
                var field = stored[3].IsNull ? "rp" : "i";
                var value = stored[3].IsNull ? stored[0] : stored[3];
                if (spilled.Contains(field))
                    value = await db.StringGetAsync(QueueBase(lease.Queue).Append(":x:" + id + ":" + field)).ConfigureAwait(false);
                var policy = field == "i" ? RedisPack.ReadRetry(RedisPack.Read((byte[])value!).Retry) : RedisJson.ReadRetryPolicy(value);
                delay = options.ResolveDelay(lease with { Attempt = attempt, RetryPolicy = policy }, _defaultRetryPolicy);
            }
            var reply = (RedisResult[])(await EvalAsync(db, _scripts.Fail, lease.Queue,
                [id, lease.LeaseToken, message, options.Retryable ? "1" : "0", Micros(delay), _wakeChannel, lease.Queue]).ConfigureAwait(false))!;
            return (int)reply[0] switch
            {
                0 => throw new LeaseLostException(lease.TaskId, lease.LeaseToken, StateOrNull((int)reply[1])),
                1 => new FailResult(TaskState.Pending, Time((string?)reply[1])),
                _ => new FailResult(TaskState.Failed, null),
            };
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw Unavailable("fail", ex);
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// One script per registered queue (concurrently): due delayed tasks move into their streams, then the PEL
    /// entries idle past <see cref="PelBaseMilliseconds"/> — the expired leases — are checked against their task
    /// hashes and re-queued as fresh entries or dead-lettered. Each script is atomic in its queue's slot, so each
    /// expired lease is reported by exactly one call however many nodes sweep at once.
    /// </remarks>
    public async Task<IReadOnlyList<ReclaimedTask>> ReclaimExpiredAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            var db = await DatabaseAsync().ConfigureAwait(false);
            var queues = await db.SetMembersAsync(_queuesKey).ConfigureAwait(false);
            var perQueue = await Task.WhenAll(queues.Select(async q =>
            {
                var queue = (string)q!;
                var found = new List<ReclaimedTask>();
                while (true)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var reply = (RedisResult[])(await EvalAsync(db, _scripts.Reclaim, queue,
                        [SweepLimit, _wakeChannel, queue, PelBaseMilliseconds, ConsumerIdleMilliseconds]).ConfigureAwait(false))!;
                    // Per task: id, tenant, attempt, token, worker of the expired lease, and the state it went to.
                    var rows = (RedisResult[])reply[1]!;
                    for (var i = 0; i + 5 < rows.Length; i += 6)
                    {
                        found.Add(new ReclaimedTask(
                            ParseHex((string)rows[i]!),
                            queue,
                            NullIfEmpty((string?)rows[i + 1]),
                            (int)Long((string?)rows[i + 2]),
                            Long((string?)rows[i + 3]),
                            NullIfEmpty((string?)rows[i + 4]),
                            (TaskState)(int)rows[i + 5]));
                    }
                    if ((int)reply[0] == 0) return found;
                }
            })).ConfigureAwait(false);
            return [.. perQueue.SelectMany(r => r)];
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw Unavailable("reclaim", ex);
        }
    }

    /// <inheritdoc />
    public async Task<ReclaimedTask?> ExpireLeaseAsync(Guid taskId, long leaseToken, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateExpireLease(taskId, leaseToken);
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            var db = await DatabaseAsync().ConfigureAwait(false);
            var found = await db.HashGetAsync(IdsKey(SlotOf(taskId)), Hex(taskId)).ConfigureAwait(false);
            if (found.IsNull) return null;
            var queue = (string)found!;
            var reply = (RedisResult[])(await EvalAsync(db, _scripts.ExpireLease, queue,
                [Hex(taskId), leaseToken, _wakeChannel, queue]).ConfigureAwait(false))!;
            if ((int)reply[0] == 0) return null;
            return new ReclaimedTask(taskId, queue, NullIfEmpty((string?)reply[1]), (int)Long((string?)reply[2]),
                Long((string?)reply[3]), NullIfEmpty((string?)reply[4]), (TaskState)(int)reply[5]);
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw Unavailable("expire lease", ex);
        }
    }

    // ---------------------------------------------------------------------------------------------- by id

    /// <inheritdoc />
    public async Task<bool> CancelAsync(Guid taskId, CancellationToken cancellationToken = default)
    {
        try
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
        catch (Exception ex) when (IsTransient(ex))
        {
            throw Unavailable("cancel", ex);
        }
    }

    /// <inheritdoc />
    public async Task RedriveAsync(Guid taskId, CancellationToken cancellationToken = default)
    {
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (db, queue) = await FindQueueAsync(taskId).ConfigureAwait(false);
            var outcome = (int)(await EvalAsync(db, _scripts.Redrive, queue, [Hex(taskId), _wakeChannel, queue]).ConfigureAwait(false));
            if (outcome == -1) throw new TaskNotFoundException(taskId);
            if (outcome != 100) throw new InvalidTaskStateException(taskId, (TaskState)outcome, "retry", RedriveStates);
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw Unavailable("redrive", ex);
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// The matching tasks are found as <see cref="QueryAsync"/> finds them (restricted to Pending and Running), then
    /// each is canceled by its queue's script, all in flight at once; the script re-checks the state, so a task that
    /// finished in between is not listed.
    /// </remarks>
    public async Task<IReadOnlyList<Guid>> CancelManyAsync(TaskQuery filter, int maxCount, CancellationToken cancellationToken = default)
    {
        try
        {
            TaskValidation.ValidateBulk(filter, maxCount);
            var states = TaskValidation.BulkStates(filter, TaskStateExtensions.CancelableStates);
            if (states.Count == 0) return [];
            var page = await QueryAsync(filter with { States = states }, new PageRequest(maxCount), cancellationToken).ConfigureAwait(false);
            var db = await DatabaseAsync().ConfigureAwait(false);
            var outcomes = await Task.WhenAll(page.Items.Select(t => EvalAsync(db, _scripts.Cancel, t.Queue, [Hex(t.Id)]))).ConfigureAwait(false);
            return [.. page.Items.Where((_, i) => (int)outcomes[i] == 100).Select(t => t.Id)];
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw Unavailable("cancel many", ex);
        }
    }

    /// <inheritdoc />
    /// <remarks>Found like <see cref="CancelManyAsync"/> (restricted to Failed and Canceled); each task is redriven by its queue's script.</remarks>
    public async Task<IReadOnlyList<Guid>> RedriveManyAsync(TaskQuery filter, int maxCount, CancellationToken cancellationToken = default)
    {
        try
        {
            TaskValidation.ValidateBulk(filter, maxCount);
            var states = TaskValidation.BulkStates(filter, TaskStateExtensions.RedrivableStates);
            if (states.Count == 0) return [];
            var page = await QueryAsync(filter with { States = states }, new PageRequest(maxCount), cancellationToken).ConfigureAwait(false);
            var db = await DatabaseAsync().ConfigureAwait(false);
            var outcomes = await Task.WhenAll(page.Items.Select(t => EvalAsync(db, _scripts.Redrive, t.Queue, [Hex(t.Id), _wakeChannel, t.Queue]))).ConfigureAwait(false);
            return [.. page.Items.Where((_, i) => (int)outcomes[i] == 100).Select(t => t.Id)];
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw Unavailable("redrive many", ex);
        }
    }

    /// <inheritdoc />
    public async Task<TaskSnapshot> GetAsync(Guid taskId, CancellationToken cancellationToken = default)
    {
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (db, queue) = await FindQueueAsync(taskId).ConfigureAwait(false);
            var snapshots = await LoadAsync(db, queue, [Hex(taskId)]).ConfigureAwait(false);
            return snapshots[0] ?? throw new TaskNotFoundException(taskId);
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw Unavailable("get", ex);
        }
    }

    private async Task<(IDatabase Db, string Queue)> FindQueueAsync(Guid taskId)
    {
        var db = await DatabaseAsync().ConfigureAwait(false);
        var queue = await db.HashGetAsync(IdsKey(SlotOf(taskId)), Hex(taskId)).ConfigureAwait(false);
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
            snapshots[i] = ToSnapshot(ids[i], queue, ToHash(reply[2 * i]), (RedisResult[])reply[(2 * i) + 1]!);
        }
        return snapshots;
    }

    // ---------------------------------------------------------------------------------------------- plumbing

    private async Task<IDatabase> DatabaseAsync()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var connection = await _connection.Value.ConfigureAwait(false);
        Volatile.Write(ref _multiplexer, connection);
        return connection.GetDatabase();
    }

    /// <summary>
    /// Runs <paramref name="script"/> on <paramref name="queue"/>'s slot by SHA1; on <c>NOSCRIPT</c> (script cache
    /// flushed, failover, new node) re-sends it as <c>EVAL</c> with its text, which caches it again.
    /// </summary>
    internal Task<RedisResult> EvalAsync(IDatabase db, RedisScript script, string queue, RedisValue[] args) =>
        EvalAsync(db, script, [QueueBase(queue)], args);

    /// <summary>Runs <paramref name="script"/> with <paramref name="keys"/> (all in one slot); see the overload above.</summary>
    internal static async Task<RedisResult> EvalAsync(IDatabase db, RedisScript script, RedisKey[] keys, RedisValue[] args)
    {
        try
        {
            return await db.ScriptEvaluateAsync(script.Sha1Bytes, keys, args).ConfigureAwait(false);
        }
        catch (RedisServerException ex) when (ex.Message.StartsWith("NOSCRIPT", StringComparison.Ordinal))
        {
            var command = new List<object>(2 + keys.Length + args.Length) { script.Text, keys.Length };
            foreach (var key in keys) command.Add(key);
            foreach (var arg in args) command.Add(arg);
            return await db.ExecuteAsync("EVAL", command).ConfigureAwait(false);
        }
    }

    internal static string Hex(Guid id) => id.ToString("N");

    private static Guid ParseHex(string id) => Guid.ParseExact(id, "N");

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

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

    private static DateTimeOffset FromMicros(long micros) => new(UnixEpochTicks + (micros * 10), TimeSpan.Zero);

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

    // Id and queue come from the key (hashes written before the pack also held them as 'id' and 'q').
    private static TaskSnapshot ToSnapshot(string id, string queue, Dictionary<string, RedisValue> h, RedisResult[] errors)
    {
        var state = (TaskState)Long(Str(h, "s"));
        // The immutable fields: packed in 'i' (issue 16), or separate fields in a hash from before the pack.
        var pack = h.TryGetValue("i", out var i)
            ? RedisPack.Read((byte[])i!)
            : new RedisPack.Fields(Long(Str(h, "ca")), (int)Long(Str(h, "m")), Str(h, "tn"), Str(h, "hd") ?? "", "");
        return new TaskSnapshot
        {
            Id = ParseHex(id),
            Queue = queue,
            State = state,
            Priority = (int)Long(Str(h, "p")),
            Attempts = (int)Long(Str(h, "a")),
            MaxAttempts = pack.MaxAttempts,
            LeaseToken = Long(Str(h, "tk")),
            RunAt = Time(Str(h, "ra")),
            EnqueuedAt = FromMicros(pack.CreatedMicros),
            UpdatedAt = Time(Str(h, "ua")),
            StartedAt = OptionalTime(Str(h, "sa")),
            FinishedAt = OptionalTime(Str(h, "fa")),
            WorkerId = Str(h, "o"),
            LeaseExpiresAt = state == TaskState.Running ? OptionalTime(Str(h, "le")) : null,
            IdempotencyKey = Str(h, "k"),
            Tenant = pack.Tenant,
            Headers = RedisJson.ReadHeaders(pack.HeadersJson),
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
}
