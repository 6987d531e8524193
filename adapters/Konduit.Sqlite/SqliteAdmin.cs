using System.Text;
using Microsoft.Data.Sqlite;

namespace Konduit.Sqlite;

/// <summary>Operator and inspection calls: cancel, redrive (one or by filter), pause, get, query, stats, purge, probe.</summary>
internal sealed class SqliteAdmin(SqliteDatabase db, TimeProvider time)
{
    public Task<bool> CancelAsync(Guid taskId, CancellationToken cancellationToken) =>
        db.WriteAsync("cancel", (Id: taskId, Now: time.GetUtcNow()), static async (c, tx, s, ct) =>
        {
            var state = await StateAsync(c, tx, s.Id, ct).ConfigureAwait(false) ?? throw new TaskNotFoundException(s.Id);
            if (state.IsTerminal()) return false;
            await ChangeOneAsync(c, tx, SqliteQueries.Cancel, s.Id, s.Now, ct).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    public Task RedriveAsync(Guid taskId, CancellationToken cancellationToken) =>
        db.WriteAsync("redrive", (Id: taskId, Now: time.GetUtcNow()), static async (c, tx, s, ct) =>
        {
            var state = await StateAsync(c, tx, s.Id, ct).ConfigureAwait(false) ?? throw new TaskNotFoundException(s.Id);
            if (state is not (TaskState.Failed or TaskState.Canceled))
                throw new InvalidTaskStateException(s.Id, state, "retry", TaskStateExtensions.RedrivableStates);
            await ChangeOneAsync(c, tx, SqliteQueries.Redrive, s.Id, s.Now, ct).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    /// <summary>Bulk cancel or redrive (<paramref name="prefix"/>) of the newest matching tasks in <paramref name="states"/>.</summary>
    public async Task<IReadOnlyList<Guid>> BulkAsync(string prefix, TaskQuery filter, IReadOnlyCollection<TaskState> states, int maxCount, CancellationToken cancellationToken)
    {
        if (states.Count == 0) return [];
        return await db.WriteAsync("bulk", (Prefix: prefix, Filter: filter, States: states, Limit: maxCount, Now: time.GetUtcNow()), static async (c, tx, s, ct) =>
        {
            var sql = new StringBuilder(s.Prefix);
            using var cmd = SqliteRows.Command(c, tx, "");
            SqliteRows.Add(cmd, "@states", SqliteRows.States(s.States));
            AddFilter(sql, cmd, s.Filter with { States = null });
            cmd.CommandText = sql.Append(SqliteQueries.BulkSuffix).ToString();
            SqliteRows.Add(cmd, "@limit", s.Limit);
            SqliteRows.Add(cmd, "@now", SqliteRows.Time(s.Now));
            var ids = new List<Guid>();
            using (var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false)) ids.Add(SqliteRows.ReadId(reader, 0));
            }
            ids.Sort(static (x, y) => y.CompareTo(x)); // newest first, as they were picked
            return (IReadOnlyList<Guid>)ids;
        }, cancellationToken).ConfigureAwait(false);
    }

    public Task SetPausedAsync(string queue, bool paused, CancellationToken cancellationToken) =>
        db.WriteAsync(paused ? "pause" : "resume", (Queue: queue, Paused: paused, Now: time.GetUtcNow()), static async (c, tx, s, ct) =>
        {
            using var cmd = SqliteRows.Command(c, tx, s.Paused ? SqliteQueries.PauseQueue : SqliteQueries.ResumeQueue);
            SqliteRows.Add(cmd, "@queue", s.Queue);
            if (s.Paused) SqliteRows.Add(cmd, "@now", SqliteRows.Time(s.Now));
            return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, cancellationToken);

    public Task<IReadOnlyCollection<string>> GetPausedQueuesAsync(CancellationToken cancellationToken) =>
        db.ReadAsync("paused queues", 0, static async (c, _, ct) =>
        {
            using var cmd = SqliteRows.Command(c, null, SqliteQueries.PausedQueues);
            var queues = new List<string>();
            using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false)) queues.Add(reader.GetString(0));
            return (IReadOnlyCollection<string>)queues;
        }, cancellationToken);

    public Task<TaskSnapshot> GetAsync(Guid taskId, CancellationToken cancellationToken) =>
        db.ReadAsync("get", taskId, static async (c, id, ct) =>
        {
            using var cmd = SqliteRows.Command(c, null, SqliteQueries.Get);
            SqliteRows.Add(cmd, "@id", SqliteRows.Id(id));
            using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            return await reader.ReadAsync(ct).ConfigureAwait(false) ? SqliteRows.ReadSnapshot(reader) : throw new TaskNotFoundException(id);
        }, cancellationToken);

    public Task<TaskPage> QueryAsync(TaskQuery filter, PageRequest page, CancellationToken cancellationToken) =>
        db.ReadAsync("query", (Filter: filter, Page: page), static async (c, s, ct) =>
        {
            var sql = new StringBuilder(SqliteQueries.QueryPrefix);
            using var cmd = SqliteRows.Command(c, null, "");
            AddFilter(sql, cmd, s.Filter);
            if (s.Page.After is { } after)
            {
                sql.Append(SqliteQueries.QueryAfter);
                SqliteRows.Add(cmd, "@after", SqliteRows.Id(after));
            }
            cmd.CommandText = sql.Append(SqliteQueries.QuerySuffix).ToString();
            SqliteRows.Add(cmd, "@limit", s.Page.Limit + 1);
            var items = new List<TaskSnapshot>();
            using (var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false)) items.Add(SqliteRows.ReadSnapshot(reader));
            }
            var hasMore = items.Count > s.Page.Limit;
            if (hasMore) items.RemoveAt(items.Count - 1);
            return new TaskPage(items, hasMore ? items[^1].Id : null);
        }, cancellationToken);

    public Task<IReadOnlyList<QueueStats>> GetStatsAsync(CancellationToken cancellationToken) =>
        db.ReadAsync("stats", time.GetUtcNow(), static async (c, now, ct) =>
        {
            using var cmd = SqliteRows.Command(c, null, SqliteQueries.Stats);
            SqliteRows.Add(cmd, "@now", SqliteRows.Time(now));
            var stats = new List<QueueStats>();
            using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                var pending = reader.GetInt64(1);
                var due = reader.GetInt64(6);
                stats.Add(new QueueStats(reader.GetString(0), pending, reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4), reader.GetInt64(5))
                {
                    PendingDue = due,
                    PendingScheduled = pending - due,
                    OldestDueAt = SqliteRows.ReadOptionalTime(reader, 7),
                });
            }
            return (IReadOnlyList<QueueStats>)stats;
        }, cancellationToken);

    // Batches until one comes back short, each a transaction of its own (the write lock is held briefly).
    public async Task<IReadOnlyList<PurgedTask>> PurgeAsync(TimeSpan olderThan, IReadOnlyCollection<TaskState> states, string? queue, CancellationToken cancellationToken)
    {
        var cutoff = time.GetUtcNow() - olderThan;
        var purged = new List<PurgedTask>();
        while (true)
        {
            var batch = await db.WriteAsync("purge", (States: SqliteRows.States(states), Cutoff: cutoff, Queue: queue), static async (c, tx, s, ct) =>
            {
                using var cmd = SqliteRows.Command(c, tx, SqliteQueries.Purge);
                SqliteRows.Add(cmd, "@states", s.States);
                SqliteRows.Add(cmd, "@cutoff", SqliteRows.Time(s.Cutoff));
                SqliteRows.Add(cmd, "@queue", s.Queue);
                SqliteRows.Add(cmd, "@limit", SqliteQueries.SweepBatchSize);
                var rows = new List<PurgedTask>();
                using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                    rows.Add(new PurgedTask(SqliteRows.ReadId(reader, 0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), (TaskState)reader.GetInt32(3)));
                return rows;
            }, cancellationToken).ConfigureAwait(false);
            purged.AddRange(batch);
            if (batch.Count < SqliteQueries.SweepBatchSize) return purged;
        }
    }

    public Task<string?> ProbeAsync(CancellationToken cancellationToken) =>
        db.ReadAsync("probe", 0, static async (c, _, ct) =>
        {
            using var cmd = SqliteRows.Command(c, null, SqliteQueries.Probe);
            await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false);
            return (string?)null;
        }, cancellationToken);

    // One constant fragment and one named parameter per filter field that is set.
    private static void AddFilter(StringBuilder sql, SqliteCommand cmd, TaskQuery filter)
    {
        void Where(string fragment, string name, object value)
        {
            sql.Append(fragment);
            SqliteRows.Add(cmd, name, value);
        }
        if (filter.Queue is { } queue) Where(SqliteQueries.QueryByQueue, "@queue", queue);
        if (filter.States is { Count: > 0 } states) Where(SqliteQueries.QueryByStates, "@states", SqliteRows.States(states));
        if (filter.Tenant is { } tenant) Where(SqliteQueries.QueryByTenant, "@tenant", tenant);
        if (filter.EnqueuedFrom is { } from) Where(SqliteQueries.QueryCreatedFrom, "@created_from", SqliteRows.Time(from));
        if (filter.EnqueuedTo is { } to) Where(SqliteQueries.QueryCreatedTo, "@created_to", SqliteRows.Time(to));
        if (filter.FinishedFrom is { } finishedFrom) Where(SqliteQueries.QueryFinishedFrom, "@finished_from", SqliteRows.Time(finishedFrom));
        if (filter.FinishedTo is { } finishedTo) Where(SqliteQueries.QueryFinishedTo, "@finished_to", SqliteRows.Time(finishedTo));
    }

    private static async Task<TaskState?> StateAsync(SqliteConnection c, SqliteTransaction tx, Guid id, CancellationToken ct)
    {
        using var cmd = SqliteRows.Command(c, tx, SqliteQueries.StateOf);
        SqliteRows.Add(cmd, "@id", SqliteRows.Id(id));
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is long state ? (TaskState)state : null;
    }

    private static async Task ChangeOneAsync(SqliteConnection c, SqliteTransaction tx, string sql, Guid id, DateTimeOffset now, CancellationToken ct)
    {
        using var cmd = SqliteRows.Command(c, tx, sql);
        SqliteRows.Add(cmd, "@id", SqliteRows.Id(id));
        SqliteRows.Add(cmd, "@now", SqliteRows.Time(now));
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }
}
