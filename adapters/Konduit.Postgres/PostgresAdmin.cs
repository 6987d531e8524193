using System.Text;
using Npgsql;
using NpgsqlTypes;

namespace Konduit.Postgres;

/// <summary>
/// Operator and inspection calls: cancel, redrive, get, query, stats, purge, and the due-id read a dispatcher
/// rebuilds its hints from.
/// </summary>
internal sealed class PostgresAdmin
{
    private static readonly TaskState[] RedriveStates = [TaskState.Failed, TaskState.Canceled];

    private readonly PostgresExecutor _db;
    private readonly PostgresQueries _sql;

    public PostgresAdmin(PostgresExecutor db, PostgresQueries sql)
    {
        _db = db;
        _sql = sql;
    }

    public Task<bool> CancelAsync(Guid taskId, CancellationToken cancellationToken) =>
        _db.RunAsync("cancel", (Self: this, TaskId: taskId), static async (c, s, ct) =>
        {
            using var cmd = new NpgsqlCommand(s.Self._sql.Cancel, c);
            PostgresExecutor.Add(cmd, s.TaskId);
            while (true)
            {
                var (changed, state) = await PostgresRows.ReadCountAndStateAsync(cmd, ct).ConfigureAwait(false);
                if (changed > 0) return true;
                if (state is null) throw new TaskNotFoundException(s.TaskId);
                if (state.Value.IsTerminal()) return false;
                // Seen non-terminal yet not updated: a concurrent change finished it in between. Read again.
            }
        }, cancellationToken);

    public Task RedriveAsync(Guid taskId, CancellationToken cancellationToken) =>
        _db.RunAsync("redrive", (Self: this, TaskId: taskId), static async (c, s, ct) =>
        {
            using var cmd = new NpgsqlCommand(s.Self._sql.Retry, c);
            PostgresExecutor.Add(cmd, s.TaskId);
            PostgresExecutor.Add(cmd, s.Self._sql.Channel);
            while (true)
            {
                var (changed, state) = await PostgresRows.ReadCountAndStateAsync(cmd, ct).ConfigureAwait(false);
                if (changed > 0) return true;
                if (state is null) throw new TaskNotFoundException(s.TaskId);
                if (state.Value is not (TaskState.Failed or TaskState.Canceled))
                    throw new InvalidTaskStateException(s.TaskId, state.Value, "retry", RedriveStates);
                // Seen redrivable yet not updated: a concurrent redrive won in between. Read again.
            }
        }, cancellationToken);

    public Task<TaskSnapshot> GetAsync(Guid taskId, CancellationToken cancellationToken) =>
        _db.RunAsync("get", (Self: this, TaskId: taskId), static async (c, s, ct) =>
        {
            using var cmd = new NpgsqlCommand(s.Self._sql.Get, c);
            PostgresExecutor.Add(cmd, s.TaskId);
            var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                if (!await reader.ReadAsync(ct).ConfigureAwait(false)) throw new TaskNotFoundException(s.TaskId);
                return PostgresRows.ReadSnapshot(reader);
            }
        }, cancellationToken);

    public Task<TaskPage> QueryAsync(TaskQuery filter, PageRequest page, CancellationToken cancellationToken) =>
        _db.RunAsync("query", (Self: this, Filter: filter, Page: page), static async (c, s, ct) =>
        {
            using var cmd = BuildQuery(s.Self._sql, s.Filter, s.Page);
            cmd.Connection = c;
            var page = s.Page;
            var items = new List<TaskSnapshot>(Math.Min(page.Limit + 1, 128));
            await PostgresRows.ReadAllAsync(cmd, items, PostgresRows.ReadSnapshot, ct).ConfigureAwait(false);
            if (items.Count <= page.Limit) return new TaskPage(items, null);
            items.RemoveAt(items.Count - 1);
            return new TaskPage(items, items[^1].Id);
        }, cancellationToken);

    /// <summary>
    /// The query statement for <paramref name="filter"/> and <paramref name="page"/>, without a connection (the plan
    /// tests EXPLAIN exactly this). The WHERE clause is composed of constant fragments only; values travel as parameters.
    /// </summary>
    internal static NpgsqlCommand BuildQuery(PostgresQueries sql, TaskQuery filter, PageRequest page)
    {
        var cmd = new NpgsqlCommand();
        var where = new StringBuilder();
        AppendFilter(where, cmd, filter, filter.States);
        if (page.After is { } after)
        {
            where.Append(PostgresQueries.QueryAfter);
            cmd.Parameters.Add(new NpgsqlParameter<Guid>("after", after));
        }
        cmd.Parameters.Add(new NpgsqlParameter<int>("limit", page.Limit + 1));
        // Live tasks are in tasks, terminal ones in task_history (migration 6): read only the tables the states can be
        // in. A finish-time bound excludes live tasks, which have no finish time.
        var states = filter.States;
        var live = (states is not { Count: > 0 } || states.Any(static s => !s.IsTerminal()))
                   && filter.FinishedFrom is null && filter.FinishedTo is null;
        var history = states is not { Count: > 0 } || states.Any(static s => s.IsTerminal());
        var text = new StringBuilder();
        if (live && history)
        {
            // Each half ordered and limited on its own index, then merged: the page is the newest of both.
            text.Append("SELECT * FROM ((").Append(sql.QueryLivePrefix).Append(where).Append(PostgresQueries.QuerySuffix)
                .Append(") UNION ALL (").Append(sql.QueryHistoryPrefix).Append(where).Append(PostgresQueries.QuerySuffix)
                .Append(")) q").Append(PostgresQueries.QuerySuffix);
        }
        else
        {
            text.Append(history ? sql.QueryHistoryPrefix : sql.QueryLivePrefix).Append(where).Append(PostgresQueries.QuerySuffix);
        }
        cmd.CommandText = text.ToString();
        return cmd;
    }

    /// <summary>
    /// The bulk cancel or redrive statement: <paramref name="prefix"/> (which opens the row pick), the filter's
    /// fragments with <paramref name="states"/> in place of the filter's own, and <paramref name="suffix"/>.
    /// </summary>
    internal static NpgsqlCommand BuildBulk(string prefix, string suffix, TaskQuery filter, IReadOnlyCollection<TaskState> states, int maxCount, string? channel)
    {
        var cmd = new NpgsqlCommand();
        var text = new StringBuilder(prefix);
        AppendFilter(text, cmd, filter, states);
        text.Append(suffix);
        cmd.Parameters.Add(new NpgsqlParameter<int>("limit", maxCount));
        if (channel is not null) cmd.Parameters.Add(new NpgsqlParameter<string>("channel", channel));
        cmd.CommandText = text.ToString();
        return cmd;
    }

    // The WHERE fragments of a filter: constants only; values travel as parameters.
    private static void AppendFilter(StringBuilder text, NpgsqlCommand cmd, TaskQuery filter, IReadOnlyCollection<TaskState>? states)
    {
        if (filter.Queue is not null)
        {
            text.Append(PostgresQueries.QueryByQueue);
            cmd.Parameters.Add(new NpgsqlParameter<string>("queue", filter.Queue));
        }
        if (states is { Count: > 0 })
        {
            text.Append(PostgresQueries.QueryByStates);
            cmd.Parameters.Add(new NpgsqlParameter<short[]>("states", states.Select(static s => (short)s).ToArray()));
        }
        if (filter.Tenant is not null)
        {
            text.Append(PostgresQueries.QueryByTenant);
            cmd.Parameters.Add(new NpgsqlParameter<string>("tenant", filter.Tenant));
        }
        if (filter.EnqueuedFrom is { } from)
        {
            text.Append(PostgresQueries.QueryCreatedFrom);
            cmd.Parameters.Add(new NpgsqlParameter<DateTimeOffset>("created_from", from.ToUniversalTime()));
        }
        if (filter.EnqueuedTo is { } to)
        {
            text.Append(PostgresQueries.QueryCreatedTo);
            cmd.Parameters.Add(new NpgsqlParameter<DateTimeOffset>("created_to", to.ToUniversalTime()));
        }
        if (filter.FinishedFrom is { } finishedFrom)
        {
            text.Append(PostgresQueries.QueryFinishedFrom);
            cmd.Parameters.Add(new NpgsqlParameter<DateTimeOffset>("finished_from", finishedFrom.ToUniversalTime()));
        }
        if (filter.FinishedTo is { } finishedTo)
        {
            text.Append(PostgresQueries.QueryFinishedTo);
            cmd.Parameters.Add(new NpgsqlParameter<DateTimeOffset>("finished_to", finishedTo.ToUniversalTime()));
        }
    }

    public Task<IReadOnlyList<Guid>> CancelManyAsync(TaskQuery filter, IReadOnlyCollection<TaskState> states, int maxCount, CancellationToken cancellationToken) =>
        BulkAsync("cancel many", _sql.CancelManyPrefix, _sql.CancelManySuffix, null, filter, states, maxCount, cancellationToken);

    public Task<IReadOnlyList<Guid>> RedriveManyAsync(TaskQuery filter, IReadOnlyCollection<TaskState> states, int maxCount, CancellationToken cancellationToken) =>
        BulkAsync("redrive many", _sql.RedriveManyPrefix, _sql.RedriveManySuffix, _sql.Channel, filter, states, maxCount, cancellationToken);

    private Task<IReadOnlyList<Guid>> BulkAsync(string operation, string prefix, string suffix, string? channel, TaskQuery filter, IReadOnlyCollection<TaskState> states,
        int maxCount, CancellationToken cancellationToken)
    {
        if (states.Count == 0) return Task.FromResult<IReadOnlyList<Guid>>([]);
        return _db.RunAsync(operation, (Cmd: BuildBulk(prefix, suffix, filter, states, maxCount, channel), Max: maxCount), static async (c, s, ct) =>
        {
            using var cmd = s.Cmd;
            cmd.Connection = c;
            var ids = new List<Guid>(Math.Min(s.Max, 128));
            await PostgresRows.ReadAllAsync(cmd, ids, static r => r.GetGuid(0), ct).ConfigureAwait(false);
            return (IReadOnlyList<Guid>)ids;
        }, cancellationToken);
    }

    public Task PauseQueueAsync(string queue, CancellationToken cancellationToken) =>
        _db.RunAsync("pause queue", (Self: this, Queue: queue), static async (c, s, ct) =>
        {
            using var cmd = new NpgsqlCommand(s.Self._sql.PauseQueue, c);
            PostgresExecutor.Add(cmd, s.Queue);
            return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, cancellationToken);

    public Task ResumeQueueAsync(string queue, CancellationToken cancellationToken) =>
        _db.RunAsync("resume queue", (Self: this, Queue: queue), static async (c, s, ct) =>
        {
            using var cmd = new NpgsqlCommand(s.Self._sql.ResumeQueue, c);
            PostgresExecutor.Add(cmd, s.Queue);
            PostgresExecutor.Add(cmd, s.Self._sql.Channel);
            return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false);
        }, cancellationToken);

    public Task<IReadOnlyCollection<string>> GetPausedQueuesAsync(CancellationToken cancellationToken) =>
        _db.RunAsync("paused queues", this, static async (c, self, ct) =>
        {
            using var cmd = new NpgsqlCommand(self._sql.PausedQueues, c);
            var queues = new List<string>();
            await PostgresRows.ReadAllAsync(cmd, queues, static r => r.GetString(0), ct).ConfigureAwait(false);
            return (IReadOnlyCollection<string>)queues;
        }, cancellationToken);

    public Task<IReadOnlyList<QueueStats>> GetStatsAsync(CancellationToken cancellationToken) =>
        _db.RunAsync("stats", this, static async (c, self, ct) =>
        {
            using var cmd = new NpgsqlCommand(self._sql.Stats, c);
            var stats = new List<QueueStats>();
            await PostgresRows.ReadAllAsync(cmd, stats, PostgresRows.ReadStats, ct).ConfigureAwait(false);
            return (IReadOnlyList<QueueStats>)stats;
        }, cancellationToken);

    public Task<IReadOnlyList<PurgedTask>> PurgeAsync(TimeSpan olderThan, IReadOnlyCollection<TaskState> states, string? queue, CancellationToken cancellationToken) =>
        PurgeBatchesAsync("purge", _sql.Purge, olderThan, states, queue, cancellationToken);

    private Task<IReadOnlyList<PurgedTask>> PurgeBatchesAsync(string operation, string statement, TimeSpan olderThan, IReadOnlyCollection<TaskState> states,
        string? queue, CancellationToken cancellationToken) =>
        _db.RunAsync(operation, (Statement: statement, OlderThan: olderThan, States: states, Queue: queue), static async (c, s, ct) =>
        {
            using var cmd = new NpgsqlCommand(s.Statement, c);
            PostgresExecutor.Add(cmd, s.States.Select(static state => (short)state).ToArray());
            PostgresExecutor.Add(cmd, s.OlderThan);
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)s.Queue ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
            PostgresExecutor.Add(cmd, PostgresQueries.SweepBatchSize);
            var purged = new List<PurgedTask>();
            // Batches commit one by one, so a large purge neither bloats one transaction nor blocks for long.
            while (await PostgresRows.ReadAllAsync(cmd, purged, PostgresRows.ReadPurged, ct).ConfigureAwait(false) == PostgresQueries.SweepBatchSize)
            {
            }
            return (IReadOnlyList<PurgedTask>)purged;
        }, cancellationToken);

    /// <summary>
    /// Retention by partition: drops every day partition of task_history that ended <paramref name="retention"/> ago or
    /// earlier (its keys freed and counts subtracted in the same transaction), then deletes the default partition's rows
    /// older than that. Rows of the partition that holds the cutoff stay until their whole day is past it.
    /// </summary>
    public async Task<IReadOnlyList<PurgedTask>> ApplyRetentionAsync(TimeSpan retention, CancellationToken cancellationToken)
    {
        var dropped = await _db.RunAsync("drop history partitions", (Self: this, Retention: retention), static async (c, s, ct) =>
        {
            using var cmd = new NpgsqlCommand(s.Self._sql.DropHistoryPartitions, c);
            PostgresExecutor.Add(cmd, s.Retention);
            var rows = new List<PurgedTask>();
            try
            {
                await PostgresRows.ReadAllAsync(cmd, rows, PostgresRows.ReadPurged, ct).ConfigureAwait(false);
            }
            catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.LockNotAvailable or PostgresErrorCodes.DeadlockDetected)
            {
                // The drop gave up on task_history's lock (busy completions) and rolled back whole: nothing was dropped,
                // freed or uncounted. The next sweep tries again.
                rows.Clear();
            }
            return rows;
        }, cancellationToken).ConfigureAwait(false);
        var stray = await PurgeBatchesAsync("purge default partition", _sql.PurgeDefaultPartition, retention, TerminalStates, null, cancellationToken).ConfigureAwait(false);
        if (stray.Count == 0) return dropped;
        dropped.AddRange(stray);
        return dropped;
    }

    private static readonly TaskState[] TerminalStates = [TaskState.Succeeded, TaskState.Failed, TaskState.Canceled];

    public Task<IReadOnlyList<Guid>> ReadDueIdsAsync(string queue, int limit, CancellationToken cancellationToken) =>
        _db.RunAsync("read due ids", (Self: this, Queue: queue, Limit: limit), static async (c, s, ct) =>
        {
            using var cmd = new NpgsqlCommand(s.Self._sql.DueIds, c);
            PostgresExecutor.Add(cmd, s.Queue);
            PostgresExecutor.Add(cmd, s.Limit);
            var ids = new List<Guid>();
            await PostgresRows.ReadAllAsync(cmd, ids, static r => r.GetGuid(0), ct).ConfigureAwait(false);
            return (IReadOnlyList<Guid>)ids;
        }, cancellationToken);
}
