using Npgsql;

namespace Konduit.Postgres;

/// <summary>
/// Row readers: each reads one statement's column list by ordinal, so a reader and its statement in
/// <see cref="PostgresQueries"/> change together.
/// </summary>
internal static class PostgresRows
{
    /// <summary>One row of <c>SnapshotColumns</c> (<see cref="PostgresQueries.Get"/>, <see cref="PostgresQueries.QueryLivePrefix"/>, <see cref="PostgresQueries.QueryHistoryPrefix"/>).</summary>
    public static TaskSnapshot ReadSnapshot(NpgsqlDataReader r) => new()
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

    /// <summary>One row of the lease update's RETURNING list (<see cref="PostgresQueries.Lease"/>, <see cref="PostgresQueries.LeaseByIds"/>).</summary>
    public static TaskLease ReadLease(NpgsqlDataReader reader, string queue, string workerId) => new()
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

    /// <summary>One row of <see cref="PostgresQueries.ReclaimExpired"/>.</summary>
    public static ReclaimedTask ReadReclaimed(NpgsqlDataReader reader) => new(
        reader.GetGuid(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetInt32(3),
        reader.GetInt64(4), reader.IsDBNull(5) ? null : reader.GetString(5), (TaskState)reader.GetInt16(6));

    /// <summary>One row of <see cref="PostgresQueries.Purge"/>.</summary>
    public static PurgedTask ReadPurged(NpgsqlDataReader reader) => new(
        reader.GetGuid(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), (TaskState)reader.GetInt16(3));

    /// <summary>One row of <see cref="PostgresQueries.Stats"/>.</summary>
    public static QueueStats ReadStats(NpgsqlDataReader reader) => new(
        reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4), reader.GetInt64(5))
    {
        PendingDue = reader.GetInt64(6),
        PendingScheduled = reader.GetInt64(1) - reader.GetInt64(6),
        OldestDueAt = reader.IsDBNull(7) ? null : reader.GetFieldValue<DateTimeOffset>(7),
    };

    /// <summary>The (rows changed, state before) pair of <see cref="PostgresQueries.Cancel"/> and <see cref="PostgresQueries.Retry"/>.</summary>
    public static async Task<(long Changed, TaskState? State)> ReadCountAndStateAsync(NpgsqlCommand cmd, CancellationToken cancellationToken)
    {
        var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            return (reader.GetInt64(0), reader.IsDBNull(1) ? null : (TaskState)reader.GetInt16(1));
        }
    }

    /// <summary>Reads every row of <paramref name="cmd"/> with <paramref name="read"/>, appending to <paramref name="into"/>; returns how many.</summary>
    public static async Task<int> ReadAllAsync<T>(NpgsqlCommand cmd, List<T> into, Func<NpgsqlDataReader, T> read, CancellationToken cancellationToken)
    {
        var before = into.Count;
        var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) into.Add(read(reader));
        }
        return into.Count - before;
    }
}
