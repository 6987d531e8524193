using Npgsql;
using NpgsqlTypes;

namespace Konduit.Postgres;

/// <summary>
/// The enqueue paths: single (one prepared scalar statement, NOTIFY in the same round trip when idle), array batch
/// (one unnest statement in a transaction), binary COPY for large keyless batches (<see cref="PostgresCopyEnqueue"/>),
/// and enqueue inside the caller's transaction. Idempotency keys are settled the same way on every path: the key
/// row is inserted first and decides the race; a loser reads the winner's id.
/// </summary>
internal sealed class PostgresEnqueue(PostgresExecutor db, PostgresQueries sql, PostgresNotifier notifier, PostgresMigrator migrator)
{
    /// <summary>EnqueueManyAsync switches to binary COPY from this many (keyless) requests.</summary>
    public const int CopyThreshold = 200;

    // Bounded so that a pathological loop (keys purged and re-won over and over) surfaces instead of spinning.
    private const int MaxKeyRounds = 16;

    public Task<EnqueueResult> EnqueueAsync(EnqueueRequest request, CancellationToken cancellationToken) =>
        db.RunAsync("enqueue", (Self: this, Request: request),
            static (c, s, ct) => s.Self.EnqueueOnConnectionAsync(c, s.Request, ct), cancellationToken);

    /// <summary>A batch on a connection of its own: COPY when <paramref name="preferCopy"/> and COPY applies, else arrays.</summary>
    public Task<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, bool preferCopy, CancellationToken cancellationToken) =>
        db.RunAsync("enqueue many", (Self: this, Requests: requests, PreferCopy: preferCopy),
            static (c, s, ct) => s.Self.EnqueueManyOnConnectionAsync(c, s.Requests, s.PreferCopy, ct), cancellationToken);

    public Task<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, NpgsqlTransaction transaction, CancellationToken cancellationToken) =>
        db.GuardAsync("enqueue in transaction", (Self: this, Requests: requests, Transaction: transaction),
            static async (s, ct) => (IReadOnlyList<EnqueueResult>)await s.Self.EnqueueCoreAsync(
                s.Transaction.Connection!, s.Transaction, s.Requests, inCallerTransaction: true, ct).ConfigureAwait(false),
            cancellationToken);

    private async Task<EnqueueResult> EnqueueOnConnectionAsync(NpgsqlConnection connection, EnqueueRequest request, CancellationToken cancellationToken)
    {
        // One statement, so no explicit transaction: it either stored the task or changed nothing. When no
        // notification is in flight, the NOTIFY rides in the same round trip as its own transaction after the
        // insert's commit (an idle worker wakes one round trip and a thread hop sooner); otherwise the notifier
        // coalesces it with the burst (see PostgresNotifier).
        if (!notifier.TryBeginInline())
        {
            var (queued, _) = await EnqueueOneAsync(connection, request, false, cancellationToken).ConfigureAwait(false);
            if (queued.Created) notifier.Signal(request.Queue);
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
            notifier.EndInline();
        }
        if (result.Created && !notified) notifier.Signal(request.Queue);
        return result;
    }

    private async Task<IReadOnlyList<EnqueueResult>> EnqueueManyOnConnectionAsync(
        NpgsqlConnection connection, IReadOnlyList<EnqueueRequest> requests, bool preferCopy, CancellationToken cancellationToken)
    {
        EnqueueResult[] results;
        // An older schema lacks the COPY path's column defaults: it keeps the array statement (see PostgresMigrator).
        if (preferCopy && PostgresCopyEnqueue.Applies(requests, out var withRunAt)
            && await migrator.CopyReadyAsync(connection, cancellationToken).ConfigureAwait(false))
        {
            results = await PostgresCopyEnqueue.CopyAsync(connection, sql, requests, withRunAt, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            var tx = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (tx.ConfigureAwait(false))
            {
                results = await EnqueueCoreAsync(connection, tx, requests, inCallerTransaction: false, cancellationToken).ConfigureAwait(false);
                await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        SignalCreated(requests, results);
        return results;
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
            notifier.Signal(last);
        }
    }

    /// <summary>
    /// The single enqueue's own path (same semantics as <see cref="EnqueueCoreAsync"/> for one request): one
    /// prepared statement with scalar parameters; only a taken key costs a second round trip.
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
                using var cmd = new NpgsqlCommand(sql.EnqueueOne, connection);
                AddEnqueueOneParameters(cmd.Parameters, id, request, headers, policy);
                await db.PrepareAsync(cmd, cancellationToken).ConfigureAwait(false);
                inserted = await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            }
            if (inserted is Guid) return (new EnqueueResult(id, true), notified);
            if (request.IdempotencyKey is null) throw new KonduitException($"Enqueue of task {id} stored no row.");

            // The key is someone else's: return its task. A key that is free again (its task purged in between, or
            // its row gone by any other route) sends the request round once more.
            object? winner;
            using (var find = new NpgsqlCommand(sql.ExistingKey, connection))
            {
                PostgresExecutor.Add(find, request.Queue);
                PostgresExecutor.Add(find, request.IdempotencyKey!);
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
        var insert = new NpgsqlBatchCommand(sql.EnqueueOne);
        AddEnqueueOneParameters(insert.Parameters, id, request, headers, policy);
        var notify = new NpgsqlBatchCommand(sql.Notify);
        notify.Parameters.Add(new NpgsqlParameter<string> { TypedValue = sql.Channel });
        notify.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [request.Queue] });
        batch.BatchCommands.Add(insert);
        batch.BatchCommands.Add(notify);
        if (db.Prepares) await batch.PrepareAsync(cancellationToken).ConfigureAwait(false);
        var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            var inserted = await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? reader.GetValue(0) : null;
            try
            {
                // The row arrives before the insert's implicit transaction commits (at the Sync after it): moving on to
                // the NOTIFY's result is what confirms the commit. Read without the token, so a late cancellation never
                // turns a committed insert into an error.
                var notified = await reader.NextResultAsync(CancellationToken.None).ConfigureAwait(false);
                return (inserted, notified);
            }
            catch (PostgresException e) when (ReferenceEquals(e.BatchCommand, notify))
            {
                // Best effort, like the notifier's: the caller signals through the notifier instead.
                return (inserted, false);
            }
            // Any other failure is the insert's: its commit is unconfirmed (e.g. the connection broke while the commit
            // waited for a synchronous standby), so it is thrown, never reported as stored (issue 15, failover).
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

    /// <summary>The array batch (and the transactional single enqueue): one unnest statement per key round.</summary>
    public async Task<EnqueueResult[]> EnqueueCoreAsync(
        NpgsqlConnection connection, NpgsqlTransaction? tx, IReadOnlyList<EnqueueRequest> requests, bool inCallerTransaction,
        CancellationToken cancellationToken)
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

            // Keys won by someone else: return the winner's id. A key that is free again (its task purged in
            // between, or its row gone by any other route) sends that request round once more.
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
        using var cmd = new NpgsqlCommand(inCallerTransaction ? sql.EnqueueInTransaction : sql.EnqueueQuiet, connection, tx);
        PostgresExecutor.Add(cmd, idArray);
        PostgresExecutor.Add(cmd, queues);
        PostgresExecutor.Add(cmd, priorities);
        cmd.Parameters.Add(new NpgsqlParameter { Value = runAts, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        PostgresExecutor.Add(cmd, maxAttempts);
        cmd.Parameters.Add(new NpgsqlParameter { Value = tenants, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = keys, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = headers, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb });
        cmd.Parameters.Add(new NpgsqlParameter { Value = policies, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb });
        cmd.Parameters.Add(new NpgsqlParameter { Value = payloads, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
        if (inCallerTransaction) PostgresExecutor.Add(cmd, sql.Channel);
        await db.PrepareAsync(cmd, cancellationToken).ConfigureAwait(false);

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
        using var cmd = new NpgsqlCommand(sql.ExistingKeys, connection, tx);
        PostgresExecutor.Add(cmd, queues);
        PostgresExecutor.Add(cmd, keys);
        var found = new Dictionary<(string, string), Guid>();
        var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                found[(reader.GetString(0), reader.GetString(1))] = reader.GetGuid(2);
        }
        return found;
    }
}
