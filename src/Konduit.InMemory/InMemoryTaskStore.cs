using System.Collections.ObjectModel;

namespace Konduit.InMemory;

/// <summary>
/// The reference <see cref="ITaskStore"/>: every rule of the contract, implemented as plainly as possible with
/// one lock around in-process collections. Nothing survives the process; use it in tests, samples and
/// single-process tools, and as the oracle other stores are compared with.
/// </summary>
/// <remarks>
/// Time comes from the <see cref="TimeProvider"/> given at construction (the "store clock"), so tests can drive
/// lease expiry and backoff with a fake clock. Returned leases and snapshots are copies: mutating their arrays
/// does not change stored state.
/// </remarks>
public sealed class InMemoryTaskStore : ITaskStore
{
    private static readonly IReadOnlyDictionary<string, string> NoHeaders =
        new ReadOnlyDictionary<string, string>(new Dictionary<string, string>());

    private static readonly TaskState[] RedriveStates = [TaskState.Failed, TaskState.Canceled];

    // One lock guards every collection and every TaskRecord field: simplest correct concurrency.
    private readonly Lock _gate = new();
    private readonly Dictionary<Guid, TaskRecord> _tasks = [];
    private readonly Dictionary<(string Queue, string Key), Guid> _keys = [];
    private readonly Dictionary<string, SortedSet<TaskRecord>> _pending = new(StringComparer.Ordinal);
    private readonly HashSet<TaskRecord> _running = [];
    private readonly SortedSet<string> _paused = new(StringComparer.Ordinal);
    private readonly QueueWakeUpSignals _signals;
    private readonly TimeProvider _time;
    private readonly int _maxPayloadBytes;
    private readonly RetryPolicy _defaultRetryPolicy;
    private bool _disposed;

    /// <summary>Creates an empty store.</summary>
    /// <param name="options">Common store settings; defaults when null. Validated here.</param>
    /// <param name="timeProvider">The store clock; <see cref="TimeProvider.System"/> when null.</param>
    public InMemoryTaskStore(InMemoryTaskStoreOptions? options = null, TimeProvider? timeProvider = null)
    {
        options ??= new InMemoryTaskStoreOptions();
        options.Validate();
        // Copied so that later changes to the options object do not change a running store.
        _maxPayloadBytes = options.MaxPayloadBytes;
        _defaultRetryPolicy = options.DefaultRetryPolicy;
        _time = timeProvider ?? TimeProvider.System;
        _signals = new QueueWakeUpSignals(_time);
    }

    /// <inheritdoc />
    public string Name => "inmemory";

    /// <inheritdoc />
    public StoreCapabilities Capabilities { get; } = new() { PushWakeUp = true, TransactionalEnqueue = false, OrdersByRunAt = true, StrictLeaseOrder = true, AtomicCrossQueueBatches = true };

    /// <inheritdoc />
    public Task<EnqueueResult> EnqueueAsync(EnqueueRequest request, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateEnqueue(request, _maxPayloadBytes);
        cancellationToken.ThrowIfCancellationRequested();
        EnqueueResult result;
        lock (_gate)
        {
            ThrowIfDisposed();
            result = EnqueueLocked(request, _time.GetUtcNow());
            if (result.Created) SignalLocked(request.Queue);
        }
        return Task.FromResult(result);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateEnqueueBatch(requests, _maxPayloadBytes);
        cancellationToken.ThrowIfCancellationRequested();
        var results = new EnqueueResult[requests.Count];
        lock (_gate)
        {
            ThrowIfDisposed();
            // Everything was validated and nothing below can fail, so the batch is all-or-nothing. Inserting in
            // order makes a key repeated inside the batch resolve to its first occurrence.
            var now = _time.GetUtcNow();
            for (var i = 0; i < requests.Count; i++)
            {
                results[i] = EnqueueLocked(requests[i], now);
                if (results[i].Created) SignalLocked(requests[i].Queue);
            }
        }
        return Task.FromResult<IReadOnlyList<EnqueueResult>>(results);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<TaskLease>> LeaseAsync(string queue, string workerId, int maxCount, TimeSpan leaseDuration, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateLease(queue, workerId, maxCount, leaseDuration);
        cancellationToken.ThrowIfCancellationRequested();
        var leases = new List<TaskLease>();
        lock (_gate)
        {
            ThrowIfDisposed();
            if (_paused.Contains(queue) || !_pending.TryGetValue(queue, out var pending)) return Task.FromResult<IReadOnlyList<TaskLease>>(leases);
            var now = _time.GetUtcNow();
            var picked = new List<TaskRecord>();
            // The set is in lease order (priority desc, run_at asc, id asc); skip tasks not yet due.
            foreach (var task in pending)
            {
                if (task.RunAt > now) continue;
                picked.Add(task);
                if (picked.Count == maxCount) break;
            }
            foreach (var task in picked)
            {
                pending.Remove(task);
                task.State = TaskState.Running;
                task.Attempts++;
                task.Token++;
                task.WorkerId = workerId;
                task.LeaseExpiresAt = now + leaseDuration;
                task.StartedAt ??= now;
                task.UpdatedAt = now;
                _running.Add(task);
                leases.Add(ToLease(task));
            }
        }
        return Task.FromResult<IReadOnlyList<TaskLease>>(leases);
    }

    /// <inheritdoc />
    public Task<TaskLease> HeartbeatAsync(TaskLease lease, TimeSpan extension, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        TaskValidation.ValidateDuration(extension, nameof(extension));
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            ThrowIfDisposed();
            var now = _time.GetUtcNow();
            var task = ValidLeaseLocked(lease, now);
            task.LeaseExpiresAt = now + extension;
            return Task.FromResult(lease with { ExpiresAt = task.LeaseExpiresAt.Value });
        }
    }

    /// <inheritdoc />
    public Task<HeartbeatManyResult> HeartbeatManyAsync(IReadOnlyList<TaskLease> leases, TimeSpan extension, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateHeartbeats(leases, extension);
        cancellationToken.ThrowIfCancellationRequested();
        var renewed = new List<TaskLease>(leases.Count);
        var lost = new List<Guid>();
        lock (_gate)
        {
            ThrowIfDisposed();
            var now = _time.GetUtcNow();
            foreach (var lease in leases)
            {
                if (TryGetValidLeaseLocked(lease, now, out var task))
                {
                    task.LeaseExpiresAt = now + extension;
                    renewed.Add(lease with { ExpiresAt = task.LeaseExpiresAt.Value });
                }
                else
                {
                    lost.Add(lease.TaskId);
                }
            }
        }
        return Task.FromResult(new HeartbeatManyResult(renewed, lost));
    }

    /// <inheritdoc />
    public Task CompleteAsync(TaskLease lease, byte[]? result = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            ThrowIfDisposed();
            var now = _time.GetUtcNow();
            CompleteLocked(ValidLeaseLocked(lease, now), result, now);
        }
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<Guid>> CompleteManyAsync(IReadOnlyList<TaskCompletion> completions, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateCompletions(completions);
        cancellationToken.ThrowIfCancellationRequested();
        var lost = new List<Guid>();
        lock (_gate)
        {
            ThrowIfDisposed();
            var now = _time.GetUtcNow();
            foreach (var (lease, result) in completions)
            {
                if (TryGetValidLeaseLocked(lease, now, out var task)) CompleteLocked(task, result, now);
                else lost.Add(lease.TaskId);
            }
        }
        return Task.FromResult<IReadOnlyList<Guid>>(lost);
    }

    /// <inheritdoc />
    public Task<FailResult> FailAsync(TaskLease lease, string error, FailOptions? options = null, CancellationToken cancellationToken = default)
    {
        var message = TaskValidation.ValidateFail(lease, error, options);
        options ??= FailOptions.Retry;
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            ThrowIfDisposed();
            var now = _time.GetUtcNow();
            var task = ValidLeaseLocked(lease, now);
            _running.Remove(task);
            task.Errors.Add(new TaskError(task.Attempts, message, now));
            task.LeaseExpiresAt = null;
            task.UpdatedAt = now;
            if (options.Retryable && task.Attempts < task.MaxAttempts)
            {
                // Resolve against the stored task, not whatever policy/attempt the caller's lease object claims.
                var delay = options.ResolveDelay(lease with { Attempt = task.Attempts, RetryPolicy = task.RetryPolicy }, _defaultRetryPolicy);
                task.RunAt = now + delay;
                task.State = TaskState.Pending;
                PendingSetLocked(task.Queue).Add(task);
                SignalLocked(task.Queue);
                return Task.FromResult(new FailResult(TaskState.Pending, task.RunAt));
            }
            task.State = TaskState.Failed;
            task.FinishedAt = now;
            return Task.FromResult(new FailResult(TaskState.Failed, null));
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<ReclaimedTask>> ReclaimExpiredAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            ThrowIfDisposed();
            var now = _time.GetUtcNow();
            // A lease is valid while now < expiry, so it is expired from the expiry instant on.
            var expired = _running.Where(t => t.LeaseExpiresAt <= now).ToList();
            var reclaimed = new List<ReclaimedTask>(expired.Count);
            foreach (var task in expired) reclaimed.Add(ExpireLocked(task, now));
            return Task.FromResult<IReadOnlyList<ReclaimedTask>>(reclaimed);
        }
    }

    /// <inheritdoc />
    public Task<ReclaimedTask?> ExpireLeaseAsync(Guid taskId, long leaseToken, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateExpireLease(taskId, leaseToken);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            ThrowIfDisposed();
            // Fenced: only the current lease (Running with this very token) is ended, whatever its expiry time.
            if (!_tasks.TryGetValue(taskId, out var task) || task.State != TaskState.Running || task.Token != leaseToken)
                return Task.FromResult<ReclaimedTask?>(null);
            return Task.FromResult<ReclaimedTask?>(ExpireLocked(task, _time.GetUtcNow()));
        }
    }

    // The one transition of an ended lease, shared by the sweeper and ExpireLeaseAsync so both report alike.
    private ReclaimedTask ExpireLocked(TaskRecord task, DateTimeOffset now)
    {
        _running.Remove(task);
        task.Errors.Add(new TaskError(task.Attempts, "lease expired", now));
        task.LeaseExpiresAt = null;
        task.UpdatedAt = now;
        if (task.Attempts >= task.MaxAttempts)
        {
            task.State = TaskState.Failed;
            task.FinishedAt = now;
        }
        else
        {
            task.State = TaskState.Pending;
            task.RunAt = now;
            PendingSetLocked(task.Queue).Add(task);
            SignalLocked(task.Queue);
        }
        return new ReclaimedTask(task.Id, task.Queue, task.Tenant, task.Attempts, task.Token, task.WorkerId, task.State);
    }

    /// <inheritdoc />
    public Task<bool> CancelAsync(Guid taskId, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            ThrowIfDisposed();
            var task = FindLocked(taskId);
            if (task.State.IsTerminal()) return Task.FromResult(false);
            CancelLocked(task, _time.GetUtcNow());
            return Task.FromResult(true);
        }
    }

    /// <inheritdoc />
    public Task RedriveAsync(Guid taskId, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            ThrowIfDisposed();
            var task = FindLocked(taskId);
            if (task.State is not (TaskState.Failed or TaskState.Canceled))
                throw new InvalidTaskStateException(taskId, task.State, "retry", RedriveStates);
            RedriveLocked(task, _time.GetUtcNow());
        }
        return Task.CompletedTask;
    }

    // One transition each for the single-id and the bulk calls; the caller holds _gate and has checked the state.
    private void CancelLocked(TaskRecord task, DateTimeOffset now)
    {
        if (task.State == TaskState.Pending) _pending[task.Queue].Remove(task);
        else _running.Remove(task);
        task.State = TaskState.Canceled;
        task.LeaseExpiresAt = null;
        task.FinishedAt = now;
        task.UpdatedAt = now;
    }

    private void RedriveLocked(TaskRecord task, DateTimeOffset now)
    {
        task.State = TaskState.Pending;
        task.Attempts = 0;
        task.RunAt = now;
        task.FinishedAt = null;
        task.UpdatedAt = now;
        PendingSetLocked(task.Queue).Add(task);
        SignalLocked(task.Queue);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<Guid>> CancelManyAsync(TaskQuery filter, int maxCount, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateBulk(filter, maxCount);
        var states = TaskValidation.BulkStates(filter, TaskStateExtensions.CancelableStates);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            ThrowIfDisposed();
            var now = _time.GetUtcNow();
            var picked = MatchLocked(filter, states, after: null).Take(maxCount).ToList();
            foreach (var task in picked) CancelLocked(task, now);
            return Task.FromResult<IReadOnlyList<Guid>>(picked.ConvertAll(t => t.Id));
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<Guid>> RedriveManyAsync(TaskQuery filter, int maxCount, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateBulk(filter, maxCount);
        var states = TaskValidation.BulkStates(filter, TaskStateExtensions.RedrivableStates);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            ThrowIfDisposed();
            var now = _time.GetUtcNow();
            var picked = MatchLocked(filter, states, after: null).Take(maxCount).ToList();
            foreach (var task in picked) RedriveLocked(task, now);
            return Task.FromResult<IReadOnlyList<Guid>>(picked.ConvertAll(t => t.Id));
        }
    }

    /// <inheritdoc />
    public Task PauseQueueAsync(string queue, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateQueue(queue);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            ThrowIfDisposed();
            _paused.Add(queue);
        }
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task ResumeQueueAsync(string queue, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateQueue(queue);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            ThrowIfDisposed();
            if (_paused.Remove(queue)) SignalLocked(queue);
        }
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task<IReadOnlyCollection<string>> GetPausedQueuesAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            ThrowIfDisposed();
            return Task.FromResult<IReadOnlyCollection<string>>([.. _paused]);
        }
    }

    /// <inheritdoc />
    public Task<TaskSnapshot> GetAsync(Guid taskId, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            ThrowIfDisposed();
            return Task.FromResult(ToSnapshot(FindLocked(taskId)));
        }
    }

    /// <inheritdoc />
    public Task<TaskPage> QueryAsync(TaskQuery filter, PageRequest? page = null, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateQuery(filter, page);
        page ??= PageRequest.First;
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            ThrowIfDisposed();
            var matches = MatchLocked(filter, filter.States is { Count: > 0 } s ? s : null, page.After)
                .Take(page.Limit + 1)
                .ToList();
            var hasMore = matches.Count > page.Limit;
            if (hasMore) matches.RemoveAt(matches.Count - 1);
            var items = matches.Select(ToSnapshot).ToArray();
            return Task.FromResult(new TaskPage(items, hasMore ? items[^1].Id : null));
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<QueueStats>> GetStatsAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            ThrowIfDisposed();
            var now = _time.GetUtcNow();
            var stats = _tasks.Values
                .GroupBy(t => t.Queue, StringComparer.Ordinal)
                .OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g =>
                {
                    var due = g.Where(t => t.State == TaskState.Pending && t.RunAt <= now).ToList();
                    var pending = g.LongCount(t => t.State == TaskState.Pending);
                    return new QueueStats(
                        g.Key,
                        pending,
                        g.LongCount(t => t.State == TaskState.Running),
                        g.LongCount(t => t.State == TaskState.Succeeded),
                        g.LongCount(t => t.State == TaskState.Failed),
                        g.LongCount(t => t.State == TaskState.Canceled))
                    {
                        PendingDue = due.Count,
                        PendingScheduled = pending - due.Count,
                        OldestDueAt = due.Count == 0 ? null : due.Min(t => t.RunAt),
                    };
                })
                .ToArray();
            return Task.FromResult<IReadOnlyList<QueueStats>>(stats);
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<PurgedTask>> PurgeAsync(TimeSpan olderThan, IReadOnlyCollection<TaskState>? states = null, string? queue = null, CancellationToken cancellationToken = default)
    {
        var purgeStates = TaskValidation.ValidatePurge(olderThan, states, queue);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            ThrowIfDisposed();
            var cutoff = _time.GetUtcNow() - olderThan;
            var doomed = _tasks.Values
                .Where(t => purgeStates.Contains(t.State) && t.FinishedAt <= cutoff)
                .Where(t => queue is null || string.Equals(t.Queue, queue, StringComparison.Ordinal))
                .ToList();
            foreach (var task in doomed)
            {
                _tasks.Remove(task.Id);
                if (task.IdempotencyKey is { } key) _keys.Remove((task.Queue, key));
            }
            return Task.FromResult<IReadOnlyList<PurgedTask>>(doomed.ConvertAll(t => new PurgedTask(t.Id, t.Queue, t.Tenant, t.State)));
        }
    }

    /// <inheritdoc />
    public Task<bool> WaitForWorkAsync(string queue, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateQueue(queue);
        TaskValidation.ValidateWaitTimeout(timeout);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate) ThrowIfDisposed();
        return _signals.WaitAsync(queue, timeout, cancellationToken);
    }

    /// <summary>Releases callers blocked in <see cref="WaitForWorkAsync"/> (they return false); later calls throw <see cref="ObjectDisposedException"/>.</summary>
    public ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (_disposed) return ValueTask.CompletedTask;
            _disposed = true;
        }
        _signals.Close();
        return ValueTask.CompletedTask;
    }

    // The tasks matching a query filter (states: null = any), newest first, below the cursor when given.
    private IEnumerable<TaskRecord> MatchLocked(TaskQuery filter, IReadOnlyCollection<TaskState>? states, Guid? after) =>
        _tasks.Values
            .Where(t => filter.Queue is null || string.Equals(t.Queue, filter.Queue, StringComparison.Ordinal))
            .Where(t => states is null || states.Contains(t.State))
            .Where(t => filter.Tenant is null || string.Equals(t.Tenant, filter.Tenant, StringComparison.Ordinal))
            .Where(t => filter.EnqueuedFrom is not { } from || t.EnqueuedAt >= from)
            .Where(t => filter.EnqueuedTo is not { } to || t.EnqueuedAt < to)
            .Where(t => filter.FinishedFrom is not { } from || t.FinishedAt >= from)
            .Where(t => filter.FinishedTo is not { } to || t.FinishedAt < to)
            .Where(t => after is not { } cursor || t.Id.CompareTo(cursor) < 0)
            // Guid.CompareTo orders by the RFC 9562 byte layout, which is the id (enqueue) order.
            .OrderByDescending(t => t.Id);

    private EnqueueResult EnqueueLocked(EnqueueRequest request, DateTimeOffset now)
    {
        if (request.IdempotencyKey is { } key && _keys.TryGetValue((request.Queue, key), out var existing))
            return new EnqueueResult(existing, Created: false);

        var task = new TaskRecord
        {
            Id = TaskIdGenerator.NewId(),
            Queue = request.Queue,
            Priority = request.Priority,
            RunAt = request.RunAt?.ToUniversalTime() ?? now,
            MaxAttempts = request.MaxAttempts,
            EnqueuedAt = now,
            UpdatedAt = now,
            IdempotencyKey = request.IdempotencyKey,
            Tenant = request.Tenant,
            Headers = request.Headers is { Count: > 0 } headers
                ? new ReadOnlyDictionary<string, string>(headers.ToDictionary(h => h.Key, h => h.Value, StringComparer.Ordinal))
                : NoHeaders,
            Payload = (byte[])request.Payload.Clone(),
            RetryPolicy = request.RetryPolicy,
        };
        _tasks.Add(task.Id, task);
        if (task.IdempotencyKey is not null) _keys.Add((task.Queue, task.IdempotencyKey), task.Id);
        PendingSetLocked(task.Queue).Add(task);
        return new EnqueueResult(task.Id, Created: true);
    }

    private void CompleteLocked(TaskRecord task, byte[]? result, DateTimeOffset now)
    {
        _running.Remove(task);
        task.State = TaskState.Succeeded;
        task.Result = result is null ? null : (byte[])result.Clone();
        task.LeaseExpiresAt = null;
        task.FinishedAt = now;
        task.UpdatedAt = now;
    }

    private TaskRecord ValidLeaseLocked(TaskLease lease, DateTimeOffset now)
    {
        if (TryGetValidLeaseLocked(lease, now, out var task)) return task;
        throw new LeaseLostException(lease.TaskId, lease.LeaseToken, _tasks.TryGetValue(lease.TaskId, out var current) ? current.State : null);
    }

    private bool TryGetValidLeaseLocked(TaskLease lease, DateTimeOffset now, out TaskRecord task)
    {
        // Valid iff Running, same fencing token, and not expired by the store clock.
        if (_tasks.TryGetValue(lease.TaskId, out task!)
            && task.State == TaskState.Running
            && task.Token == lease.LeaseToken
            && now < task.LeaseExpiresAt)
        {
            return true;
        }
        return false;
    }

    private TaskRecord FindLocked(Guid taskId) =>
        _tasks.TryGetValue(taskId, out var task) ? task : throw new TaskNotFoundException(taskId);

    private SortedSet<TaskRecord> PendingSetLocked(string queue)
    {
        if (!_pending.TryGetValue(queue, out var set))
        {
            set = new SortedSet<TaskRecord>(LeaseOrder.Instance);
            _pending.Add(queue, set);
        }
        return set;
    }

    // Called under _gate, after the change it announces: a waiter woken by it sees the change.
    private void SignalLocked(string queue) => _signals.Signal(queue);

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    private static TaskLease ToLease(TaskRecord task) => new()
    {
        TaskId = task.Id,
        Queue = task.Queue,
        WorkerId = task.WorkerId!,
        LeaseToken = task.Token,
        Attempt = task.Attempts,
        MaxAttempts = task.MaxAttempts,
        ExpiresAt = task.LeaseExpiresAt!.Value,
        Payload = (byte[])task.Payload.Clone(),
        Priority = task.Priority,
        Tenant = task.Tenant,
        Headers = task.Headers,
        RetryPolicy = task.RetryPolicy,
        EnqueuedAt = task.EnqueuedAt,
        RunAt = task.RunAt,
    };

    private static TaskSnapshot ToSnapshot(TaskRecord task) => new()
    {
        Id = task.Id,
        Queue = task.Queue,
        State = task.State,
        Priority = task.Priority,
        Attempts = task.Attempts,
        MaxAttempts = task.MaxAttempts,
        LeaseToken = task.Token,
        RunAt = task.RunAt,
        EnqueuedAt = task.EnqueuedAt,
        UpdatedAt = task.UpdatedAt,
        StartedAt = task.StartedAt,
        FinishedAt = task.FinishedAt,
        WorkerId = task.WorkerId,
        LeaseExpiresAt = task.State == TaskState.Running ? task.LeaseExpiresAt : null,
        IdempotencyKey = task.IdempotencyKey,
        Tenant = task.Tenant,
        Headers = task.Headers,
        Payload = (byte[])task.Payload.Clone(),
        Result = task.Result is null ? null : (byte[])task.Result.Clone(),
        Errors = [.. task.Errors],
    };

    /// <summary>Mutable state of one task; only touched under the store's lock.</summary>
    private sealed class TaskRecord
    {
        public required Guid Id { get; init; }
        public required string Queue { get; init; }
        public TaskState State { get; set; }
        public int Priority { get; init; }
        public int Attempts { get; set; }
        public int MaxAttempts { get; init; }
        public long Token { get; set; }
        // Part of the pending set's sort key: change only while the task is out of the set.
        public DateTimeOffset RunAt { get; set; }
        public DateTimeOffset EnqueuedAt { get; init; }
        public DateTimeOffset UpdatedAt { get; set; }
        public DateTimeOffset? StartedAt { get; set; }
        public DateTimeOffset? FinishedAt { get; set; }
        public string? WorkerId { get; set; }
        public DateTimeOffset? LeaseExpiresAt { get; set; }
        public string? IdempotencyKey { get; init; }
        public string? Tenant { get; init; }
        public required IReadOnlyDictionary<string, string> Headers { get; init; }
        public required byte[] Payload { get; init; }
        public byte[]? Result { get; set; }
        public RetryPolicy? RetryPolicy { get; init; }
        public List<TaskError> Errors { get; } = [];
    }

    /// <summary>Lease order: priority descending, run-at ascending, id (enqueue order) ascending.</summary>
    private sealed class LeaseOrder : IComparer<TaskRecord>
    {
        public static readonly LeaseOrder Instance = new();

        public int Compare(TaskRecord? x, TaskRecord? y)
        {
            if (ReferenceEquals(x, y)) return 0;
            if (x is null) return -1;
            if (y is null) return 1;
            var c = y.Priority.CompareTo(x.Priority);
            if (c != 0) return c;
            c = x.RunAt.UtcTicks.CompareTo(y.RunAt.UtcTicks);
            return c != 0 ? c : x.Id.CompareTo(y.Id);
        }
    }
}
