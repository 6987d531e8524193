using Npgsql;
using Xunit;

namespace Konduit.Postgres.Tests;

/// <summary>
/// The hot table and the history table (issue 15, migration 6): terminal tasks move to task_history, range-partitioned
/// by UTC day of finish time; the store's own migration and upkeep make the partitions, and retention drops them with
/// their idempotency keys and counts. Each test runs on a private schema, since retention drops partitions store-wide.
/// Every count is read from the server.
/// </summary>
public sealed class PostgresHistoryTests(PostgresStoreFixture fixture) : IClassFixture<PostgresStoreFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(5);

    private async Task<(PostgresTaskStore Store, string Schema)> NewStoreAsync()
    {
        var schema = PostgresStoreFixture.NewSchemaName();
        var store = fixture.CreatePostgresStore(schema);
        await store.MigrateAsync(Ct);
        return (store, schema);
    }

    private Task<long> CountAsync(string schema, string table, string queue) =>
        fixture.ScalarAsync<long>($"SELECT count(*) FROM \"{schema}\".{table} WHERE queue = $1", queue);

    [Fact]
    public async Task Every_way_a_task_ends_moves_it_out_of_the_hot_table_and_redrive_moves_it_back()
    {
        var (store, schema) = await NewStoreAsync();
        try
        {
            const string queue = "history";
            var ids = new List<Guid>();
            for (var i = 0; i < 6; i++)
                ids.Add((await store.EnqueueAsync(new EnqueueRequest(queue, [(byte)i]) { MaxAttempts = 1, Tenant = "acme", IdempotencyKey = "k" + i }, Ct)).TaskId);
            var canceledPending = (await store.EnqueueAsync(new EnqueueRequest(queue, [9]), Ct)).TaskId;
            Assert.True(await store.CancelAsync(canceledPending, Ct));
            var leases = (await store.LeaseAsync(queue, "w", 6, Lease, Ct)).ToDictionary(l => l.TaskId);
            Assert.Equal(6, leases.Count);

            await store.CompleteAsync(leases[ids[0]], [42], Ct);
            Assert.Empty(await store.CompleteManyAsync([new TaskCompletion(leases[ids[1]], [43])], Ct));
            Assert.False((await store.FailAsync(leases[ids[2]], "boom", FailOptions.NonRetryable, Ct)).WillRetry);
            Assert.Equal(TaskState.Failed, (await store.ExpireLeaseAsync(ids[3], leases[ids[3]].LeaseToken, Ct))!.State);
            Assert.True(await store.CancelAsync(ids[4], Ct));
            // ids[5] stays running: the one live task left.

            Assert.Equal(1L, await CountAsync(schema, "tasks", queue));
            Assert.Equal(6L, await CountAsync(schema, "task_history", queue));
            var expected = new Dictionary<Guid, TaskState>
            {
                [ids[0]] = TaskState.Succeeded, [ids[1]] = TaskState.Succeeded, [ids[2]] = TaskState.Failed, [ids[3]] = TaskState.Failed,
                [ids[4]] = TaskState.Canceled, [canceledPending] = TaskState.Canceled, [ids[5]] = TaskState.Running,
            };
            foreach (var (id, state) in expected) Assert.Equal(state, (await store.GetAsync(id, Ct)).State);
            // What the row carried moves with it: the result, the errors, the fencing token, the finish time.
            var completed = await store.GetAsync(ids[0], Ct);
            Assert.Equal([42], completed.Result);
            Assert.Equal(leases[ids[0]].LeaseToken, completed.LeaseToken);
            Assert.NotNull(completed.FinishedAt);
            Assert.Null(completed.LeaseExpiresAt);
            Assert.Equal([43], (await store.GetAsync(ids[1], Ct)).Result);
            Assert.Equal("boom", Assert.Single((await store.GetAsync(ids[2], Ct)).Errors).Message);
            Assert.Equal("lease expired", Assert.Single((await store.GetAsync(ids[3], Ct)).Errors).Message);

            // Queries read both tables: everything, newest first, pages included; and each state from its own table.
            var all = await store.QueryAsync(new TaskQuery { Queue = queue }, new PageRequest(4), Ct);
            var rest = await store.QueryAsync(new TaskQuery { Queue = queue }, new PageRequest(4, all.NextCursor), Ct);
            Assert.Equal(expected.Keys.OrderDescending(), all.Items.Concat(rest.Items).Select(t => t.Id));
            Assert.Null(rest.NextCursor);
            Assert.Equal([ids[2], ids[3]], (await store.QueryAsync(new TaskQuery { Queue = queue, States = [TaskState.Failed] }, null, Ct)).Items.Select(t => t.Id).Order());
            Assert.Equal([ids[5]], (await store.QueryAsync(new TaskQuery { Tenant = "acme", States = [TaskState.Running, TaskState.Pending] }, null, Ct)).Items.Select(t => t.Id));
            var stats = Assert.Single(await store.GetStatsAsync(Ct));
            Assert.Equal((0L, 1L, 2L, 2L, 2L), (stats.Pending, stats.Running, stats.Succeeded, stats.Failed, stats.Canceled));

            // A key of a finished task stays taken.
            var again = await store.EnqueueAsync(new EnqueueRequest(queue, [1]) { IdempotencyKey = "k0" }, Ct);
            Assert.False(again.Created);
            Assert.Equal(ids[0], again.TaskId);

            // Redrive: back to tasks as pending, gone from history, counted out of Failed.
            await store.RedriveAsync(ids[2], Ct);
            Assert.Equal([ids[3]], await store.RedriveManyAsync(new TaskQuery { Queue = queue, States = [TaskState.Failed] }, 10, Ct));
            Assert.Equal(3L, await CountAsync(schema, "tasks", queue));
            Assert.Equal(4L, await CountAsync(schema, "task_history", queue));
            var redriven = await store.GetAsync(ids[2], Ct);
            Assert.Equal((TaskState.Pending, 0, (DateTimeOffset?)null), (redriven.State, redriven.Attempts, redriven.FinishedAt));
            Assert.Equal("boom", Assert.Single(redriven.Errors).Message);
            var again2 = Assert.Single(await store.LeaseAsync(queue, "w", 1, Lease, Ct), l => l.TaskId == ids[2] || l.TaskId == ids[3]);
            Assert.True(again2.LeaseToken > leases[again2.TaskId].LeaseToken, "a redriven task's token goes on from where it was");
            stats = Assert.Single(await store.GetStatsAsync(Ct));
            Assert.Equal((1L, 2L, 2L, 0L, 2L), (stats.Pending, stats.Running, stats.Succeeded, stats.Failed, stats.Canceled));
        }
        finally
        {
            await fixture.DropSchemaAsync(schema);
        }
    }

    [Fact]
    public async Task The_migration_and_the_upkeep_make_a_partition_per_utc_day_ahead()
    {
        var (store, schema) = await NewStoreAsync();
        try
        {
            const string days = """
                SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = to_regclass($1)
                """;
            var today = await fixture.ScalarAsync<DateTime>("SELECT (now() AT TIME ZONE 'UTC')::date::timestamp");
            string Day(int offset) => "task_history_p" + today.AddDays(offset).ToString("yyyyMMdd", System.Globalization.CultureInfo.InvariantCulture);
            var expected = Enumerable.Range(-1, PostgresQueries.HistoryDaysAhead + 2).Select(Day).Append("task_history_default").Order(StringComparer.Ordinal).ToArray();
            Assert.Equal(expected, await fixture.ScalarAsync<string[]>(days, $"\"{schema}\".task_history"));

            // The upkeep keeps HistoryDaysAhead days ahead of the server's today: drop the furthest one, and it is back.
            await fixture.ScalarAsync<object>($"DROP TABLE \"{schema}\".{Day(PostgresQueries.HistoryDaysAhead)}");
            await store.FoldCountsAsync(Ct);
            Assert.Equal(expected, await fixture.ScalarAsync<string[]>(days, $"\"{schema}\".task_history"));
        }
        finally
        {
            await fixture.DropSchemaAsync(schema);
        }
    }

    [Fact]
    public async Task Retention_drops_whole_day_partitions_with_their_keys_and_counts_and_keeps_younger_days()
    {
        var (store, schema) = await NewStoreAsync();
        try
        {
            const string queue = "retention";
            var old = new List<Guid>();
            for (var i = 0; i < 4; i++)
                old.Add((await store.EnqueueAsync(new EnqueueRequest(queue, [(byte)i]) { IdempotencyKey = "old" + i, Tenant = i == 0 ? "acme" : null }, Ct)).TaskId);
            foreach (var lease in await store.LeaseAsync(queue, "w", 4, Lease, Ct)) await store.CompleteAsync(lease, null, Ct);
            var young = (await store.EnqueueAsync(new EnqueueRequest(queue, [7]) { IdempotencyKey = "young" }, Ct)).TaskId;
            Assert.True(await store.CancelAsync(young, Ct));
            var live = (await store.EnqueueAsync(new EnqueueRequest(queue, [8]), Ct)).TaskId;

            // Age the four by 5 days: the update moves them into the partition of that day, which the store's own
            // function makes (as the upkeep does for days ahead). Anything older than a partition lands in the default.
            await fixture.ScalarAsync<object>($"SELECT \"{schema}\".add_history_partitions((now() AT TIME ZONE 'UTC')::date - 6, (now() AT TIME ZONE 'UTC')::date - 2)");
            await fixture.ScalarAsync<object>($"UPDATE \"{schema}\".task_history SET finished_at = finished_at - interval '5 days' WHERE id = ANY($1)", old.ToArray());
            var partitions = $"SELECT count(*) FROM pg_inherits WHERE inhparent = '\"{schema}\".task_history'::regclass";
            var before = await fixture.ScalarAsync<long>(partitions);

            // Three days: the partitions of 6..4 days ago go (their days ended three days ago or earlier), with the four.
            var dropped = await store.ApplyRetentionAsync(TimeSpan.FromDays(3), Ct);
            Assert.Equal(old.Order(), dropped.Select(p => p.TaskId).Order());
            Assert.All(dropped, p => Assert.Equal((queue, TaskState.Succeeded), (p.Queue, p.State)));
            Assert.Equal("acme", dropped.Single(p => p.TaskId == old[0]).Tenant);
            Assert.Equal(before - 3, await fixture.ScalarAsync<long>(partitions));
            foreach (var id in old) await Assert.ThrowsAsync<TaskNotFoundException>(() => store.GetAsync(id, Ct));

            // Keys are free again, counts went down by four; the young canceled task and the live one stay.
            Assert.Equal(0L, await fixture.ScalarAsync<long>($"SELECT count(*) FROM \"{schema}\".task_keys WHERE idempotency_key LIKE 'old%'"));
            var reused = await store.EnqueueAsync(new EnqueueRequest(queue, [1]) { IdempotencyKey = "old1" }, Ct);
            Assert.True(reused.Created);
            Assert.NotEqual(old[1], reused.TaskId);
            Assert.Equal(TaskState.Canceled, (await store.GetAsync(young, Ct)).State);
            Assert.False((await store.EnqueueAsync(new EnqueueRequest(queue, [1]) { IdempotencyKey = "young" }, Ct)).Created);
            Assert.Equal(TaskState.Pending, (await store.GetAsync(live, Ct)).State);
            var stats = Assert.Single(await store.GetStatsAsync(Ct));
            Assert.Equal((2L, 0L, 1L), (stats.Pending, stats.Succeeded, stats.Canceled));
            Assert.Equal(1L, await fixture.ScalarAsync<long>($"SELECT coalesce(sum(tasks), 0)::bigint FROM \"{schema}\".task_counts WHERE queue = $1", queue));

            // A second call finds nothing more to drop.
            Assert.Empty(await store.ApplyRetentionAsync(TimeSpan.FromDays(3), Ct));
        }
        finally
        {
            await fixture.DropSchemaAsync(schema);
        }
    }

    [Fact]
    public async Task Rows_of_days_without_a_partition_wait_in_the_default_one_until_their_day_is_made_or_retention_deletes_them()
    {
        var (store, schema) = await NewStoreAsync();
        try
        {
            const string queue = "default-partition";
            var ids = new List<Guid>();
            for (var i = 0; i < 2; i++) ids.Add((await store.EnqueueAsync(new EnqueueRequest(queue, [(byte)i]) { IdempotencyKey = "d" + i }, Ct)).TaskId);
            foreach (var lease in await store.LeaseAsync(queue, "w", 2, Lease, Ct)) await store.FailAsync(lease, "x", FailOptions.NonRetryable, Ct);
            // 40 and 50 days ago: no partition, so both rows move into the default one.
            await fixture.ScalarAsync<object>($"UPDATE \"{schema}\".task_history SET finished_at = finished_at - interval '40 days' WHERE id = $1", ids[0]);
            await fixture.ScalarAsync<object>($"UPDATE \"{schema}\".task_history SET finished_at = finished_at - interval '50 days' WHERE id = $1", ids[1]);
            Assert.Equal(2L, await CountAsync(schema, "task_history_default", queue));

            // Making the 40-days-ago partition moves its row out of the default (ATTACH would refuse otherwise).
            Assert.Equal(1, await fixture.ScalarAsync<int>($"SELECT \"{schema}\".add_history_partitions((now() AT TIME ZONE 'UTC')::date - 40, (now() AT TIME ZONE 'UTC')::date - 40)"));
            Assert.Equal(1L, await CountAsync(schema, "task_history_default", queue));
            Assert.Equal(TaskState.Failed, (await store.GetAsync(ids[0], Ct)).State);

            // Retention of 45 days: the default partition's 50-day-old row is deleted row by row (key freed, count out);
            // the 40-day partition stays.
            var purged = await store.ApplyRetentionAsync(TimeSpan.FromDays(45), Ct);
            Assert.Equal(ids[1], Assert.Single(purged).TaskId);
            Assert.True((await store.EnqueueAsync(new EnqueueRequest(queue, [1]) { IdempotencyKey = "d1" }, Ct)).Created);
            Assert.Equal(TaskState.Failed, (await store.GetAsync(ids[0], Ct)).State);
            Assert.Equal(1L, Assert.Single(await store.GetStatsAsync(Ct)).Failed);
        }
        finally
        {
            await fixture.DropSchemaAsync(schema);
        }
    }

    [Fact]
    public async Task Migrating_from_version_5_moves_finished_rows_to_history_and_keeps_counts_and_keys()
    {
        var schema = PostgresStoreFixture.NewSchemaName();
        try
        {
            // A schema as version 5 left it, with finished and live tasks in the one table.
            await fixture.CreateSchemaAtVersionAsync(schema, PostgresQueries.HistoryVersion - 1);
            await fixture.ScalarAsync<object>($"""
                INSERT INTO "{schema}".tasks (id, queue, state, run_at, max_attempts, idempotency_key, payload, created_at, updated_at, finished_at)
                SELECT gen_random_uuid(), 'old', n % 5, now(), 1, 'key' || n, '\x01', now(), now(),
                       CASE WHEN n % 5 >= 2 THEN now() - (n || ' days')::interval END
                FROM generate_series(1, 50) AS n
                """);
            await fixture.ScalarAsync<object>($"""
                INSERT INTO "{schema}".task_keys (queue, idempotency_key, task_id) SELECT queue, idempotency_key, id FROM "{schema}".tasks
                """);
            await fixture.ScalarAsync<object>($"""
                INSERT INTO "{schema}".task_counts (queue, state, slot, tasks)
                SELECT queue, state, 0, count(*) FROM "{schema}".tasks WHERE state IN (2, 3, 4) GROUP BY queue, state
                """);
            // The counts as a version-5 store reports them (today's stats statement reads version 7's columns).
            var countsBefore = await fixture.ScalarAsync<long[]>($"""
                SELECT ARRAY[count(*) FILTER (WHERE state = 0), count(*) FILTER (WHERE state = 1),
                             (SELECT coalesce(sum(tasks), 0) FROM "{schema}".task_counts WHERE state = 2)::bigint,
                             (SELECT coalesce(sum(tasks), 0) FROM "{schema}".task_counts WHERE state = 3)::bigint,
                             (SELECT coalesce(sum(tasks), 0) FROM "{schema}".task_counts WHERE state = 4)::bigint]
                FROM "{schema}".tasks
                """);
            var store = fixture.CreatePostgresStore(schema);

            await store.MigrateAsync(Ct);

            Assert.Equal(PostgresQueries.LatestVersion, await fixture.ScalarAsync<int>($"SELECT max(version) FROM \"{schema}\".schema_version"));
            Assert.Equal(20L, await CountAsync(schema, "tasks", "old"));
            Assert.Equal(0L, await fixture.ScalarAsync<long>($"SELECT count(*) FROM \"{schema}\".tasks WHERE state >= 2"));
            Assert.Equal(30L, await CountAsync(schema, "task_history", "old"));
            var stats = Assert.Single(await store.GetStatsAsync(Ct));
            Assert.Equal(countsBefore, new[] { stats.Pending, stats.Running, stats.Succeeded, stats.Failed, stats.Canceled });
            // A key of a moved task is still taken by it.
            var key = await fixture.ScalarAsync<string>($"SELECT idempotency_key FROM \"{schema}\".task_history ORDER BY finished_at LIMIT 1");
            Assert.False((await store.EnqueueAsync(new EnqueueRequest("old", [1]) { IdempotencyKey = key }, Ct)).Created);
        }
        finally
        {
            await fixture.DropSchemaAsync(schema);
        }
    }

    [Fact]
    public async Task Rows_an_older_store_version_finished_in_place_move_to_history_in_the_upkeep()
    {
        var (store, schema) = await NewStoreAsync();
        try
        {
            const string queue = "stray";
            var id = (await store.EnqueueAsync(new EnqueueRequest(queue, [1]), Ct)).TaskId;
            // What a version-5 node's Complete does during a rolling upgrade: the row finishes in tasks.
            await fixture.ScalarAsync<object>($"UPDATE \"{schema}\".tasks SET state = 2, finished_at = now() WHERE id = $1", id);

            await store.FoldCountsAsync(Ct);

            Assert.Equal(0L, await CountAsync(schema, "tasks", queue));
            Assert.Equal(1L, await CountAsync(schema, "task_history", queue));
            Assert.Equal(TaskState.Succeeded, (await store.GetAsync(id, Ct)).State);
        }
        finally
        {
            await fixture.DropSchemaAsync(schema);
        }
    }
}
