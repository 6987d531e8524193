using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace Konduit.Sqlite;

/// <summary>
/// An <see cref="ITaskStore"/> on one SQLite database file, shared by every process of one host that opens it: WAL
/// mode, every write in a <c>BEGIN IMMEDIATE</c> transaction, fencing tokens, idempotency keys, and enqueue inside the
/// caller's own <see cref="SqliteTransaction"/>.
/// </summary>
/// <remarks>
/// <para>The tables are created by <see cref="MigrateAsync"/>, never implicitly (it is idempotent and safe to run from
/// many processes at once). Operations on a file that was never migrated throw <see cref="KonduitException"/>.</para>
/// <para>Constructing the store never touches the file. The store's clock is the <see cref="TimeProvider"/> given at
/// construction (the host's clock by default): every process sharing the file must run on the same host, which SQLite's
/// WAL mode requires anyway (no network file systems).</para>
/// <para>A write that cannot get the file's write lock within <see cref="SqliteTaskStoreOptions.BusyTimeout"/>, or a file
/// that cannot be read or written, throws <see cref="StoreUnavailableException"/>.</para>
/// <para>No push wake-up: <see cref="WaitForWorkAsync"/> waits out its timeout, so workers poll.</para>
/// </remarks>
public sealed class SqliteTaskStore : ITransactionalTaskStore
{
    private readonly SqliteDatabase _db;
    private readonly TimeProvider _time;
    private readonly int _maxPayloadBytes;
    private readonly SqliteLeases _leases;
    private readonly SqliteAdmin _admin;
    private readonly CancellationTokenSource _disposing = new();
    private int _disposed;

    /// <summary>Creates a store. Nothing is opened until the first operation.</summary>
    /// <param name="options">Settings; validated here and copied, so later changes do not affect the store.</param>
    /// <param name="timeProvider">The store clock; <see cref="TimeProvider.System"/> when null.</param>
    public SqliteTaskStore(SqliteTaskStoreOptions options, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _maxPayloadBytes = options.MaxPayloadBytes;
        _time = timeProvider ?? TimeProvider.System;
        _db = new SqliteDatabase(options);
        _leases = new SqliteLeases(_db, _time, options.DefaultRetryPolicy);
        _admin = new SqliteAdmin(_db, _time);
    }

    /// <inheritdoc />
    public string Name => "sqlite";

    /// <inheritdoc />
    public StoreCapabilities Capabilities { get; } = new() { TransactionalEnqueue = true, PushWakeUp = false, OrdersByRunAt = true, StrictLeaseOrder = true, AtomicCrossQueueBatches = true };

    /// <summary>
    /// Puts the file in WAL mode and creates or upgrades the tables to the version this library needs. Idempotent, and
    /// safe to run from many processes at once (they serialize on the write lock). Never run implicitly.
    /// </summary>
    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        await _db.ReadAsync("migrate", 0, static async (c, _, ct) =>
        {
            using var wal = SqliteRows.Command(c, null, SqliteQueries.EnableWal);
            var mode = (string?)await wal.ExecuteScalarAsync(ct).ConfigureAwait(false);
            if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
                throw new KonduitException($"SQLite refused WAL mode for the database (journal mode is '{mode}'); the store needs WAL to share the file between processes.");
            return 0;
        }, cancellationToken).ConfigureAwait(false);
        await _db.WriteAsync("migrate", _time.GetUtcNow(), static async (c, tx, now, ct) =>
        {
            using (var create = SqliteRows.Command(c, tx, SqliteQueries.CreateVersionTable))
                await create.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            using var read = SqliteRows.Command(c, tx, SqliteQueries.CurrentVersion);
            var current = Convert.ToInt32(await read.ExecuteScalarAsync(ct).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
            if (current > SqliteQueries.LatestVersion)
                throw new KonduitException($"The database is at schema version {current}, newer than this library's {SqliteQueries.LatestVersion}: upgrade Konduit.Sqlite.");
            foreach (var (version, sql) in SqliteQueries.Migrations)
            {
                if (version <= current) continue;
                using (var migrate = SqliteRows.Command(c, tx, sql))
                    await migrate.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                using var record = SqliteRows.Command(c, tx, SqliteQueries.RecordVersion);
                SqliteRows.Add(record, "@version", version);
                SqliteRows.Add(record, "@now", SqliteRows.Time(now));
                await record.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
            return 0;
        }, cancellationToken).ConfigureAwait(false);
    }

    // ---------------------------------------------------------------------------------------------- enqueue

    /// <inheritdoc />
    public async Task<EnqueueResult> EnqueueAsync(EnqueueRequest request, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateEnqueue(request, _maxPayloadBytes);
        ThrowIfDisposed();
        var results = await _db.WriteAsync("enqueue", (Self: this, Requests: new[] { request }),
            static (c, tx, s, ct) => s.Self.InsertAsync(c, tx, s.Requests, ct), cancellationToken).ConfigureAwait(false);
        return results[0];
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateEnqueueBatch(requests, _maxPayloadBytes);
        ThrowIfDisposed();
        if (requests.Count == 0) return [];
        return await _db.WriteAsync("enqueue", (Self: this, Requests: requests),
            static (c, tx, s, ct) => s.Self.InsertAsync(c, tx, s.Requests, ct), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Enqueues a batch inside the caller's transaction: the tasks exist only if and when it commits, and a rollback
    /// discards all of them. Same validation and batch rules as
    /// <see cref="EnqueueManyAsync(IReadOnlyList{EnqueueRequest}, CancellationToken)"/>.
    /// </summary>
    /// <remarks>
    /// Begin the transaction with <see cref="SqliteConnection.BeginTransaction()"/> (Microsoft.Data.Sqlite's default is
    /// <c>BEGIN IMMEDIATE</c>): a deferred transaction that read before another process wrote cannot upgrade to a write
    /// and fails with SQLITE_BUSY. Workers do not see the tasks before the commit, and, as always with this store, learn
    /// of them by polling.
    /// </remarks>
    /// <param name="requests">The tasks.</param>
    /// <param name="transaction">An open transaction on a connection to this store's database file.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <exception cref="ArgumentException">The transaction is completed, or on a connection to another database.</exception>
    public async Task<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, SqliteTransaction transaction, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateEnqueueBatch(requests, _maxPayloadBytes);
        var connection = CheckTransaction(transaction);
        ThrowIfDisposed();
        if (requests.Count == 0) return [];
        return await _db.GuardAsync("enqueue", () => InsertAsync(connection, transaction, requests, cancellationToken)).ConfigureAwait(false);
    }

    /// <inheritdoc />
    Task<IReadOnlyList<EnqueueResult>> ITransactionalTaskStore.EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, DbTransaction transaction, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        if (transaction is not SqliteTransaction sqliteTransaction)
            throw new ArgumentException($"The {Name} store enqueues only in a {nameof(SqliteTransaction)}; got {transaction.GetType().Name}.", nameof(transaction));
        return EnqueueManyAsync(requests, sqliteTransaction, cancellationToken);
    }

    private SqliteConnection CheckTransaction(SqliteTransaction transaction)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        // Microsoft.Data.Sqlite drops the transaction's connection when it commits or rolls back.
        if (transaction.Connection is not { State: System.Data.ConnectionState.Open } connection)
            throw new ArgumentException("The transaction has already been committed or rolled back.", nameof(transaction));
        if (!string.Equals(Path.GetFullPath(connection.DataSource), _db.FilePath, StringComparison.Ordinal))
            throw new ArgumentException($"The transaction is on another database ({connection.DataSource}) than the store's ({_db.FilePath}).", nameof(transaction));
        return connection;
    }

    // Runs under the write lock (the store's own transaction or the caller's), so a key read free stays free until
    // the insert; inserting in order makes a key repeated inside the batch resolve to its first occurrence.
    private async Task<IReadOnlyList<EnqueueResult>> InsertAsync(SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<EnqueueRequest> requests, CancellationToken cancellationToken)
    {
        var now = SqliteRows.Time(_time.GetUtcNow());
        var results = new EnqueueResult[requests.Count];
        using var find = SqliteRows.Command(connection, transaction, SqliteQueries.FindByKey);
        using var insert = SqliteRows.Command(connection, transaction, SqliteQueries.InsertTask);
        for (var i = 0; i < requests.Count; i++)
        {
            var request = requests[i];
            if (request.IdempotencyKey is { } key)
            {
                find.Parameters.Clear();
                SqliteRows.Add(find, "@queue", request.Queue);
                SqliteRows.Add(find, "@key", key);
                if (await find.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is byte[] existing)
                {
                    results[i] = new EnqueueResult(new Guid(existing, bigEndian: true), Created: false);
                    continue;
                }
            }
            var id = TaskIdGenerator.NewId();
            insert.Parameters.Clear();
            SqliteRows.Add(insert, "@id", SqliteRows.Id(id));
            SqliteRows.Add(insert, "@queue", request.Queue);
            SqliteRows.Add(insert, "@priority", request.Priority);
            SqliteRows.Add(insert, "@run_at", request.RunAt is { } runAt ? SqliteRows.Time(runAt) : now);
            SqliteRows.Add(insert, "@max_attempts", request.MaxAttempts);
            SqliteRows.Add(insert, "@tenant", request.Tenant);
            SqliteRows.Add(insert, "@key", request.IdempotencyKey);
            SqliteRows.Add(insert, "@headers", SqliteRows.WriteHeaders(request.Headers));
            SqliteRows.AddRetryPolicy(insert, request.RetryPolicy);
            SqliteRows.Add(insert, "@payload", request.Payload);
            SqliteRows.Add(insert, "@now", now);
            await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            results[i] = new EnqueueResult(id, Created: true);
        }
        return results;
    }

    // ---------------------------------------------------------------------------------------------- leases

    /// <inheritdoc />
    public Task<IReadOnlyList<TaskLease>> LeaseAsync(string queue, string workerId, int maxCount, TimeSpan leaseDuration, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateLease(queue, workerId, maxCount, leaseDuration);
        ThrowIfDisposed();
        return _leases.LeaseAsync(queue, workerId, maxCount, leaseDuration, cancellationToken);
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
    public Task<IReadOnlyList<Guid>> CompleteManyAsync(IReadOnlyList<TaskCompletion> completions, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateCompletions(completions);
        ThrowIfDisposed();
        if (completions.Count == 0) return Task.FromResult<IReadOnlyList<Guid>>([]);
        return _leases.CompleteManyAsync(completions, cancellationToken);
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
    public Task<IReadOnlyList<Guid>> CancelManyAsync(TaskQuery filter, int maxCount, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateBulk(filter, maxCount);
        ThrowIfDisposed();
        return _admin.BulkAsync(SqliteQueries.CancelManyPrefix, filter, TaskValidation.BulkStates(filter, TaskStateExtensions.CancelableStates), maxCount, cancellationToken);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<Guid>> RedriveManyAsync(TaskQuery filter, int maxCount, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateBulk(filter, maxCount);
        ThrowIfDisposed();
        return _admin.BulkAsync(SqliteQueries.RedriveManyPrefix, filter, TaskValidation.BulkStates(filter, TaskStateExtensions.RedrivableStates), maxCount, cancellationToken);
    }

    /// <inheritdoc />
    public Task PauseQueueAsync(string queue, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateQueue(queue);
        ThrowIfDisposed();
        return _admin.SetPausedAsync(queue, paused: true, cancellationToken);
    }

    /// <inheritdoc />
    public Task ResumeQueueAsync(string queue, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateQueue(queue);
        ThrowIfDisposed();
        return _admin.SetPausedAsync(queue, paused: false, cancellationToken);
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

    /// <summary>Opens the file and reads the pause table: fails when the file cannot be opened or was never migrated.</summary>
    public Task<string?> ProbeAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return _admin.ProbeAsync(cancellationToken);
    }

    // ---------------------------------------------------------------------------------------------- wake-up

    /// <inheritdoc />
    /// <remarks>This store has no push wake-up (<see cref="StoreCapabilities.PushWakeUp"/> is false): the call waits out
    /// <paramref name="timeout"/> and returns false; disposing the store ends the wait early.</remarks>
    public async Task<bool> WaitForWorkAsync(string queue, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateQueue(queue);
        TaskValidation.ValidateWaitTimeout(timeout);
        cancellationToken.ThrowIfCancellationRequested();
        ThrowIfDisposed();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposing.Token);
        try
        {
            await Task.Delay(timeout, _time, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // Disposed while waiting: the wait ends as a timeout does.
        }
        return false;
    }

    /// <summary>Ends waits in <see cref="WaitForWorkAsync"/> and closes the store's idle pooled connections to the file.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        // Neither the token source nor the write gate is disposed: a call racing with disposal must not trip over them.
        await _disposing.CancelAsync().ConfigureAwait(false);
        _db.ClearPool();
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
}
