using System.Globalization;
using Npgsql;
using NpgsqlTypes;

namespace Konduit.Postgres;

/// <summary>
/// The lease lifecycle: lease (the queue's head, or ids a dispatcher names), heartbeat (one or many), complete (one
/// or many), fail, and the sweeper's reclaim. Every statement after the lease is fenced by (id, lease token) and the
/// server clock; a refused one reads the row's state once, on the cold path, to say why.
/// </summary>
internal sealed class PostgresLeases
{
    private readonly PostgresExecutor _db;
    private readonly PostgresQueries _sql;
    private readonly RetryPolicy _defaultRetryPolicy;
    // Environment.TickCount64 from which the next sweep folds task_counts (PostgresQueries.FoldCounts).
    private long _nextFoldAt = Environment.TickCount64 + (long)PostgresQueries.FoldCountsInterval.TotalMilliseconds;

    public PostgresLeases(PostgresExecutor db, PostgresQueries sql, RetryPolicy defaultRetryPolicy)
    {
        _db = db;
        _sql = sql;
        _defaultRetryPolicy = defaultRetryPolicy;
    }

    public Task<IReadOnlyList<TaskLease>> LeaseAsync(string queue, string workerId, int maxCount, TimeSpan leaseDuration, CancellationToken cancellationToken) =>
        _db.RunAsync("lease", (Self: this, Queue: queue, WorkerId: workerId, MaxCount: maxCount, Duration: leaseDuration),
            static (c, s, ct) =>
            {
                var cmd = new NpgsqlCommand(s.Self._sql.Lease, c);
                PostgresExecutor.Add(cmd, s.Queue);
                PostgresExecutor.Add(cmd, s.MaxCount);
                PostgresExecutor.Add(cmd, s.WorkerId);
                PostgresExecutor.Add(cmd, s.Duration);
                return s.Self.ReadLeasesAsync(cmd, s.Queue, s.WorkerId, ct);
            }, cancellationToken);

    public Task<IReadOnlyList<TaskLease>> LeaseByIdsAsync(string queue, Guid[] taskIds, string workerId, TimeSpan leaseDuration, CancellationToken cancellationToken) =>
        _db.RunAsync("lease by ids", (Self: this, Queue: queue, Ids: taskIds, WorkerId: workerId, Duration: leaseDuration),
            static (c, s, ct) =>
            {
                var cmd = new NpgsqlCommand(s.Self._sql.LeaseByIds, c);
                PostgresExecutor.Add(cmd, s.Ids);
                PostgresExecutor.Add(cmd, s.Queue);
                PostgresExecutor.Add(cmd, s.WorkerId);
                PostgresExecutor.Add(cmd, s.Duration);
                return s.Self.ReadLeasesAsync(cmd, s.Queue, s.WorkerId, ct);
            }, cancellationToken);

    private async Task<IReadOnlyList<TaskLease>> ReadLeasesAsync(NpgsqlCommand cmd, string queue, string workerId, CancellationToken cancellationToken)
    {
        using (cmd)
        {
            await _db.PrepareAsync(cmd, cancellationToken).ConfigureAwait(false);
            var leases = new List<TaskLease>();
            await PostgresRows.ReadAllAsync(cmd, leases, r => PostgresRows.ReadLease(r, queue, workerId), cancellationToken).ConfigureAwait(false);
            // RETURNING order is unspecified: restore the lease order.
            leases.Sort(CompareLeaseOrder);
            return leases;
        }
    }

    /// <summary>The contract's lease order: priority descending, run-at, id.</summary>
    public static int CompareLeaseOrder(TaskLease a, TaskLease b)
    {
        var c = b.Priority.CompareTo(a.Priority);
        if (c == 0) c = a.RunAt.CompareTo(b.RunAt);
        return c != 0 ? c : a.TaskId.CompareTo(b.TaskId);
    }

    public Task<TaskLease> HeartbeatAsync(TaskLease lease, TimeSpan extension, CancellationToken cancellationToken) =>
        _db.RunAsync("heartbeat", (Self: this, Lease: lease, Extension: extension),
            static async (c, s, ct) =>
            {
                object? expiresAt;
                using (var cmd = new NpgsqlCommand(s.Self._sql.Heartbeat, c))
                {
                    PostgresExecutor.Add(cmd, s.Lease.TaskId);
                    PostgresExecutor.Add(cmd, s.Lease.LeaseToken);
                    PostgresExecutor.Add(cmd, s.Extension);
                    await s.Self._db.PrepareAsync(cmd, ct).ConfigureAwait(false);
                    expiresAt = await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false);
                }
                if (expiresAt is DateTime utc)
                    return s.Lease with { ExpiresAt = new DateTimeOffset(DateTime.SpecifyKind(utc, DateTimeKind.Utc)) };
                throw await s.Self.LeaseLostAsync(c, s.Lease, ct).ConfigureAwait(false);
            }, cancellationToken);

    /// <summary>All of <paramref name="leases"/> in one statement (<see cref="PostgresQueries.HeartbeatMany"/>).</summary>
    public Task<HeartbeatManyResult> HeartbeatManyAsync(IReadOnlyList<TaskLease> leases, TimeSpan extension, CancellationToken cancellationToken)
    {
        // A lease listed twice is sent once; renewal is idempotent, so every copy is reported renewed.
        var unique = new HashSet<(Guid, long)>();
        var ids = new List<Guid>(leases.Count);
        var tokens = new List<long>(leases.Count);
        foreach (var lease in leases)
        {
            if (!unique.Add((lease.TaskId, lease.LeaseToken))) continue;
            ids.Add(lease.TaskId);
            tokens.Add(lease.LeaseToken);
        }
        return _db.RunAsync("heartbeat many", (Self: this, Leases: leases, Ids: ids.ToArray(), Tokens: tokens.ToArray(), Extension: extension),
            static async (c, s, ct) =>
            {
                var renewed = new Dictionary<(Guid, long), DateTimeOffset>(s.Ids.Length);
                using (var cmd = new NpgsqlCommand(s.Self._sql.HeartbeatMany, c))
                {
                    PostgresExecutor.Add(cmd, s.Ids);
                    PostgresExecutor.Add(cmd, s.Tokens);
                    PostgresExecutor.Add(cmd, s.Extension);
                    await s.Self._db.PrepareAsync(cmd, ct).ConfigureAwait(false);
                    var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
                    await using (reader.ConfigureAwait(false))
                    {
                        while (await reader.ReadAsync(ct).ConfigureAwait(false))
                            renewed[(reader.GetGuid(0), reader.GetInt64(1))] = reader.GetFieldValue<DateTimeOffset>(2);
                    }
                }
                var kept = new List<TaskLease>(renewed.Count);
                var lost = new List<Guid>();
                foreach (var lease in s.Leases)
                {
                    if (renewed.TryGetValue((lease.TaskId, lease.LeaseToken), out var expiresAt)) kept.Add(lease with { ExpiresAt = expiresAt });
                    else lost.Add(lease.TaskId);
                }
                return new HeartbeatManyResult(kept, lost);
            }, cancellationToken);
    }

    public Task CompleteAsync(TaskLease lease, byte[]? result, CancellationToken cancellationToken) =>
        _db.RunAsync("complete", (Self: this, Lease: lease, Result: result),
            static async (c, s, ct) =>
            {
                long rows;
                using (var cmd = new NpgsqlCommand(s.Self._sql.Complete, c))
                {
                    PostgresExecutor.Add(cmd, s.Lease.TaskId);
                    PostgresExecutor.Add(cmd, s.Lease.LeaseToken);
                    cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)s.Result ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bytea });
                    await s.Self._db.PrepareAsync(cmd, ct).ConfigureAwait(false);
                    rows = (long)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
                }
                if (rows == 0) throw await s.Self.LeaseLostAsync(c, s.Lease, ct).ConfigureAwait(false);
                return true;
            }, cancellationToken);

    public Task<IReadOnlyList<Guid>> CompleteManyAsync(IReadOnlyList<TaskCompletion> completions, CancellationToken cancellationToken)
    {
        // A lease listed twice is accepted once (at most one completion per lease): later copies count as lost.
        var seen = new HashSet<(Guid, long)>();
        var ids = new List<Guid>(completions.Count);
        var tokens = new List<long>(completions.Count);
        var results = new List<byte[]?>(completions.Count);
        foreach (var completion in completions)
        {
            if (!seen.Add((completion.Lease.TaskId, completion.Lease.LeaseToken))) continue;
            ids.Add(completion.Lease.TaskId);
            tokens.Add(completion.Lease.LeaseToken);
            results.Add(completion.Result);
        }
        return _db.RunAsync("complete many",
            (Self: this, Completions: completions, Ids: ids.ToArray(), Tokens: tokens.ToArray(), Results: results.ToArray()),
            static async (c, s, ct) =>
            {
                var accepted = new HashSet<Guid>();
                using (var cmd = new NpgsqlCommand(s.Self._sql.CompleteMany, c))
                {
                    PostgresExecutor.Add(cmd, s.Ids);
                    PostgresExecutor.Add(cmd, s.Tokens);
                    cmd.Parameters.Add(new NpgsqlParameter { Value = s.Results, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
                    await s.Self._db.PrepareAsync(cmd, ct).ConfigureAwait(false);
                    var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
                    await using (reader.ConfigureAwait(false))
                    {
                        while (await reader.ReadAsync(ct).ConfigureAwait(false)) accepted.Add(reader.GetGuid(0));
                    }
                }
                // Each id can be accepted for at most one token (the current one), so "accepted id" identifies the
                // accepted (id, token) pair; every other entry, in request order, was lost.
                var lost = new List<Guid>();
                var credited = new HashSet<Guid>();
                foreach (var completion in s.Completions)
                {
                    var id = completion.Lease.TaskId;
                    if (accepted.Contains(id) && credited.Add(id)) continue;
                    lost.Add(id);
                }
                return (IReadOnlyList<Guid>)lost;
            }, cancellationToken);
    }

    /// <summary>One statement (<see cref="PostgresQueries.CompleteAndLease"/>): the completion and the lease, one round trip.</summary>
    public Task<CompleteAndLeaseResult> CompleteAndLeaseAsync(TaskCompletion completion, string workerId, int maxCount, TimeSpan leaseDuration,
        CancellationToken cancellationToken) =>
        _db.RunAsync("complete and lease", (Self: this, Completion: completion, WorkerId: workerId, MaxCount: maxCount, Duration: leaseDuration),
            static async (c, s, ct) =>
            {
                var lease = s.Completion.Lease;
                var leases = new List<TaskLease>(s.MaxCount);
                long completed = 0;
                using (var cmd = new NpgsqlCommand(s.Self._sql.CompleteAndLease, c))
                {
                    PostgresExecutor.Add(cmd, lease.Queue);
                    PostgresExecutor.Add(cmd, s.MaxCount);
                    PostgresExecutor.Add(cmd, s.WorkerId);
                    PostgresExecutor.Add(cmd, s.Duration);
                    PostgresExecutor.Add(cmd, lease.TaskId);
                    PostgresExecutor.Add(cmd, lease.LeaseToken);
                    cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)s.Completion.Result ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bytea });
                    await s.Self._db.PrepareAsync(cmd, ct).ConfigureAwait(false);
                    var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
                    await using (reader.ConfigureAwait(false))
                    {
                        while (await reader.ReadAsync(ct).ConfigureAwait(false))
                        {
                            completed = reader.GetInt64(CompleteAndLeaseCountColumn);
                            // The LEFT JOIN's row without a lease (nothing was leased) carries only the count.
                            if (!reader.IsDBNull(0)) leases.Add(PostgresRows.ReadLease(reader, lease.Queue, s.WorkerId));
                        }
                    }
                }
                // RETURNING order is unspecified: restore the lease order.
                leases.Sort(CompareLeaseOrder);
                return new CompleteAndLeaseResult(completed > 0, leases);
            }, cancellationToken);

    // The completion count follows the 12 lease columns PostgresRows.ReadLease reads.
    private const int CompleteAndLeaseCountColumn = 12;

    public Task<FailResult> FailAsync(TaskLease lease, string message, FailOptions options, CancellationToken cancellationToken)
    {
        // The delay is computed here (policy precedence and jitter are the core's); whether to retry at all is
        // decided by the statement against the row's own attempt counters.
        var delay = options.ResolveDelay(lease, _defaultRetryPolicy);
        return _db.RunAsync("fail", (Self: this, Lease: lease, Message: message, Retryable: options.Retryable, Delay: delay),
            static async (c, s, ct) =>
            {
                using (var cmd = new NpgsqlCommand(s.Self._sql.Fail, c))
                {
                    PostgresExecutor.Add(cmd, s.Lease.TaskId);
                    PostgresExecutor.Add(cmd, s.Lease.LeaseToken);
                    PostgresExecutor.Add(cmd, s.Retryable);
                    PostgresExecutor.Add(cmd, s.Delay);
                    PostgresExecutor.Add(cmd, s.Message);
                    PostgresExecutor.Add(cmd, s.Self._sql.Channel);
                    await s.Self._db.PrepareAsync(cmd, ct).ConfigureAwait(false);
                    var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
                    await using (reader.ConfigureAwait(false))
                    {
                        if (await reader.ReadAsync(ct).ConfigureAwait(false))
                        {
                            var state = (TaskState)reader.GetInt16(0);
                            return new FailResult(state, state == TaskState.Pending ? reader.GetFieldValue<DateTimeOffset>(1) : null);
                        }
                    }
                }
                throw await s.Self.LeaseLostAsync(c, s.Lease, ct).ConfigureAwait(false);
            }, cancellationToken);
    }

    private async Task<LeaseLostException> LeaseLostAsync(NpgsqlConnection connection, TaskLease lease, CancellationToken cancellationToken)
    {
        using var cmd = new NpgsqlCommand(_sql.StateOf, connection);
        PostgresExecutor.Add(cmd, lease.TaskId);
        var state = await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return new LeaseLostException(lease.TaskId, lease.LeaseToken, state is short s ? (TaskState)s : null);
    }

    public Task<IReadOnlyList<ReclaimedTask>> ReclaimExpiredAsync(CancellationToken cancellationToken) =>
        _db.RunAsync("reclaim", this, static async (c, self, ct) =>
        {
            using var cmd = new NpgsqlCommand(self._sql.ReclaimExpired, c);
            PostgresExecutor.Add(cmd, PostgresQueries.SweepBatchSize);
            PostgresExecutor.Add(cmd, self._sql.Channel);
            var reclaimed = new List<ReclaimedTask>();
            // Each batch commits on its own: a long sweep never holds many row locks for long.
            while (await PostgresRows.ReadAllAsync(cmd, reclaimed, PostgresRows.ReadReclaimed, ct).ConfigureAwait(false) == PostgresQueries.SweepBatchSize)
            {
            }
            // Scheduled tasks that came due move into the lease index, so a lease's second head (PostgresQueries.Lease,
            // `came_due`) reads only those of the last sweep interval.
            await PromoteDueAsync(c, self._sql, ct).ConfigureAwait(false);
            // The sweep is the store's periodic upkeep: it also folds closed connections' counter rows, at most once per
            // FoldCountsInterval per store, the first time one interval after the store was created (whichever caller
            // wins the exchange runs it).
            var now = Environment.TickCount64;
            var due = Volatile.Read(ref self._nextFoldAt);
            if (now >= due && Interlocked.CompareExchange(ref self._nextFoldAt, now + (long)PostgresQueries.FoldCountsInterval.TotalMilliseconds, due) == due)
                await FoldCountsAsync(c, self._sql, ct).ConfigureAwait(false);
            return (IReadOnlyList<ReclaimedTask>)reclaimed;
        }, cancellationToken);

    /// <summary>The sweep's upkeep: folds the task_counts rows of closed connections into slot 0, makes the coming days'
    /// history partitions and moves stray finished rows (tests call it directly).</summary>
    public Task FoldCountsAsync(CancellationToken cancellationToken) =>
        _db.RunAsync("fold counts", this, static async (c, self, ct) =>
        {
            await FoldCountsAsync(c, self._sql, ct).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    private static async Task PromoteDueAsync(NpgsqlConnection connection, PostgresQueries sql, CancellationToken cancellationToken)
    {
        using var promote = new NpgsqlCommand(sql.PromoteDue, connection);
        PostgresExecutor.Add(promote, PostgresQueries.SweepBatchSize);
        while (Convert.ToInt64(await promote.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture) == PostgresQueries.SweepBatchSize)
        {
        }
    }

    private static async Task FoldCountsAsync(NpgsqlConnection connection, PostgresQueries sql, CancellationToken cancellationToken)
    {
        using (var fold = new NpgsqlCommand(sql.FoldCounts, connection))
        {
            PostgresExecutor.Add(fold, PostgresQueries.FoldCountsIdle);
            await fold.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        // History partitions for today and HistoryDaysAhead days on, so a finishing task finds its day's partition
        // (cheap when they exist: a catalog probe per day); then any rows an older store version finished in tasks.
        using (var add = new NpgsqlCommand(sql.AddHistoryPartitions, connection))
        {
            PostgresExecutor.Add(add, PostgresQueries.HistoryDaysAhead);
            await add.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        using var stray = new NpgsqlCommand(sql.MoveStrayFinished, connection);
        PostgresExecutor.Add(stray, PostgresQueries.SweepBatchSize);
        while (await stray.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == PostgresQueries.SweepBatchSize)
        {
        }
    }

    public Task<ReclaimedTask?> ExpireLeaseAsync(Guid taskId, long leaseToken, CancellationToken cancellationToken) =>
        _db.RunAsync("expire lease", (Self: this, TaskId: taskId, LeaseToken: leaseToken), static async (c, s, ct) =>
        {
            using var cmd = new NpgsqlCommand(s.Self._sql.ExpireLease, c);
            PostgresExecutor.Add(cmd, s.TaskId);
            PostgresExecutor.Add(cmd, s.LeaseToken);
            PostgresExecutor.Add(cmd, s.Self._sql.Channel);
            var found = new List<ReclaimedTask>(1);
            await PostgresRows.ReadAllAsync(cmd, found, PostgresRows.ReadReclaimed, ct).ConfigureAwait(false);
            return found.Count == 0 ? null : found[0];
        }, cancellationToken);
}
