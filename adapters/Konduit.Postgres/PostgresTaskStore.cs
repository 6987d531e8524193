using System.Text;
using Npgsql;
using NpgsqlTypes;

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
/// <para>Wake-up holds one connection for LISTEN from the first <see cref="WaitForWorkAsync"/> until the store
/// is disposed; the data source must therefore not use multiplexing.</para>
/// </remarks>
public class PostgresTaskStore : ITaskStore
{
    // Bounded so that a pathological loop (keys purged and re-won over and over) surfaces instead of spinning.
    private const int MaxKeyRounds = 16;
    // EnqueueManyAsync switches to binary COPY from this many (keyless) requests; see BulkEnqueueAsync.
    internal const int CopyThreshold = 200;
    private static readonly TaskState[] RedriveStates = [TaskState.Failed, TaskState.Canceled];

    // Commands are disposed with plain `using`: NpgsqlCommand.Dispose does no I/O. Connections and readers,
    // which do, are disposed asynchronously.
    private readonly NpgsqlDataSource _dataSource;
    private readonly bool _ownsDataSource;
    private readonly bool _prepare;
    private readonly PostgresQueries _sql;
    private readonly int _maxPayloadBytes;
    private readonly RetryPolicy _defaultRetryPolicy;
    private readonly PostgresWakeUp _wakeUp;
    private readonly PostgresNotifier _notifier;
    private int _disposed;
    // Whether the schema has the COPY path's column defaults (version ≥ CopyVersion): 0 not checked yet, 1 yes, -1 no.
    private int _copyReady;

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
            dataSource = NpgsqlDataSource.Create(options.ConnectionString);
            _ownsDataSource = true;
        }
        _dataSource = dataSource;
        // Explicit prepares are not supported under multiplexing; there, statements run unprepared.
        _prepare = !new NpgsqlConnectionStringBuilder(dataSource.ConnectionString).Multiplexing;
        _sql = new PostgresQueries(options.Schema);
        _maxPayloadBytes = options.MaxPayloadBytes;
        _defaultRetryPolicy = options.DefaultRetryPolicy;
        _wakeUp = new PostgresWakeUp(dataSource, _sql.Listen);
        _notifier = new PostgresNotifier(dataSource, _sql.Channel, _sql.Notify, _prepare);
    }

    /// <inheritdoc />
    public string Name => "postgres";

    /// <inheritdoc />
    public StoreCapabilities Capabilities { get; } = new() { TransactionalEnqueue = true, PushWakeUp = true, OrdersByRunAt = true, StrictLeaseOrder = true, AtomicCrossQueueBatches = true };

    /// <summary>
    /// Creates or upgrades the schema's tables to the version this library needs. Idempotent, and safe to run
    /// from many processes at once (they serialize on an advisory lock). Never run implicitly.
    /// </summary>
    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var tx = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (tx.ConfigureAwait(false))
            {
                using (var cmd = new NpgsqlCommand(_sql.MigrationLock, connection, tx))
                {
                    Add(cmd, PostgresQueries.MigrationLockClass);
                    Add(cmd, _sql.Schema);
                    await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
                using (var cmd = new NpgsqlCommand(_sql.MigrationPrepare, connection, tx))
                    await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);

                int current;
                using (var cmd = new NpgsqlCommand(_sql.CurrentVersion, connection, tx))
                    current = Convert.ToInt32(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
                if (current > PostgresQueries.LatestVersion)
                    throw new KonduitException(
                        $"Schema '{_sql.Schema}' is at version {current}, newer than this Konduit.Postgres supports ({PostgresQueries.LatestVersion}): upgrade the library.");

                foreach (var (version, sql) in _sql.Migrations)
                {
                    if (version <= current) continue;
                    using (var cmd = new NpgsqlCommand(sql, connection, tx))
                        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    using (var cmd = new NpgsqlCommand(_sql.RecordVersion, connection, tx))
                    {
                        Add(cmd, version);
                        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }
                }
                await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        Volatile.Write(ref _copyReady, 1);
    }

    // ---------------------------------------------------------------------------------------------- enqueue

    /// <inheritdoc />
    public async Task<EnqueueResult> EnqueueAsync(EnqueueRequest request, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateEnqueue(request, _maxPayloadBytes);
        ThrowIfDisposed();
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                // One statement, so no explicit transaction: it either stored the task or changed nothing. When no
                // notification is in flight, the NOTIFY rides in the same round trip as its own transaction after
                // the insert's commit (an idle worker wakes one round trip and a thread hop sooner); otherwise the
                // notifier coalesces it with the burst (see PostgresNotifier).
                if (!_notifier.TryBeginInline())
                {
                    var (queued, _) = await EnqueueOneAsync(connection, request, false, cancellationToken).ConfigureAwait(false);
                    if (queued.Created) _notifier.Signal(request.Queue);
                    return queued;
                }
                EnqueueResult result;
                bool notified;
                try
                {
                    (result, notified) = await EnqueueOneAsync(connection, request, true, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    _notifier.EndInline();
                }
                if (result.Created && !notified) _notifier.Signal(request.Queue);
                return result;
            }
        }
        catch (PostgresException ex) when (IsNotMigrated(ex))
        {
            throw NotMigrated(ex);
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateEnqueueBatch(requests, _maxPayloadBytes);
        ThrowIfDisposed();
        if (requests.Count == 0) return [];
        return requests.Count >= CopyThreshold
            ? await BulkCoreAsync(requests, cancellationToken).ConfigureAwait(false)
            : await EnqueueManyArraysAsync(requests, cancellationToken).ConfigureAwait(false);
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
        return await BulkCoreAsync(requests, cancellationToken).ConfigureAwait(false);
    }

    private async Task<IReadOnlyList<EnqueueResult>> BulkCoreAsync(IReadOnlyList<EnqueueRequest> requests, CancellationToken cancellationToken)
    {
        var keyed = false;
        var withRunAt = 0;
        foreach (var request in requests)
        {
            keyed |= request.IdempotencyKey is not null;
            if (request.RunAt is not null) withRunAt++;
        }
        if (keyed || (withRunAt != 0 && withRunAt != requests.Count))
            return await EnqueueManyArraysAsync(requests, cancellationToken).ConfigureAwait(false);
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                if (!await CopyReadyAsync(connection, cancellationToken).ConfigureAwait(false))
                    return await EnqueueManyArraysAsync(requests, cancellationToken).ConfigureAwait(false);
                var results = await CopyAsync(connection, requests, withRunAt != 0, cancellationToken).ConfigureAwait(false);
                SignalCreated(requests, results);
                return results;
            }
        }
        catch (PostgresException ex) when (IsNotMigrated(ex))
        {
            throw NotMigrated(ex);
        }
    }

    /// <summary>True once the schema is at <see cref="PostgresQueries.CopyVersion"/> or later (checked once per store).</summary>
    private async ValueTask<bool> CopyReadyAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var ready = Volatile.Read(ref _copyReady);
        if (ready != 0) return ready > 0;
        using var cmd = new NpgsqlCommand(_sql.CurrentVersion, connection);
        var version = Convert.ToInt32(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
        // An older schema keeps the array path until MigrateAsync runs in this process.
        Volatile.Write(ref _copyReady, version >= PostgresQueries.CopyVersion ? 1 : -1);
        return version >= PostgresQueries.CopyVersion;
    }

    /// <summary>One COPY statement (atomic on its own: no transaction needed); ids in request order.</summary>
    private async Task<EnqueueResult[]> CopyAsync(NpgsqlConnection connection, IReadOnlyList<EnqueueRequest> requests, bool withRunAt, CancellationToken cancellationToken)
    {
        var results = new EnqueueResult[requests.Count];
        var importer = await connection.BeginBinaryImportAsync(withRunAt ? _sql.CopyTasksWithRunAt : _sql.CopyTasks, cancellationToken).ConfigureAwait(false);
        await using (importer.ConfigureAwait(false))
        {
            for (var i = 0; i < requests.Count; i++)
            {
                var r = requests[i];
                var id = TaskIdGenerator.NewId();
                results[i] = new EnqueueResult(id, true);
                await importer.StartRowAsync(cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync(id, NpgsqlDbType.Uuid, cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync(r.Queue, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync((short)TaskState.Pending, NpgsqlDbType.Smallint, cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync(r.Priority, NpgsqlDbType.Integer, cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync(r.MaxAttempts, NpgsqlDbType.Integer, cancellationToken).ConfigureAwait(false);
                await WriteNullableAsync(importer, r.Tenant, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
                await WriteNullableAsync(importer, PostgresJson.WriteHeaders(r.Headers), NpgsqlDbType.Jsonb, cancellationToken).ConfigureAwait(false);
                await WriteNullableAsync(importer, PostgresJson.WriteRetryPolicy(r.RetryPolicy), NpgsqlDbType.Jsonb, cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync(r.Payload, NpgsqlDbType.Bytea, cancellationToken).ConfigureAwait(false);
                if (withRunAt) await importer.WriteAsync(r.RunAt!.Value.UtcDateTime, NpgsqlDbType.TimestampTz, cancellationToken).ConfigureAwait(false);
            }
            await importer.CompleteAsync(cancellationToken).ConfigureAwait(false);
        }
        return results;

        static Task WriteNullableAsync(NpgsqlBinaryImporter importer, string? value, NpgsqlDbType type, CancellationToken cancellationToken) =>
            value is null ? importer.WriteNullAsync(cancellationToken) : importer.WriteAsync(value, type, cancellationToken);
    }

    private async Task<IReadOnlyList<EnqueueResult>> EnqueueManyArraysAsync(IReadOnlyList<EnqueueRequest> requests, CancellationToken cancellationToken)
    {
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                var tx = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await using (tx.ConfigureAwait(false))
                {
                    var results = await EnqueueCoreAsync(connection, tx, requests, cancellationToken).ConfigureAwait(false);
                    await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
                    SignalCreated(requests, results);
                    return results;
                }
            }
        }
        catch (PostgresException ex) when (IsNotMigrated(ex))
        {
            throw NotMigrated(ex);
        }
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
        var connection = ConnectionOf(transaction);
        ThrowIfDisposed();
        try
        {
            var results = await EnqueueCoreAsync(connection, transaction, [request], cancellationToken, inCallerTransaction: true).ConfigureAwait(false);
            return results[0];
        }
        catch (PostgresException ex) when (IsNotMigrated(ex))
        {
            throw NotMigrated(ex);
        }
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
        var connection = ConnectionOf(transaction);
        ThrowIfDisposed();
        if (requests.Count == 0) return [];
        try
        {
            return await EnqueueCoreAsync(connection, transaction, requests, cancellationToken, inCallerTransaction: true).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (IsNotMigrated(ex))
        {
            throw NotMigrated(ex);
        }
    }

    private static NpgsqlConnection ConnectionOf(NpgsqlTransaction transaction)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        // A committed or rolled-back transaction that still has its connection is refused by Npgsql itself
        // (InvalidOperationException) when the first command is bound to it, before anything is sent.
        return transaction.Connection
            ?? throw new ArgumentException("The transaction has already been committed or rolled back.", nameof(transaction));
    }

    /// <summary>Wakes workers of every queue that got a new task (after the commit).</summary>
    private void SignalCreated(IReadOnlyList<EnqueueRequest> requests, EnqueueResult[] results)
    {
        string? last = null;
        for (var i = 0; i < results.Length; i++)
        {
            // Batches are usually one queue: skip the repeats cheaply; the notifier dedupes the rest.
            if (!results[i].Created || ReferenceEquals(requests[i].Queue, last)) continue;
            last = requests[i].Queue;
            _notifier.Signal(last);
        }
    }

    /// <summary>
    /// The single enqueue's own path (same semantics as <see cref="EnqueueCoreAsync"/> for one request): one
    /// prepared statement with scalar parameters; only a lost key race costs a second round trip.
    /// With <paramref name="notifyInline"/>, the first round also sends the wake-up NOTIFY in
    /// the same round trip: a batch with error barriers, so the insert and the NOTIFY are two implicit transactions
    /// and the insert never holds the notify lock through its commit (ADR 001). Returns whether that NOTIFY ran
    /// after a successful insert (a NOTIFY for an insert that stored nothing is a harmless spurious wake-up).
    /// </summary>
    private async Task<(EnqueueResult Result, bool Notified)> EnqueueOneAsync(NpgsqlConnection connection, EnqueueRequest request, bool notifyInline, CancellationToken cancellationToken)
    {
        var id = TaskIdGenerator.NewId();
        var headers = PostgresJson.WriteHeaders(request.Headers);
        var policy = PostgresJson.WriteRetryPolicy(request.RetryPolicy);
        for (var round = 0; ; round++)
        {
            if (round == MaxKeyRounds)
                throw new KonduitException($"Enqueue could not settle its idempotency keys after {MaxKeyRounds} rounds (keys purged and re-taken concurrently).");

            object? inserted;
            var notified = false;
            if (notifyInline && round == 0)
            {
                (inserted, notified) = await InsertAndNotifyAsync(connection, id, request, headers, policy, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                using var cmd = new NpgsqlCommand(_sql.EnqueueOne, connection);
                AddEnqueueOneParameters(cmd.Parameters, id, request, headers, policy);
                await PrepareAsync(cmd, cancellationToken).ConfigureAwait(false);
                inserted = await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            }
            if (inserted is Guid) return (new EnqueueResult(id, true), notified);
            if (request.IdempotencyKey is null) throw new KonduitException($"Enqueue of task {id} stored no row.");

            // The key is someone else's: return its task. A key that has vanished since (its task was purged in
            // between) is free again, so the request goes round once more.
            object? winner;
            using (var find = new NpgsqlCommand(_sql.ExistingKey, connection))
            {
                find.Parameters.Add(new NpgsqlParameter<string> { TypedValue = request.Queue });
                find.Parameters.Add(new NpgsqlParameter<string> { TypedValue = request.IdempotencyKey! });
                winner = await find.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            }
            if (winner is Guid existing) return (new EnqueueResult(existing, false), false);
        }
    }

    /// <summary>
    /// <see cref="PostgresQueries.EnqueueOne"/> and the wake-up NOTIFY in one round trip: a batch with error
    /// barriers, so each statement is its own implicit transaction and the NOTIFY runs after the insert has
    /// committed. The insert never holds the notify lock through its commit and fsync (ADR 001); the NOTIFY's
    /// transaction does not wait for its fsync (<c>synchronous_commit</c> off). Returns the inserted id (null: the
    /// key is taken) and whether the NOTIFY ran; an error of the insert is thrown, one of the NOTIFY swallowed
    /// (the caller then signals through the notifier).
    /// </summary>
    private async Task<(object? Inserted, bool Notified)> InsertAndNotifyAsync(
        NpgsqlConnection connection, Guid id, EnqueueRequest request, string? headers, string? policy, CancellationToken cancellationToken)
    {
        using var batch = new NpgsqlBatch(connection) { EnableErrorBarriers = true };
        var insert = new NpgsqlBatchCommand(_sql.EnqueueOne);
        AddEnqueueOneParameters(insert.Parameters, id, request, headers, policy);
        var notify = new NpgsqlBatchCommand(_sql.Notify);
        notify.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _sql.Channel });
        notify.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [request.Queue] });
        batch.BatchCommands.Add(insert);
        batch.BatchCommands.Add(notify);
        if (_prepare) await batch.PrepareAsync(cancellationToken).ConfigureAwait(false);
        var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            var inserted = await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? reader.GetValue(0) : null;
            try
            {
                // The insert has committed and its outcome is known: a late cancellation must not turn it into an
                // error, so the NOTIFY's (already sent, short) result is read without the token.
                var notified = await reader.NextResultAsync(CancellationToken.None).ConfigureAwait(false);
                return (inserted, notified);
            }
            catch (NpgsqlException)
            {
                // Best effort, like the notifier's: the caller signals through the notifier instead.
                return (inserted, false);
            }
        }
    }

    private static void AddEnqueueOneParameters(NpgsqlParameterCollection p, Guid id, EnqueueRequest request, string? headers, string? policy)
    {
        p.Add(new NpgsqlParameter<Guid> { TypedValue = id });
        p.Add(new NpgsqlParameter<string> { TypedValue = request.Queue });
        p.Add(new NpgsqlParameter<int> { TypedValue = request.Priority });
        p.Add(request.RunAt is { } runAt
            ? new NpgsqlParameter<DateTime> { TypedValue = runAt.UtcDateTime, NpgsqlDbType = NpgsqlDbType.TimestampTz }
            : new NpgsqlParameter { Value = DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        p.Add(new NpgsqlParameter<int> { TypedValue = request.MaxAttempts });
        p.Add(Nullable(request.Tenant, NpgsqlDbType.Text));
        p.Add(Nullable(request.IdempotencyKey, NpgsqlDbType.Text));
        p.Add(Nullable(headers, NpgsqlDbType.Jsonb));
        p.Add(Nullable(policy, NpgsqlDbType.Jsonb));
        p.Add(new NpgsqlParameter<byte[]> { TypedValue = request.Payload });

        static NpgsqlParameter Nullable(string? value, NpgsqlDbType type) =>
            value is null
                ? new NpgsqlParameter { Value = DBNull.Value, NpgsqlDbType = type }
                : new NpgsqlParameter<string> { TypedValue = value, NpgsqlDbType = type };
    }

    private async Task<EnqueueResult[]> EnqueueCoreAsync(
        NpgsqlConnection connection, NpgsqlTransaction? tx, IReadOnlyList<EnqueueRequest> requests, CancellationToken cancellationToken,
        bool inCallerTransaction = false)
    {
        var results = new EnqueueResult[requests.Count];
        var ids = new Guid[requests.Count];
        // A key repeated inside the batch resolves to its first occurrence (client-side: one statement cannot
        // insert the same key twice, and the first occurrence decides the id).
        var duplicateOf = new int[requests.Count];
        Dictionary<(string Queue, string Key), int>? firstByKey = null;
        var remaining = new List<int>(requests.Count);
        for (var i = 0; i < requests.Count; i++)
        {
            duplicateOf[i] = -1;
            if (requests[i].IdempotencyKey is { } key)
            {
                firstByKey ??= [];
                if (firstByKey.TryGetValue((requests[i].Queue, key), out var first))
                {
                    duplicateOf[i] = first;
                    continue;
                }
                firstByKey.Add((requests[i].Queue, key), i);
            }
            // Ids in request order, so enqueue order within a batch is request order.
            ids[i] = TaskIdGenerator.NewId();
            remaining.Add(i);
        }

        for (var round = 0; remaining.Count > 0; round++)
        {
            if (round == MaxKeyRounds)
                throw new KonduitException($"Enqueue could not settle its idempotency keys after {MaxKeyRounds} rounds (keys purged and re-taken concurrently).");

            var inserted = await InsertAsync(connection, tx, requests, ids, remaining, inCallerTransaction, cancellationToken).ConfigureAwait(false);
            var losers = new List<int>();
            foreach (var i in remaining)
            {
                if (inserted.Contains(ids[i])) results[i] = new EnqueueResult(ids[i], true);
                else losers.Add(i);
            }
            if (losers.Count == 0) break;

            // Keys won by someone else: return the winner's id. A key that has vanished since (its task was purged
            // in between) is free again, so that request goes round once more.
            var existing = await FindKeysAsync(connection, tx, requests, losers, cancellationToken).ConfigureAwait(false);
            remaining = [];
            foreach (var i in losers)
            {
                if (existing.TryGetValue((requests[i].Queue, requests[i].IdempotencyKey!), out var winner))
                    results[i] = new EnqueueResult(winner, false);
                else
                    remaining.Add(i);
            }
        }

        for (var i = 0; i < requests.Count; i++)
        {
            if (duplicateOf[i] >= 0) results[i] = new EnqueueResult(results[duplicateOf[i]].TaskId, false);
        }
        return results;
    }

    private async Task<HashSet<Guid>> InsertAsync(
        NpgsqlConnection connection, NpgsqlTransaction? tx, IReadOnlyList<EnqueueRequest> requests, Guid[] ids,
        List<int> rows, bool inCallerTransaction, CancellationToken cancellationToken)
    {
        var n = rows.Count;
        var idArray = new Guid[n];
        var queues = new string[n];
        var priorities = new int[n];
        var runAts = new DateTime?[n];
        var maxAttempts = new int[n];
        var tenants = new string?[n];
        var keys = new string?[n];
        var headers = new string?[n];
        var policies = new string?[n];
        var payloads = new byte[n][];
        for (var j = 0; j < n; j++)
        {
            var r = requests[rows[j]];
            idArray[j] = ids[rows[j]];
            queues[j] = r.Queue;
            priorities[j] = r.Priority;
            runAts[j] = r.RunAt?.UtcDateTime;
            maxAttempts[j] = r.MaxAttempts;
            tenants[j] = r.Tenant;
            keys[j] = r.IdempotencyKey;
            headers[j] = PostgresJson.WriteHeaders(r.Headers);
            policies[j] = PostgresJson.WriteRetryPolicy(r.RetryPolicy);
            payloads[j] = r.Payload;
        }

        // Only the caller's transaction notifies in-statement (it alone knows when it commits); see PostgresNotifier.
        using var cmd = new NpgsqlCommand(inCallerTransaction ? _sql.EnqueueInTransaction : _sql.EnqueueQuiet, connection, tx);
        Add(cmd, idArray);
        Add(cmd, queues);
        Add(cmd, priorities);
        cmd.Parameters.Add(new NpgsqlParameter { Value = runAts, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        Add(cmd, maxAttempts);
        cmd.Parameters.Add(new NpgsqlParameter { Value = tenants, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = keys, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = headers, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb });
        cmd.Parameters.Add(new NpgsqlParameter { Value = policies, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb });
        cmd.Parameters.Add(new NpgsqlParameter { Value = payloads, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
        if (inCallerTransaction) Add(cmd, _sql.Channel);
        await PrepareAsync(cmd, cancellationToken).ConfigureAwait(false);

        var inserted = new HashSet<Guid>();
        var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                inserted.Add(reader.GetGuid(0));
        }
        return inserted;
    }

    private async Task<Dictionary<(string Queue, string Key), Guid>> FindKeysAsync(
        NpgsqlConnection connection, NpgsqlTransaction? tx, IReadOnlyList<EnqueueRequest> requests, List<int> rows,
        CancellationToken cancellationToken)
    {
        var queues = new string[rows.Count];
        var keys = new string[rows.Count];
        for (var j = 0; j < rows.Count; j++)
        {
            queues[j] = requests[rows[j]].Queue;
            keys[j] = requests[rows[j]].IdempotencyKey!;
        }
        using var cmd = new NpgsqlCommand(_sql.ExistingKeys, connection, tx);
        Add(cmd, queues);
        Add(cmd, keys);
        var found = new Dictionary<(string, string), Guid>();
        var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                found[(reader.GetString(0), reader.GetString(1))] = reader.GetGuid(2);
        }
        return found;
    }

    // ---------------------------------------------------------------------------------------------- lease

    /// <inheritdoc />
    public async Task<IReadOnlyList<TaskLease>> LeaseAsync(string queue, string workerId, int maxCount, TimeSpan leaseDuration, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateLease(queue, workerId, maxCount, leaseDuration);
        ThrowIfDisposed();
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                using var cmd = new NpgsqlCommand(_sql.Lease, connection);
                Add(cmd, queue);
                Add(cmd, maxCount);
                Add(cmd, workerId);
                Add(cmd, leaseDuration);
                await PrepareAsync(cmd, cancellationToken).ConfigureAwait(false);

                var leases = new List<TaskLease>();
                var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        leases.Add(ReadLease(reader, queue, workerId));
                    }
                }
                // RETURNING order is unspecified: restore the lease order.
                leases.Sort(CompareLeaseOrder);
                return leases;
            }
        }
        catch (PostgresException ex) when (IsNotMigrated(ex))
        {
            throw NotMigrated(ex);
        }
    }

    /// <summary>Reads one row of <see cref="PostgresQueries.LeasePicked"/>'s RETURNING list.</summary>
    internal static TaskLease ReadLease(NpgsqlDataReader reader, string queue, string workerId) => new()
    {
        TaskId = reader.GetGuid(0),
        Queue = queue,
        WorkerId = workerId,
        LeaseToken = reader.GetInt64(1),
        Attempt = reader.GetInt32(2),
        MaxAttempts = reader.GetInt32(3),
        ExpiresAt = reader.GetFieldValue<DateTimeOffset>(4),
        Payload = reader.GetFieldValue<byte[]>(5),
        Priority = reader.GetInt32(6),
        Tenant = reader.IsDBNull(7) ? null : reader.GetString(7),
        Headers = PostgresJson.ReadHeaders(reader.IsDBNull(8) ? null : reader.GetString(8)),
        RetryPolicy = PostgresJson.ReadRetryPolicy(reader.IsDBNull(9) ? null : reader.GetString(9)),
        EnqueuedAt = reader.GetFieldValue<DateTimeOffset>(10),
        RunAt = reader.GetFieldValue<DateTimeOffset>(11),
    };

    /// <summary>The contract's lease order: priority descending, run-at, id.</summary>
    internal static int CompareLeaseOrder(TaskLease a, TaskLease b)
    {
        var c = b.Priority.CompareTo(a.Priority);
        if (c == 0) c = a.RunAt.CompareTo(b.RunAt);
        return c != 0 ? c : a.TaskId.CompareTo(b.TaskId);
    }

    /// <inheritdoc />
    public async Task<TaskLease> HeartbeatAsync(TaskLease lease, TimeSpan extension, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        TaskValidation.ValidateDuration(extension, nameof(extension));
        ThrowIfDisposed();
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                object? expiresAt;
                using (var cmd = new NpgsqlCommand(_sql.Heartbeat, connection))
                {
                    Add(cmd, lease.TaskId);
                    Add(cmd, lease.LeaseToken);
                    Add(cmd, extension);
                    await PrepareAsync(cmd, cancellationToken).ConfigureAwait(false);
                    expiresAt = await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
                }
                if (expiresAt is DateTime utc)
                    return lease with { ExpiresAt = new DateTimeOffset(DateTime.SpecifyKind(utc, DateTimeKind.Utc)) };
                throw await LeaseLostAsync(connection, lease, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (PostgresException ex) when (IsNotMigrated(ex))
        {
            throw NotMigrated(ex);
        }
    }

    /// <inheritdoc />
    public async Task CompleteAsync(TaskLease lease, byte[]? result = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ThrowIfDisposed();
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                int rows;
                using (var cmd = new NpgsqlCommand(_sql.Complete, connection))
                {
                    Add(cmd, lease.TaskId);
                    Add(cmd, lease.LeaseToken);
                    cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)result ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bytea });
                    await PrepareAsync(cmd, cancellationToken).ConfigureAwait(false);
                    rows = await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
                if (rows == 0) throw await LeaseLostAsync(connection, lease, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (PostgresException ex) when (IsNotMigrated(ex))
        {
            throw NotMigrated(ex);
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<Guid>> CompleteManyAsync(IReadOnlyList<TaskCompletion> completions, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateCompletions(completions);
        ThrowIfDisposed();
        if (completions.Count == 0) return [];

        // A lease listed twice is accepted once (at most one completion per lease): later copies count as lost.
        var seen = new HashSet<(Guid, long)>();
        var sent = new List<int>(completions.Count);
        for (var i = 0; i < completions.Count; i++)
        {
            if (seen.Add((completions[i].Lease.TaskId, completions[i].Lease.LeaseToken))) sent.Add(i);
        }
        var ids = new Guid[sent.Count];
        var tokens = new long[sent.Count];
        var results = new byte[]?[sent.Count];
        for (var j = 0; j < sent.Count; j++)
        {
            var c = completions[sent[j]];
            ids[j] = c.Lease.TaskId;
            tokens[j] = c.Lease.LeaseToken;
            results[j] = c.Result;
        }

        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                using var cmd = new NpgsqlCommand(_sql.CompleteMany, connection);
                Add(cmd, ids);
                Add(cmd, tokens);
                cmd.Parameters.Add(new NpgsqlParameter { Value = results, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
                await PrepareAsync(cmd, cancellationToken).ConfigureAwait(false);
                var accepted = new HashSet<Guid>();
                var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                        accepted.Add(reader.GetGuid(0));
                }

                // Each id can be accepted for at most one token (the current one), so "accepted id" identifies the
                // accepted (id, token) pair; every other entry, in request order, was lost.
                var lost = new List<Guid>();
                var credited = new HashSet<Guid>();
                foreach (var completion in completions)
                {
                    var id = completion.Lease.TaskId;
                    if (accepted.Contains(id) && credited.Add(id)) continue;
                    lost.Add(id);
                }
                return lost;
            }
        }
        catch (PostgresException ex) when (IsNotMigrated(ex))
        {
            throw NotMigrated(ex);
        }
    }

    /// <inheritdoc />
    public async Task<FailResult> FailAsync(TaskLease lease, string error, FailOptions? options = null, CancellationToken cancellationToken = default)
    {
        var message = TaskValidation.ValidateFail(lease, error, options);
        ThrowIfDisposed();
        options ??= FailOptions.Retry;
        // The delay is computed here (policy precedence and jitter are the core's); whether to retry at all is
        // decided by the statement against the row's own attempt counters.
        var delay = options.ResolveDelay(lease, _defaultRetryPolicy);
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                using (var cmd = new NpgsqlCommand(_sql.Fail, connection))
                {
                    Add(cmd, lease.TaskId);
                    Add(cmd, lease.LeaseToken);
                    Add(cmd, options.Retryable);
                    Add(cmd, delay);
                    Add(cmd, message);
                    Add(cmd, _sql.Channel);
                    await PrepareAsync(cmd, cancellationToken).ConfigureAwait(false);
                    var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    await using (reader.ConfigureAwait(false))
                    {
                        if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                        {
                            var state = (TaskState)reader.GetInt16(0);
                            return new FailResult(state, state == TaskState.Pending ? reader.GetFieldValue<DateTimeOffset>(1) : null);
                        }
                    }
                }
                throw await LeaseLostAsync(connection, lease, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (PostgresException ex) when (IsNotMigrated(ex))
        {
            throw NotMigrated(ex);
        }
    }

    private async Task<LeaseLostException> LeaseLostAsync(NpgsqlConnection connection, TaskLease lease, CancellationToken cancellationToken)
    {
        using var cmd = new NpgsqlCommand(_sql.StateOf, connection);
        Add(cmd, lease.TaskId);
        var state = await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return new LeaseLostException(lease.TaskId, lease.LeaseToken, state is short s ? (TaskState)s : null);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ReclaimedTask>> ReclaimExpiredAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                using var cmd = new NpgsqlCommand(_sql.ReclaimExpired, connection);
                Add(cmd, PostgresQueries.SweepBatchSize);
                Add(cmd, _sql.Channel);
                var reclaimed = new List<ReclaimedTask>();
                while (true)
                {
                    // Each batch commits on its own: a long sweep never holds many row locks for long.
                    var before = reclaimed.Count;
                    var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    await using (reader.ConfigureAwait(false))
                    {
                        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                            reclaimed.Add(new ReclaimedTask(reader.GetGuid(0), reader.GetString(1),
                                reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetInt32(3), reader.GetInt64(4),
                                reader.IsDBNull(5) ? null : reader.GetString(5), (TaskState)reader.GetInt16(6)));
                    }
                    if (reclaimed.Count - before < PostgresQueries.SweepBatchSize) return reclaimed;
                }
            }
        }
        catch (PostgresException ex) when (IsNotMigrated(ex))
        {
            throw NotMigrated(ex);
        }
    }

    // ---------------------------------------------------------------------------------------------- admin

    /// <inheritdoc />
    public async Task<bool> CancelAsync(Guid taskId, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                using var cmd = new NpgsqlCommand(_sql.Cancel, connection);
                Add(cmd, taskId);
                while (true)
                {
                    var (changed, state) = await ReadCountAndStateAsync(cmd, cancellationToken).ConfigureAwait(false);
                    if (changed > 0) return true;
                    if (state is null) throw new TaskNotFoundException(taskId);
                    if (state.Value.IsTerminal()) return false;
                    // Seen non-terminal yet not updated: a concurrent change finished it in between. Read again.
                }
            }
        }
        catch (PostgresException ex) when (IsNotMigrated(ex))
        {
            throw NotMigrated(ex);
        }
    }

    /// <inheritdoc />
    public async Task RedriveAsync(Guid taskId, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                using var cmd = new NpgsqlCommand(_sql.Retry, connection);
                Add(cmd, taskId);
                Add(cmd, _sql.Channel);
                while (true)
                {
                    var (changed, state) = await ReadCountAndStateAsync(cmd, cancellationToken).ConfigureAwait(false);
                    if (changed > 0) return;
                    if (state is null) throw new TaskNotFoundException(taskId);
                    if (state.Value is not (TaskState.Failed or TaskState.Canceled))
                        throw new InvalidTaskStateException(taskId, state.Value, "retry", RedriveStates);
                    // Seen redrivable yet not updated: a concurrent redrive won in between. Read again.
                }
            }
        }
        catch (PostgresException ex) when (IsNotMigrated(ex))
        {
            throw NotMigrated(ex);
        }
    }

    private static async Task<(long Changed, TaskState? State)> ReadCountAndStateAsync(NpgsqlCommand cmd, CancellationToken cancellationToken)
    {
        var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            return (reader.GetInt64(0), reader.IsDBNull(1) ? null : (TaskState)reader.GetInt16(1));
        }
    }

    /// <inheritdoc />
    public async Task<TaskSnapshot> GetAsync(Guid taskId, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                using var cmd = new NpgsqlCommand(_sql.Get, connection);
                Add(cmd, taskId);
                var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) throw new TaskNotFoundException(taskId);
                    return ReadSnapshot(reader);
                }
            }
        }
        catch (PostgresException ex) when (IsNotMigrated(ex))
        {
            throw NotMigrated(ex);
        }
    }

    /// <inheritdoc />
    public async Task<TaskPage> QueryAsync(TaskQuery filter, PageRequest? page = null, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateQuery(filter, page);
        ThrowIfDisposed();
        page ??= PageRequest.First;
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                using var cmd = new NpgsqlCommand { Connection = connection };
                // The WHERE clause is composed of constant fragments only; values travel as parameters.
                var sql = new StringBuilder(_sql.QueryPrefix);
                if (filter.Queue is not null)
                {
                    sql.Append(PostgresQueries.QueryByQueue);
                    cmd.Parameters.Add(new NpgsqlParameter<string>("queue", filter.Queue));
                }
                if (filter.States is { Count: > 0 } states)
                {
                    sql.Append(PostgresQueries.QueryByStates);
                    cmd.Parameters.Add(new NpgsqlParameter<short[]>("states", states.Select(static s => (short)s).ToArray()));
                }
                if (filter.Tenant is not null)
                {
                    sql.Append(PostgresQueries.QueryByTenant);
                    cmd.Parameters.Add(new NpgsqlParameter<string>("tenant", filter.Tenant));
                }
                if (filter.EnqueuedFrom is { } from)
                {
                    sql.Append(PostgresQueries.QueryCreatedFrom);
                    cmd.Parameters.Add(new NpgsqlParameter<DateTimeOffset>("created_from", from.ToUniversalTime()));
                }
                if (filter.EnqueuedTo is { } to)
                {
                    sql.Append(PostgresQueries.QueryCreatedTo);
                    cmd.Parameters.Add(new NpgsqlParameter<DateTimeOffset>("created_to", to.ToUniversalTime()));
                }
                if (page.After is { } after)
                {
                    sql.Append(PostgresQueries.QueryAfter);
                    cmd.Parameters.Add(new NpgsqlParameter<Guid>("after", after));
                }
                sql.Append(PostgresQueries.QuerySuffix);
                cmd.Parameters.Add(new NpgsqlParameter<int>("limit", page.Limit + 1));
                cmd.CommandText = sql.ToString();

                var items = new List<TaskSnapshot>(Math.Min(page.Limit + 1, 128));
                var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) items.Add(ReadSnapshot(reader));
                }
                if (items.Count <= page.Limit) return new TaskPage(items, null);
                items.RemoveAt(items.Count - 1);
                return new TaskPage(items, items[^1].Id);
            }
        }
        catch (PostgresException ex) when (IsNotMigrated(ex))
        {
            throw NotMigrated(ex);
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<QueueStats>> GetStatsAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                using var cmd = new NpgsqlCommand(_sql.Stats, connection);
                var stats = new List<QueueStats>();
                var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        stats.Add(new QueueStats(reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2),
                            reader.GetInt64(3), reader.GetInt64(4), reader.GetInt64(5)));
                    }
                }
                return stats;
            }
        }
        catch (PostgresException ex) when (IsNotMigrated(ex))
        {
            throw NotMigrated(ex);
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<PurgedTask>> PurgeAsync(TimeSpan olderThan, IReadOnlyCollection<TaskState>? states = null, string? queue = null, CancellationToken cancellationToken = default)
    {
        var purgeStates = TaskValidation.ValidatePurge(olderThan, states, queue);
        ThrowIfDisposed();
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                using var cmd = new NpgsqlCommand(_sql.Purge, connection);
                Add(cmd, purgeStates.Select(static s => (short)s).ToArray());
                Add(cmd, olderThan);
                cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)queue ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
                Add(cmd, PostgresQueries.SweepBatchSize);
                var purged = new List<PurgedTask>();
                while (true)
                {
                    // Batches commit one by one, so a large purge neither bloats one transaction nor blocks for long.
                    var before = purged.Count;
                    var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    await using (reader.ConfigureAwait(false))
                    {
                        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                            purged.Add(new PurgedTask(reader.GetGuid(0), reader.GetString(1),
                                reader.IsDBNull(2) ? null : reader.GetString(2), (TaskState)reader.GetInt16(3)));
                    }
                    if (purged.Count - before < PostgresQueries.SweepBatchSize) return purged;
                }
            }
        }
        catch (PostgresException ex) when (IsNotMigrated(ex))
        {
            throw NotMigrated(ex);
        }
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

    // ---------------------------------------------------------------------------------------------- helpers

    private static TaskSnapshot ReadSnapshot(NpgsqlDataReader r) => new()
    {
        Id = r.GetGuid(0),
        Queue = r.GetString(1),
        State = (TaskState)r.GetInt16(2),
        Priority = r.GetInt32(3),
        Attempts = r.GetInt32(4),
        MaxAttempts = r.GetInt32(5),
        LeaseToken = r.GetInt64(6),
        RunAt = r.GetFieldValue<DateTimeOffset>(7),
        EnqueuedAt = r.GetFieldValue<DateTimeOffset>(8),
        UpdatedAt = r.GetFieldValue<DateTimeOffset>(9),
        StartedAt = r.IsDBNull(10) ? null : r.GetFieldValue<DateTimeOffset>(10),
        FinishedAt = r.IsDBNull(11) ? null : r.GetFieldValue<DateTimeOffset>(11),
        WorkerId = r.IsDBNull(12) ? null : r.GetString(12),
        LeaseExpiresAt = r.IsDBNull(13) ? null : r.GetFieldValue<DateTimeOffset>(13),
        IdempotencyKey = r.IsDBNull(14) ? null : r.GetString(14),
        Tenant = r.IsDBNull(15) ? null : r.GetString(15),
        Headers = PostgresJson.ReadHeaders(r.IsDBNull(16) ? null : r.GetString(16)),
        Payload = r.GetFieldValue<byte[]>(17),
        Result = r.IsDBNull(18) ? null : r.GetFieldValue<byte[]>(18),
        Errors = PostgresJson.ReadErrors(r.GetString(19)),
    };

    private static void Add<T>(NpgsqlCommand cmd, T value) => cmd.Parameters.Add(new NpgsqlParameter<T> { TypedValue = value });

    private Task PrepareAsync(NpgsqlCommand cmd, CancellationToken cancellationToken) =>
        _prepare ? cmd.PrepareAsync(cancellationToken) : Task.CompletedTask;

    private static bool IsNotMigrated(PostgresException ex) =>
        ex.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InvalidSchemaName;

    private KonduitException NotMigrated(PostgresException ex) => new(
        $"Konduit's tables do not exist in schema '{_sql.Schema}': run PostgresTaskStore.MigrateAsync() (once, at deployment or start-up) before using the store.",
        ex);

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
}
