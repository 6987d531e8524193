namespace Konduit;

/// <summary>
/// A durable task store: the whole contract a backend implements. The conformance suite
/// (<c>Konduit.Testing.Conformance</c>) is the executable specification of everything documented here.
/// </summary>
/// <remarks>
/// <para>Times are UTC and the store's clock decides expiry and due times.</para>
/// <para>
/// A lease is valid while the task is <see cref="TaskState.Running"/>, its current fencing token equals the
/// lease's <see cref="TaskLease.LeaseToken"/>, and the lease has not expired by the store's clock. Heartbeat,
/// complete and fail on an invalid lease throw <see cref="LeaseLostException"/> and change nothing, so at most
/// one complete or fail is ever accepted per lease.
/// </para>
/// <para>
/// Expired leases are returned to the queue by <see cref="ReclaimExpiredAsync"/> (the sweeper, run on every
/// node); <see cref="LeaseAsync"/> hands out only pending, due tasks.
/// </para>
/// <para>Every method validates its arguments first (see <see cref="TaskValidation"/>); bad input throws an
/// <see cref="ArgumentException"/> and leaves the store unchanged.</para>
/// <para>Implementations are safe for concurrent use by many callers, processes and nodes.</para>
/// </remarks>
public interface ITaskStore : IAsyncDisposable
{
    /// <summary>A short lowercase name for metrics and logs, e.g. <c>postgres</c>.</summary>
    string Name { get; }

    /// <summary>The optional features this store implements.</summary>
    StoreCapabilities Capabilities { get; }

    /// <summary>
    /// Stores a new pending task, or — when a task with the same (queue, idempotency key) exists in any state —
    /// returns that task's id with <see cref="EnqueueResult.Created"/> = false and changes nothing. Once this
    /// returns, the task is durable. Concurrent callers racing on one key get one task.
    /// </summary>
    Task<EnqueueResult> EnqueueAsync(EnqueueRequest request, CancellationToken cancellationToken = default);

    /// <summary>
    /// Enqueues a batch: all requests are validated first, then all are stored or none is — within one queue on
    /// every store, and across queues on stores that declare <see cref="StoreCapabilities.AtomicCrossQueueBatches"/>
    /// (elsewhere a batch spanning queues is applied queue by queue, each queue's part whole or not at all). Results
    /// are in request order. A key repeated inside the batch yields the first occurrence's id with
    /// <see cref="EnqueueResult.Created"/> = false for the later ones. An empty batch returns an empty list.
    /// </summary>
    Task<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, CancellationToken cancellationToken = default);

    /// <summary>
    /// Leases up to <paramref name="maxCount"/> due pending tasks of <paramref name="queue"/>, ordered by priority
    /// (descending), run-at, then enqueue order. Each leased task becomes Running, its attempt count and fencing
    /// token increase by one, and its lease expires <paramref name="leaseDuration"/> (at most
    /// <see cref="TaskValidation.MaxLeaseDuration"/>) from now. Returns an empty
    /// list when nothing is due. Never returns a task that is running, scheduled in the future or terminal; two
    /// concurrent callers never receive the same task. A paused queue (<see cref="PauseQueueAsync"/>) leases nothing.
    /// </summary>
    Task<IReadOnlyList<TaskLease>> LeaseAsync(string queue, string workerId, int maxCount, TimeSpan leaseDuration, CancellationToken cancellationToken = default);

    /// <summary>
    /// Extends a valid lease so that it expires <paramref name="extension"/> (at most <see cref="TaskValidation.MaxLeaseDuration"/>)
    /// from now (store clock) and returns
    /// the lease with its new <see cref="TaskLease.ExpiresAt"/>. Throws <see cref="LeaseLostException"/> when the
    /// lease is no longer valid.
    /// </summary>
    Task<TaskLease> HeartbeatAsync(TaskLease lease, TimeSpan extension, CancellationToken cancellationToken = default);

    /// <summary>
    /// Extends many leases in one round trip, each to <paramref name="extension"/> from now (store clock). Each lease
    /// is judged on its own like <see cref="HeartbeatAsync"/>; instead of throwing, the result lists the still-valid
    /// leases with their new <see cref="TaskLease.ExpiresAt"/> (<see cref="HeartbeatManyResult.Renewed"/>, in input
    /// order) and the ids of the tasks whose lease was lost (<see cref="HeartbeatManyResult.Lost"/>; nothing changes
    /// for them). Renewal is idempotent: a lease listed twice is renewed and reported renewed for each copy. An empty
    /// list returns an empty result. A null entry is refused with <see cref="ArgumentException"/> before anything
    /// changes.
    /// </summary>
    Task<HeartbeatManyResult> HeartbeatManyAsync(IReadOnlyList<TaskLease> leases, TimeSpan extension, CancellationToken cancellationToken = default);

    /// <summary>Marks the task Succeeded and stores <paramref name="result"/>. Throws <see cref="LeaseLostException"/> when the lease is no longer valid.</summary>
    Task CompleteAsync(TaskLease lease, byte[]? result = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Completes many leases in one round trip. Each completion is judged on its own like
    /// <see cref="CompleteAsync"/>; instead of throwing, returns the ids of the tasks whose lease was lost
    /// (empty when all were accepted). A lease listed twice is accepted once and its later copy reported lost.
    /// An entry without a lease is refused with <see cref="ArgumentException"/> before anything changes.
    /// </summary>
    Task<IReadOnlyList<Guid>> CompleteManyAsync(IReadOnlyList<TaskCompletion> completions, CancellationToken cancellationToken = default);

    /// <summary>
    /// Completes one lease and leases up to <paramref name="maxCount"/> more tasks of the same queue
    /// (<see cref="TaskLease.Queue"/> of the completed lease) in one call: the unbatched worker's cycle, where a task's
    /// completion fetches the slot's next task (issue 15). The completion is judged like <see cref="CompleteManyAsync"/>:
    /// a lease that is no longer valid is reported with <see cref="CompleteAndLeaseResult.Completed"/> = false and
    /// changes nothing, and the lease half is taken all the same. The lease half is exactly <see cref="LeaseAsync"/>
    /// (order, due-ness, a paused queue leasing nothing, no task handed out twice). Bad input (a completion without a
    /// lease, a bad worker id, <paramref name="maxCount"/> or <paramref name="leaseDuration"/> out of range) throws the
    /// exceptions <see cref="LeaseAsync"/> throws before anything changes. The default is <see cref="CompleteManyAsync"/>
    /// then <see cref="LeaseAsync"/> (two round trips); stores that can do both in one override it. In the default, a
    /// lease half that fails once the completion is recorded (anything but cancellation) returns the completion's result
    /// with no leases instead of throwing.
    /// </summary>
    /// <param name="completion">The lease to complete and its optional result.</param>
    /// <param name="workerId">The worker that takes the new leases (1–128 characters).</param>
    /// <param name="maxCount">How many tasks to lease, 1–<see cref="TaskValidation.MaxLeaseCount"/>.</param>
    /// <param name="leaseDuration">The new leases' duration (positive, at most <see cref="TaskValidation.MaxLeaseDuration"/>).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <exception cref="ArgumentException">The completion has no lease, or the worker id is bad.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxCount"/> or <paramref name="leaseDuration"/> is out of range.</exception>
    async Task<CompleteAndLeaseResult> CompleteAndLeaseAsync(TaskCompletion completion, string workerId, int maxCount, TimeSpan leaseDuration,
        CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateCompleteAndLease(completion, workerId, maxCount, leaseDuration);
        var lost = await CompleteManyAsync([completion], cancellationToken).ConfigureAwait(false);
        IReadOnlyList<TaskLease> leases;
        try
        {
            leases = await LeaseAsync(completion.Lease.Queue, workerId, maxCount, leaseDuration, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The completion is recorded: throwing now would make a caller retry it and find it done (a finished task
            // reported lost). The failed lease leaves nothing behind; the next lease call meets the store's error itself.
            return new CompleteAndLeaseResult(lost.Count == 0, []);
        }
        return new CompleteAndLeaseResult(lost.Count == 0, leases);
    }

    /// <summary>
    /// Records a failure of the leased attempt (the error is appended to the task's history). When
    /// <see cref="FailOptions.Retryable"/> and attempts remain, the task returns to Pending, due after the backoff
    /// (<see cref="FailOptions.ResolveDelay"/>, at most <see cref="TaskValidation.MaxRetryDelay"/>); otherwise it is
    /// dead-lettered (Failed). The error text is never a reason to refuse: it is recorded as
    /// <see cref="TaskValidation.SanitizeErrorText"/> returns it (NUL and unpaired surrogates replaced with U+FFFD,
    /// cut to <see cref="TaskValidation.MaxErrorLength"/>). Throws <see cref="LeaseLostException"/> when the lease
    /// is no longer valid.
    /// </summary>
    Task<FailResult> FailAsync(TaskLease lease, string error, FailOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// The sweeper: every Running task whose lease has expired gets an error entry ("lease expired") and goes
    /// back to Pending, due now — or to Failed when it has used all its attempts (the attempt counted at lease
    /// time), so a task that kills its worker every time ends dead-lettered. Returns each task reclaimed by this
    /// call (queue, tenant, the expired lease's attempt, token and worker, and the state it went to), so callers on
    /// any node can record the transition. Safe to run concurrently on many nodes: each expired lease is reclaimed
    /// exactly once, so it appears in exactly one call's result.
    /// </summary>
    Task<IReadOnlyList<ReclaimedTask>> ReclaimExpiredAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Ends exactly the lease (<paramref name="taskId"/>, <paramref name="leaseToken"/>) as if it had expired now,
    /// whatever its expiry time: the same outcome as <see cref="ReclaimExpiredAsync"/> for that one task (an error entry
    /// "lease expired", then Pending due now, or Failed when its attempts are spent) and the same report. Returns null,
    /// changing nothing, when that lease is not the task's current one: the task is pending, finished or canceled, was
    /// re-leased with a newer token, or the id is unknown. Fenced: a newer lease of the task is never touched, so a
    /// lease monitor acting on stale heartbeats can never end a lease it did not observe. Concurrent calls for one
    /// lease (and a concurrent sweeper) report it exactly once. A token that is not positive or an empty id is
    /// refused with <see cref="ArgumentException"/> before anything changes.
    /// </summary>
    Task<ReclaimedTask?> ExpireLeaseAsync(Guid taskId, long leaseToken, CancellationToken cancellationToken = default);

    /// <summary>
    /// Cancels a Pending or Running task (a running holder's next heartbeat, complete or fail gets
    /// <see cref="LeaseLostException"/>). Returns false, changing nothing, when the task is already terminal.
    /// Throws <see cref="TaskNotFoundException"/> for an unknown id.
    /// </summary>
    Task<bool> CancelAsync(Guid taskId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Redrives a Failed or Canceled task: back to Pending, due now, with its attempt count reset to zero (its
    /// error history is kept). Throws <see cref="InvalidTaskStateException"/> from any other state and
    /// <see cref="TaskNotFoundException"/> for an unknown id.
    /// </summary>
    Task RedriveAsync(Guid taskId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Cancels up to <paramref name="maxCount"/> Pending or Running tasks matching <paramref name="filter"/> (the same
    /// filter rules as <see cref="QueryAsync"/>; tasks in other states simply do not match), newest first, each as
    /// <see cref="CancelAsync"/> would. Returns the ids actually canceled: a task that changed meanwhile (finished,
    /// or being changed by another call at that instant) is left alone and not listed, so a caller repeats until the
    /// result is empty. <paramref name="maxCount"/> is 1–<see cref="TaskValidation.MaxBulkCount"/>.
    /// </summary>
    Task<IReadOnlyList<Guid>> CancelManyAsync(TaskQuery filter, int maxCount, CancellationToken cancellationToken = default);

    /// <summary>
    /// Redrives up to <paramref name="maxCount"/> Failed or Canceled tasks matching <paramref name="filter"/> (the same
    /// filter rules as <see cref="QueryAsync"/>; tasks in other states simply do not match), newest first, each as
    /// <see cref="RedriveAsync"/> would (Pending, due now, attempts reset, errors kept). Returns the ids actually
    /// redriven (see <see cref="CancelManyAsync"/> on tasks that change meanwhile). <paramref name="maxCount"/> is
    /// 1–<see cref="TaskValidation.MaxBulkCount"/>.
    /// </summary>
    Task<IReadOnlyList<Guid>> RedriveManyAsync(TaskQuery filter, int maxCount, CancellationToken cancellationToken = default);

    /// <summary>
    /// Pauses <paramref name="queue"/>: from the moment this returns, <see cref="LeaseAsync"/> on it returns nothing, on
    /// every node (the state lives in the store, not in a process). Everything else goes on: enqueues, heartbeats and
    /// completions of leases taken before, the sweeper, cancel, redrive, queries. Idempotent; a queue need not hold a
    /// task to be paused.
    /// </summary>
    Task PauseQueueAsync(string queue, CancellationToken cancellationToken = default);

    /// <summary>Resumes a paused <paramref name="queue"/> and wakes its workers (idempotent; a queue not paused is left as it is).</summary>
    Task ResumeQueueAsync(string queue, CancellationToken cancellationToken = default);

    /// <summary>The queues paused now, in ordinal name order.</summary>
    Task<IReadOnlyCollection<string>> GetPausedQueuesAsync(CancellationToken cancellationToken = default);

    /// <summary>The full snapshot of one task. Throws <see cref="TaskNotFoundException"/> for an unknown id.</summary>
    Task<TaskSnapshot> GetAsync(Guid taskId, CancellationToken cancellationToken = default);

    /// <summary>Tasks matching <paramref name="filter"/>, newest first, keyset-paged by task id.</summary>
    Task<TaskPage> QueryAsync(TaskQuery filter, PageRequest? page = null, CancellationToken cancellationToken = default);

    /// <summary>Task counts by state for every queue that holds at least one task, ordered by queue name (ordinal).</summary>
    Task<IReadOnlyList<QueueStats>> GetStatsAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Deletes terminal tasks that finished at least <paramref name="olderThan"/> (at most
    /// <see cref="TaskValidation.MaxPurgeAge"/>) ago (store clock), in
    /// <paramref name="states"/> (default: all terminal states) and, when given, in <paramref name="queue"/> only.
    /// Their idempotency keys become free. Returns each task deleted (stores delete in bounded batches
    /// internally; a task appears in exactly one call's result even when purges run on many nodes at once).
    /// Non-terminal states are refused.
    /// </summary>
    Task<IReadOnlyList<PurgedTask>> PurgeAsync(TimeSpan olderThan, IReadOnlyCollection<TaskState>? states = null, string? queue = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Applies a retention period: deletes terminal tasks of every state and queue that finished at least
    /// <paramref name="olderThan"/> (at most <see cref="TaskValidation.MaxPurgeAge"/>) ago, in the store's cheapest unit.
    /// A task finished longer ago than <paramref name="olderThan"/> plus <see cref="StoreCapabilities.RetentionGranularity"/>
    /// is always deleted; one finished less than <paramref name="olderThan"/> ago never is. Returns each task deleted, as
    /// <see cref="PurgeAsync"/> does, whose rules (keys freed, each task in exactly one call's result) apply. The
    /// sweeper calls this for <c>PurgeFinishedAfter</c>. The default is <see cref="PurgeAsync"/> of every terminal task.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="olderThan"/> is negative or longer than <see cref="TaskValidation.MaxPurgeAge"/>.</exception>
    Task<IReadOnlyList<PurgedTask>> ApplyRetentionAsync(TimeSpan olderThan, CancellationToken cancellationToken = default) =>
        PurgeAsync(olderThan, null, null, cancellationToken);

    /// <summary>
    /// Waits until the store signals that tasks may be available in <paramref name="queue"/>, or until
    /// <paramref name="timeout"/>. Returns true when woken by a signal. Signals are latched per queue, so one
    /// that arrived since the previous call returned is not missed. True means tasks <em>may</em> be available:
    /// spurious wake-ups are allowed (for example after a store reconnects its listener and signals every queue,
    /// since notifications sent during the gap are lost), so callers always lease and re-check. Stores without
    /// <see cref="StoreCapabilities.PushWakeUp"/> simply wait out the timeout and return false. The timeout must
    /// be from zero to <see cref="TaskValidation.MaxWaitTimeout"/>, or <see cref="Timeout.InfiniteTimeSpan"/> (see <see cref="TaskValidation.ValidateWaitTimeout"/>).
    /// </summary>
    Task<bool> WaitForWorkAsync(string queue, TimeSpan timeout, CancellationToken cancellationToken = default);

    /// <summary>
    /// One cheap round trip to every server the store depends on, for health checks. Returns <see langword="null"/>
    /// when all answer, or a description of what does not answer while the store still works without it (degraded,
    /// e.g. the Postgres+Redis hybrid running on PostgreSQL alone); throws when the store cannot serve. The default
    /// reads one page of a queue that never holds tasks; stores with more than one server override it.
    /// </summary>
    async Task<string?> ProbeAsync(CancellationToken cancellationToken = default)
    {
        await QueryAsync(new TaskQuery { Queue = "konduit.health-probe" }, new PageRequest(Limit: 1), cancellationToken).ConfigureAwait(false);
        return null;
    }
}
