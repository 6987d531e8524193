using Npgsql;

namespace Konduit.Postgres;

/// <summary>
/// An <see cref="ITaskStore"/> on PostgreSQL: leasing with <c>FOR UPDATE SKIP LOCKED</c>, fencing tokens,
/// idempotency keys, enqueue inside the caller's transaction, and LISTEN/NOTIFY wake-up.
/// </summary>
/// <remarks>
/// <para>The tables are created by <see cref="MigrateAsync"/>, never implicitly: run it at deployment or start-up
/// (it is idempotent and safe to run on many nodes at once). Operations on an unmigrated schema throw
/// <see cref="KonduitException"/>.</para>
/// <para>The store connects lazily: constructing it never touches the server. The server's clock
/// (<c>now()</c>) decides due times and lease expiry.</para>
/// <para>When the server cannot be reached or drops the call (connection refused or cut, backend terminated,
/// server shutting down or starting, no host of a multi-host connection string accepting the session, as between a
/// primary's failure and a standby's promotion: docs/postgres-failover.md), operations throw <see cref="StoreUnavailableException"/> with the driver's
/// exception as <see cref="Exception.InnerException"/>; the contract's own exceptions are unchanged.</para>
/// <para>Wake-up holds one connection for LISTEN from the first <see cref="WaitForWorkAsync"/> until the store
/// is disposed; the data source must therefore not use multiplexing.</para>
/// <para>A dispatcher in front of the store (such as Konduit.PostgresRedis) uses its public seam:
/// <see cref="LeaseByIdsAsync"/> and <see cref="ReadDueIdsAsync"/>.</para>
/// </remarks>
public class PostgresTaskStore : ITransactionalTaskStore
{
    // EnqueueManyAsync switches to binary COPY from this many (keyless) requests; see BulkEnqueueAsync.
    internal const int CopyThreshold = PostgresEnqueue.CopyThreshold;

    private readonly NpgsqlDataSource _dataSource;
    private readonly bool _ownsDataSource;
    private readonly int _maxPayloadBytes;
    private readonly PostgresMigrator _migrator;
    private readonly PostgresEnqueue _enqueue;
    private readonly PostgresLeases _leases;
    private readonly PostgresAdmin _admin;
    private readonly PostgresWakeUp _wakeUp;
    private readonly PostgresNotifier _notifier;
    private int _disposed;

    /// <summary>Creates a store. Nothing is sent to the server until the first operation.</summary>
    /// <param name="options">Settings; validated here and copied, so later changes do not affect the store.</param>
    /// <param name="dataSource">
    /// The application's data source, if it has one (it is not disposed by the store). When null the store
    /// builds and owns one from <see cref="PostgresTaskStoreOptions.ConnectionString"/>.
    /// </param>
    public PostgresTaskStore(PostgresTaskStoreOptions options, NpgsqlDataSource? dataSource = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (dataSource is null)
        {
            if (string.IsNullOrWhiteSpace(options.ConnectionString))
                throw new ArgumentException(
                    "PostgresTaskStoreOptions.ConnectionString is required when no NpgsqlDataSource is given.", nameof(options));
            dataSource = PostgresDataSources.CreateOwned(options.ConnectionString);
            _ownsDataSource = true;
        }
        _dataSource = dataSource;
        // Explicit prepares are not supported under multiplexing; there, statements run unprepared.
        var prepare = !new NpgsqlConnectionStringBuilder(dataSource.ConnectionString).Multiplexing;
        var sql = new PostgresQueries(options.Schema);
        var db = new PostgresExecutor(dataSource, Name,
            $"Konduit's tables do not exist in schema '{sql.Schema}': run PostgresTaskStore.MigrateAsync() (once, at deployment or start-up) before using the store.",
            prepare);
        _maxPayloadBytes = options.MaxPayloadBytes;
        _wakeUp = new PostgresWakeUp(dataSource, sql.Listen);
        _notifier = new PostgresNotifier(dataSource, sql.Channel, sql.Notify, prepare);
        _migrator = new PostgresMigrator(db, sql, options.RuntimeRole);
        _enqueue = new PostgresEnqueue(db, sql, _notifier, _migrator);
        _leases = new PostgresLeases(db, sql, options.DefaultRetryPolicy);
        _admin = new PostgresAdmin(db, sql);
    }

    /// <summary>The data source the store runs on (the application's, or the one it built), for tests.</summary>
    internal NpgsqlDataSource DataSource => _dataSource;

    /// <inheritdoc />
    public string Name => "postgres";

    /// <inheritdoc />
    public StoreCapabilities Capabilities { get; } = new() { TransactionalEnqueue = true, PushWakeUp = true, OrdersByRunAt = true, StrictLeaseOrder = true, AtomicCrossQueueBatches = true, RetentionGranularity = TimeSpan.FromDays(1) };

    /// <summary>
    /// Creates or upgrades the schema's tables to the version this library needs. Idempotent, and safe to run
    /// from many processes at once (they serialize on an advisory lock). Never run implicitly.
    /// </summary>
    public Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return _migrator.MigrateAsync(cancellationToken);
    }

    // ---------------------------------------------------------------------------------------------- enqueue

    /// <inheritdoc />
    public Task<EnqueueResult> EnqueueAsync(EnqueueRequest request, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateEnqueue(request, _maxPayloadBytes);
        ThrowIfDisposed();
        return _enqueue.EnqueueAsync(request, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateEnqueueBatch(requests, _maxPayloadBytes);
        ThrowIfDisposed();
        if (requests.Count == 0) return [];
        return await _enqueue.EnqueueManyAsync(requests, preferCopy: requests.Count >= CopyThreshold, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Enqueues a batch through binary <c>COPY</c>: the fastest way in for large batches (measured at 1.1–1.3× the
    /// array statement's rate for batches of 100–5,000). Same results and atomicity as
    /// <see cref="EnqueueManyAsync(IReadOnlyList{EnqueueRequest}, CancellationToken)"/> (all or nothing, ids in
    /// request order, workers woken after commit), which also switches to this path by itself from
    /// 200 requests.
    /// </summary>
    /// <remarks>
    /// COPY cannot skip a row whose idempotency key is taken, so a batch in which any request carries an
    /// <see cref="EnqueueRequest.IdempotencyKey"/> goes through the array statement instead, with its key semantics
    /// unchanged; so does a batch mixing requests with and without <see cref="EnqueueRequest.RunAt"/>, and any batch
    /// on a schema not yet migrated to version 2.
    /// </remarks>
    /// <param name="requests">The tasks (at most <see cref="TaskValidation.MaxBatchSize"/>).</param>
    /// <param name="cancellationToken">Cancels the call (a canceled COPY stores nothing).</param>
    public async Task<IReadOnlyList<EnqueueResult>> BulkEnqueueAsync(IReadOnlyList<EnqueueRequest> requests, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateEnqueueBatch(requests, _maxPayloadBytes);
        ThrowIfDisposed();
        if (requests.Count == 0) return [];
        return await _enqueue.EnqueueManyAsync(requests, preferCopy: true, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Enqueues inside the caller's transaction: the task exists (and workers are woken) only if and when the
    /// transaction commits. Same semantics as <see cref="EnqueueAsync(EnqueueRequest, CancellationToken)"/>;
    /// a concurrent transaction holding the same idempotency key makes this call wait for its outcome.
    /// </summary>
    /// <param name="request">The task.</param>
    /// <param name="transaction">An open transaction on a connection to the store's database.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    public async Task<EnqueueResult> EnqueueAsync(EnqueueRequest request, NpgsqlTransaction transaction, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateEnqueue(request, _maxPayloadBytes);
        CheckTransaction(transaction);
        ThrowIfDisposed();
        var results = await _enqueue.EnqueueManyAsync([request], transaction, cancellationToken).ConfigureAwait(false);
        return results[0];
    }

    /// <summary>
    /// Enqueues a batch inside the caller's transaction (see <see cref="EnqueueManyAsync(IReadOnlyList{EnqueueRequest}, CancellationToken)"/>
    /// for the batch rules); nothing is visible until the transaction commits, and a rollback discards all of it.
    /// </summary>
    /// <param name="requests">The tasks.</param>
    /// <param name="transaction">An open transaction on a connection to the store's database.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    public async Task<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, NpgsqlTransaction transaction, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateEnqueueBatch(requests, _maxPayloadBytes);
        CheckTransaction(transaction);
        ThrowIfDisposed();
        if (requests.Count == 0) return [];
        return await _enqueue.EnqueueManyAsync(requests, transaction, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    Task<IReadOnlyList<EnqueueResult>> ITransactionalTaskStore.EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, System.Data.Common.DbTransaction transaction, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        if (transaction is not NpgsqlTransaction npgsqlTransaction)
            throw new ArgumentException($"The {Name} store enqueues only in an {nameof(NpgsqlTransaction)}; got {transaction.GetType().Name}.", nameof(transaction));
        return EnqueueManyAsync(requests, npgsqlTransaction, cancellationToken);
    }

    private static void CheckTransaction(NpgsqlTransaction transaction)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        // A committed or rolled-back transaction that still has its connection is refused by Npgsql itself
        // (InvalidOperationException) when the first command is bound to it, before anything is sent.
        if (transaction.Connection is null)
            throw new ArgumentException("The transaction has already been committed or rolled back.", nameof(transaction));
    }

    // ---------------------------------------------------------------------------------------------- lease

    /// <inheritdoc />
    public Task<IReadOnlyList<TaskLease>> LeaseAsync(string queue, string workerId, int maxCount, TimeSpan leaseDuration, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateLease(queue, workerId, maxCount, leaseDuration);
        ThrowIfDisposed();
        return _leases.LeaseAsync(queue, workerId, maxCount, leaseDuration, cancellationToken);
    }

    /// <summary>
    /// Leases the named tasks of <paramref name="queue"/>: the dispatcher seam, for a component that learns of new
    /// tasks elsewhere (a Redis stream, a broker) and claims exactly those. Each id is leased like
    /// <see cref="LeaseAsync"/> leases (fenced: attempts and <see cref="TaskLease.LeaseToken"/> go up, the
    /// server clock sets the expiry), and only if the task is still pending and due in that queue; ids that another
    /// worker claimed first, that are terminal, scheduled later, of another queue or unknown are simply not
    /// returned. Concurrent callers naming the same id never both get it.
    /// </summary>
    /// <param name="queue">The queue the tasks must belong to.</param>
    /// <param name="taskIds">The ids to claim (at most <see cref="TaskValidation.MaxLeaseCount"/>; duplicates count once).</param>
    /// <param name="workerId">The worker that will hold the leases.</param>
    /// <param name="leaseDuration">How long each lease lasts unless renewed (positive, at most one day).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The leases taken, in the contract's lease order (priority descending, run-at, id).</returns>
    /// <exception cref="ArgumentException">An argument is invalid (the message names it).</exception>
    /// <exception cref="StoreUnavailableException">The server could not be reached or dropped the call.</exception>
    public Task<IReadOnlyList<TaskLease>> LeaseByIdsAsync(string queue, IReadOnlyList<Guid> taskIds, string workerId, TimeSpan leaseDuration, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(taskIds);
        if (taskIds.Count > TaskValidation.MaxLeaseCount)
            throw new ArgumentOutOfRangeException(nameof(taskIds), taskIds.Count, $"taskIds may name at most {TaskValidation.MaxLeaseCount} tasks.");
        TaskValidation.ValidateLease(queue, workerId, Math.Max(1, taskIds.Count), leaseDuration);
        ThrowIfDisposed();
        if (taskIds.Count == 0) return Task.FromResult<IReadOnlyList<TaskLease>>([]);
        return _leases.LeaseByIdsAsync(queue, [.. taskIds], workerId, leaseDuration, cancellationToken);
    }

    /// <summary>
    /// The ids of <paramref name="queue"/>'s pending, due tasks in lease order (priority descending, run-at, id), at
    /// most <paramref name="limit"/>: the dispatcher seam's read, for rebuilding hints a dispatcher lost. A snapshot:
    /// by the time the caller uses it some ids may have been leased (<see cref="LeaseByIdsAsync"/> then skips them).
    /// </summary>
    /// <param name="queue">The queue.</param>
    /// <param name="limit">The most ids to return (positive).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <exception cref="ArgumentException">An argument is invalid (the message names it).</exception>
    /// <exception cref="StoreUnavailableException">The server could not be reached or dropped the call.</exception>
    public Task<IReadOnlyList<Guid>> ReadDueIdsAsync(string queue, int limit, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateQueue(queue);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        ThrowIfDisposed();
        return _admin.ReadDueIdsAsync(queue, limit, cancellationToken);
    }

    /// <inheritdoc />
    public Task<TaskLease> HeartbeatAsync(TaskLease lease, TimeSpan extension, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        TaskValidation.ValidateDuration(extension, nameof(extension));
        ThrowIfDisposed();
        return _leases.HeartbeatAsync(lease, extension, cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>One statement for all the leases (an unnest of ids and tokens), fenced like
    /// <see cref="CompleteManyAsync"/>; each renewal is a HOT update like <see cref="HeartbeatAsync"/>'s.</remarks>
    public Task<HeartbeatManyResult> HeartbeatManyAsync(IReadOnlyList<TaskLease> leases, TimeSpan extension, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateHeartbeats(leases, extension);
        ThrowIfDisposed();
        if (leases.Count == 0) return Task.FromResult(new HeartbeatManyResult([], []));
        return _leases.HeartbeatManyAsync(leases, extension, cancellationToken);
    }

    /// <inheritdoc />
    public Task CompleteAsync(TaskLease lease, byte[]? result = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ThrowIfDisposed();
        return _leases.CompleteAsync(lease, result, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<Guid>> CompleteManyAsync(IReadOnlyList<TaskCompletion> completions, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateCompletions(completions);
        ThrowIfDisposed();
        if (completions.Count == 0) return [];
        return await _leases.CompleteManyAsync(completions, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>One statement, one round trip and one commit (<c>PostgresQueries.CompleteAndLease</c>): the completion's
    /// move to history and the lease of the queue's head, as <see cref="CompleteManyAsync"/> and <see cref="LeaseAsync"/> do them.</remarks>
    public Task<CompleteAndLeaseResult> CompleteAndLeaseAsync(TaskCompletion completion, string workerId, int maxCount, TimeSpan leaseDuration,
        CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateCompleteAndLease(completion, workerId, maxCount, leaseDuration);
        ThrowIfDisposed();
        return _leases.CompleteAndLeaseAsync(completion, workerId, maxCount, leaseDuration, cancellationToken);
    }

    /// <inheritdoc />
    public Task<FailResult> FailAsync(TaskLease lease, string error, FailOptions? options = null, CancellationToken cancellationToken = default)
    {
        var message = TaskValidation.ValidateFail(lease, error, options);
        ThrowIfDisposed();
        return _leases.FailAsync(lease, message, options ?? FailOptions.Retry, cancellationToken);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<ReclaimedTask>> ReclaimExpiredAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return _leases.ReclaimExpiredAsync(cancellationToken);
    }

    /// <summary>The sweep's task_counts upkeep, run now (tests; the sweep runs it once a minute).</summary>
    internal Task FoldCountsAsync(CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        return _leases.FoldCountsAsync(cancellationToken);
    }

    /// <inheritdoc />
    public Task<ReclaimedTask?> ExpireLeaseAsync(Guid taskId, long leaseToken, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateExpireLease(taskId, leaseToken);
        ThrowIfDisposed();
        return _leases.ExpireLeaseAsync(taskId, leaseToken, cancellationToken);
    }

    // ---------------------------------------------------------------------------------------------- admin

    /// <inheritdoc />
    public Task<bool> CancelAsync(Guid taskId, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return _admin.CancelAsync(taskId, cancellationToken);
    }

    /// <inheritdoc />
    public Task RedriveAsync(Guid taskId, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return _admin.RedriveAsync(taskId, cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>One statement: the newest matching rows, locked with <c>SKIP LOCKED</c>, updated and reported by id.</remarks>
    public Task<IReadOnlyList<Guid>> CancelManyAsync(TaskQuery filter, int maxCount, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateBulk(filter, maxCount);
        ThrowIfDisposed();
        return _admin.CancelManyAsync(filter, TaskValidation.BulkStates(filter, TaskStateExtensions.CancelableStates), maxCount, cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>One statement, like <see cref="CancelManyAsync"/>; it wakes each queue it redrove tasks in.</remarks>
    public Task<IReadOnlyList<Guid>> RedriveManyAsync(TaskQuery filter, int maxCount, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateBulk(filter, maxCount);
        ThrowIfDisposed();
        return _admin.RedriveManyAsync(filter, TaskValidation.BulkStates(filter, TaskStateExtensions.RedrivableStates), maxCount, cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>A row in <c>paused_queues</c> (schema version 4); the lease statement and <see cref="LeaseByIdsAsync"/> probe it.</remarks>
    public Task PauseQueueAsync(string queue, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateQueue(queue);
        ThrowIfDisposed();
        return _admin.PauseQueueAsync(queue, cancellationToken);
    }

    /// <inheritdoc />
    public Task ResumeQueueAsync(string queue, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateQueue(queue);
        ThrowIfDisposed();
        return _admin.ResumeQueueAsync(queue, cancellationToken);
    }

    /// <inheritdoc />
    public Task<IReadOnlyCollection<string>> GetPausedQueuesAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return _admin.GetPausedQueuesAsync(cancellationToken);
    }

    /// <inheritdoc />
    public Task<TaskSnapshot> GetAsync(Guid taskId, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return _admin.GetAsync(taskId, cancellationToken);
    }

    /// <inheritdoc />
    public Task<TaskPage> QueryAsync(TaskQuery filter, PageRequest? page = null, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateQuery(filter, page);
        ThrowIfDisposed();
        return _admin.QueryAsync(filter, page ?? PageRequest.First, cancellationToken);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<QueueStats>> GetStatsAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return _admin.GetStatsAsync(cancellationToken);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<PurgedTask>> PurgeAsync(TimeSpan olderThan, IReadOnlyCollection<TaskState>? states = null, string? queue = null, CancellationToken cancellationToken = default)
    {
        var purgeStates = TaskValidation.ValidatePurge(olderThan, states, queue);
        ThrowIfDisposed();
        return _admin.PurgeAsync(olderThan, purgeStates, queue, cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Drops each UTC-day partition of the history table whose day ended <paramref name="olderThan"/> ago or earlier
    /// (freeing its idempotency keys and its counts in the same transaction), so retention costs no row deletes; rows of
    /// the default partition (days that had no partition yet) are deleted by age. A task may stay up to a day longer
    /// than <paramref name="olderThan"/> (<see cref="StoreCapabilities.RetentionGranularity"/>).
    /// </remarks>
    public Task<IReadOnlyList<PurgedTask>> ApplyRetentionAsync(TimeSpan olderThan, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidatePurge(olderThan, null, null);
        ThrowIfDisposed();
        return _admin.ApplyRetentionAsync(olderThan, cancellationToken);
    }

    // ---------------------------------------------------------------------------------------------- wake-up

    /// <inheritdoc />
    public Task<bool> WaitForWorkAsync(string queue, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateQueue(queue);
        TaskValidation.ValidateWaitTimeout(timeout);
        cancellationToken.ThrowIfCancellationRequested();
        ThrowIfDisposed();
        return _wakeUp.WaitAsync(queue, timeout, cancellationToken);
    }

    /// <summary>Stops the wake-up listener (blocked waits return false) and disposes the data source if the store built it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _notifier.DisposeAsync().ConfigureAwait(false);
        await _wakeUp.DisposeAsync().ConfigureAwait(false);
        if (_ownsDataSource) await _dataSource.DisposeAsync().ConfigureAwait(false);
        GC.SuppressFinalize(this);
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
}
