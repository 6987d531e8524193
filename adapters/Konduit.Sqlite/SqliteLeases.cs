using Microsoft.Data.Sqlite;

namespace Konduit.Sqlite;

/// <summary>The worker's calls: lease, heartbeat, complete, fail, and the sweeper's reclaim and expire.</summary>
internal sealed class SqliteLeases(SqliteDatabase db, TimeProvider time, RetryPolicy defaultRetryPolicy)
{
    private readonly RetryPolicy _defaultRetryPolicy = defaultRetryPolicy;

    public Task<IReadOnlyList<TaskLease>> LeaseAsync(string queue, string workerId, int maxCount, TimeSpan leaseDuration, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        return db.WriteAsync("lease", (Queue: queue, Worker: workerId, Limit: maxCount, Now: now, Expires: now + leaseDuration),
            static async (c, tx, s, ct) =>
            {
                using var cmd = SqliteRows.Command(c, tx, SqliteQueries.Lease);
                SqliteRows.Add(cmd, "@queue", s.Queue);
                SqliteRows.Add(cmd, "@worker", s.Worker);
                SqliteRows.Add(cmd, "@limit", s.Limit);
                SqliteRows.Add(cmd, "@now", SqliteRows.Time(s.Now));
                SqliteRows.Add(cmd, "@expires_at", SqliteRows.Time(s.Expires));
                var leases = new List<TaskLease>();
                using (var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(ct).ConfigureAwait(false)) leases.Add(SqliteRows.ReadLease(reader));
                }
                // RETURNING has no order: put the leases in the contract's lease order.
                leases.Sort(static (x, y) =>
                {
                    var c = y.Priority.CompareTo(x.Priority);
                    if (c != 0) return c;
                    c = x.RunAt.UtcTicks.CompareTo(y.RunAt.UtcTicks);
                    return c != 0 ? c : x.TaskId.CompareTo(y.TaskId);
                });
                return (IReadOnlyList<TaskLease>)leases;
            }, cancellationToken);
    }

    public async Task<TaskLease> HeartbeatAsync(TaskLease lease, TimeSpan extension, CancellationToken cancellationToken)
    {
        var result = await HeartbeatManyAsync([lease], extension, cancellationToken).ConfigureAwait(false);
        if (result.Renewed.Count == 1) return result.Renewed[0];
        throw await LeaseLostAsync(lease, cancellationToken).ConfigureAwait(false);
    }

    public Task<HeartbeatManyResult> HeartbeatManyAsync(IReadOnlyList<TaskLease> leases, TimeSpan extension, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        return db.WriteAsync("heartbeat", (Leases: leases, Now: now, Expires: now + extension), static async (c, tx, s, ct) =>
        {
            var renewed = new List<TaskLease>(s.Leases.Count);
            var lost = new List<Guid>();
            using var cmd = SqliteRows.Command(c, tx, SqliteQueries.Heartbeat);
            foreach (var lease in s.Leases)
            {
                BindLease(cmd, lease, s.Now);
                SqliteRows.Add(cmd, "@expires_at", SqliteRows.Time(s.Expires));
                if (await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 1) renewed.Add(lease with { ExpiresAt = s.Expires });
                else lost.Add(lease.TaskId);
            }
            return new HeartbeatManyResult(renewed, lost);
        }, cancellationToken);
    }

    public async Task CompleteAsync(TaskLease lease, byte[]? result, CancellationToken cancellationToken)
    {
        var lost = await CompleteManyAsync([new TaskCompletion(lease, result)], cancellationToken).ConfigureAwait(false);
        if (lost.Count != 0) throw await LeaseLostAsync(lease, cancellationToken).ConfigureAwait(false);
    }

    // Each completion is judged on its own; a lease listed twice finds the task Succeeded the second time (lost).
    public Task<IReadOnlyList<Guid>> CompleteManyAsync(IReadOnlyList<TaskCompletion> completions, CancellationToken cancellationToken) =>
        db.WriteAsync("complete", (Completions: completions, Now: time.GetUtcNow()), static async (c, tx, s, ct) =>
        {
            var lost = new List<Guid>();
            using var cmd = SqliteRows.Command(c, tx, SqliteQueries.Complete);
            foreach (var (lease, result) in s.Completions)
            {
                BindLease(cmd, lease, s.Now);
                SqliteRows.Add(cmd, "@result", result);
                if (await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) != 1) lost.Add(lease.TaskId);
            }
            return (IReadOnlyList<Guid>)lost;
        }, cancellationToken);

    public async Task<FailResult> FailAsync(TaskLease lease, string message, FailOptions options, CancellationToken cancellationToken)
    {
        var outcome = await db.WriteAsync("fail", (Self: this, Lease: lease, Message: message, Options: options, Now: time.GetUtcNow()),
            static async (c, tx, s, ct) =>
            {
                int attempts, maxAttempts;
                RetryPolicy? policy;
                using (var read = SqliteRows.Command(c, tx, SqliteQueries.FailRead))
                {
                    BindLease(read, s.Lease, s.Now);
                    using var reader = await read.ExecuteReaderAsync(ct).ConfigureAwait(false);
                    if (!await reader.ReadAsync(ct).ConfigureAwait(false)) return (FailResult?)null;
                    attempts = reader.GetInt32(0);
                    maxAttempts = reader.GetInt32(1);
                    policy = SqliteRows.ReadRetryPolicy(reader, 2);
                }
                FailResult result;
                if (s.Options.Retryable && attempts < maxAttempts)
                {
                    // Resolved against the stored task, not whatever attempt or policy the caller's lease object claims.
                    var delay = s.Options.ResolveDelay(s.Lease with { Attempt = attempts, RetryPolicy = policy }, s.Self._defaultRetryPolicy);
                    result = new FailResult(TaskState.Pending, s.Now + delay);
                }
                else
                {
                    result = new FailResult(TaskState.Failed, null);
                }
                using var write = SqliteRows.Command(c, tx, SqliteQueries.FailWrite);
                SqliteRows.Add(write, "@id", SqliteRows.Id(s.Lease.TaskId));
                SqliteRows.Add(write, "@state", (int)result.State);
                SqliteRows.Add(write, "@run_at", result.NextRunAt is { } runAt ? SqliteRows.Time(runAt) : null);
                SqliteRows.Add(write, "@finished_at", result.WillRetry ? null : SqliteRows.Time(s.Now));
                SqliteRows.Add(write, "@message", s.Message);
                SqliteRows.Add(write, "@now", SqliteRows.Time(s.Now));
                await write.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                return result;
            }, cancellationToken).ConfigureAwait(false);
        return outcome ?? throw await LeaseLostAsync(lease, cancellationToken).ConfigureAwait(false);
    }

    // Batches until a batch comes back short: each batch is a transaction of its own, so the write lock is held briefly.
    public async Task<IReadOnlyList<ReclaimedTask>> ReclaimExpiredAsync(CancellationToken cancellationToken)
    {
        var reclaimed = new List<ReclaimedTask>();
        while (true)
        {
            var batch = await db.WriteAsync("reclaim", time.GetUtcNow(), static async (c, tx, now, ct) =>
            {
                using var cmd = SqliteRows.Command(c, tx, SqliteQueries.ReclaimExpired);
                SqliteRows.Add(cmd, "@now", SqliteRows.Time(now));
                SqliteRows.Add(cmd, "@limit", SqliteQueries.SweepBatchSize);
                return await ReadReclaimedAsync(cmd, ct).ConfigureAwait(false);
            }, cancellationToken).ConfigureAwait(false);
            reclaimed.AddRange(batch);
            if (batch.Count < SqliteQueries.SweepBatchSize) return reclaimed;
        }
    }

    public async Task<ReclaimedTask?> ExpireLeaseAsync(Guid taskId, long leaseToken, CancellationToken cancellationToken)
    {
        var expired = await db.WriteAsync("expire lease", (Id: taskId, Token: leaseToken, Now: time.GetUtcNow()), static async (c, tx, s, ct) =>
        {
            using var cmd = SqliteRows.Command(c, tx, SqliteQueries.ExpireLease);
            SqliteRows.Add(cmd, "@id", SqliteRows.Id(s.Id));
            SqliteRows.Add(cmd, "@token", s.Token);
            SqliteRows.Add(cmd, "@now", SqliteRows.Time(s.Now));
            return await ReadReclaimedAsync(cmd, ct).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
        return expired.Count == 0 ? null : expired[0];
    }

    private static async Task<List<ReclaimedTask>> ReadReclaimedAsync(SqliteCommand cmd, CancellationToken ct)
    {
        var rows = new List<ReclaimedTask>();
        using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false)) rows.Add(SqliteRows.ReadReclaimed(reader));
        return rows;
    }

    private static void BindLease(SqliteCommand cmd, TaskLease lease, DateTimeOffset now)
    {
        cmd.Parameters.Clear();
        SqliteRows.Add(cmd, "@id", SqliteRows.Id(lease.TaskId));
        SqliteRows.Add(cmd, "@token", lease.LeaseToken);
        SqliteRows.Add(cmd, "@now", SqliteRows.Time(now));
    }

    // The cold path after a refusal: the task's state now, for the exception's message (null = the task is gone).
    private async Task<LeaseLostException> LeaseLostAsync(TaskLease lease, CancellationToken cancellationToken)
    {
        var state = await db.ReadAsync("state", lease.TaskId, static async (c, id, ct) =>
        {
            using var cmd = SqliteRows.Command(c, null, SqliteQueries.StateOf);
            SqliteRows.Add(cmd, "@id", SqliteRows.Id(id));
            return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is long value ? (TaskState?)value : null;
        }, cancellationToken).ConfigureAwait(false);
        return new LeaseLostException(lease.TaskId, lease.LeaseToken, state);
    }
}
