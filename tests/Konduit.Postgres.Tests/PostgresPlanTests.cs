using Npgsql;
using Xunit;

namespace Konduit.Postgres.Tests;

/// <summary>
/// The fenced statements (complete, complete-many, heartbeat, heartbeat-many, fail) find their rows by primary key whatever the
/// statistics say. The trap: statistics gathered while every row was pending (autovacuum analyzes right after a
/// bulk enqueue) put the running rows at ~0, and a predicate that proves the sweeper's partial index
/// (<c>WHERE state = 1</c>) then makes "scan every running row" look like a one-row plan. A worker that had leased
/// 30,000 tasks completed them 256 per ~2 s that way (the intermittent slow burn-down).
/// </summary>
// Seeds 100,000 rows in one transaction, which holds back the xmin horizon of the whole database meanwhile (see
// SeededTablesCollection): runs alone, after the parallel test classes.
[Collection(SeededTablesCollection.Name)]
public sealed class PostgresPlanTests(PostgresStoreFixture fixture) : IClassFixture<PostgresStoreFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Fenced_statements_use_the_primary_key_under_statistics_taken_while_every_row_was_pending()
    {
        var schema = PostgresStoreFixture.NewSchemaName();
        try
        {
            var store = fixture.CreatePostgresStore(schema);
            await store.MigrateAsync(Ct);
            const int count = 2_000;
            for (var i = 0; i < count; i += 500)
                await store.EnqueueManyAsync(Enumerable.Range(0, 500).Select(_ => new EnqueueRequest("q", [1])).ToArray(), Ct);
            // The statistics of a freshly filled queue: every row pending.
            await fixture.ScalarAsync<object>($"ANALYZE \"{schema}\".tasks");
            var leases = new List<TaskLease>();
            while (leases.Count < count) leases.AddRange(await store.LeaseAsync("q", "w", 1000, TimeSpan.FromMinutes(5), Ct));

            var sql = new PostgresQueries(schema);
            await using var connection = await fixture.DataSource.OpenConnectionAsync(Ct);
            await ExecuteAsync(connection, "SET plan_cache_mode = force_generic_plan");
            var ids = string.Join(",", leases.Take(256).Select(l => l.TaskId));
            var one = leases[0].TaskId;
            string[] plans =
            [
                await PlanAsync(connection, "cm", "uuid[], bigint[], bytea[]", sql.CompleteMany,
                    $"'{{{ids}}}', array_fill(1::bigint, ARRAY[256]), array_fill(NULL::bytea, ARRAY[256])"),
                await PlanAsync(connection, "c1", "uuid, bigint, bytea", sql.Complete, $"'{one}', 1, NULL"),
                await PlanAsync(connection, "cl", "text, integer, text, interval, uuid, bigint, bytea", sql.CompleteAndLease,
                    $"'q', 1, 'w', '1 minute', '{one}', 1, NULL"),
                await PlanAsync(connection, "hb", "uuid, bigint, interval", sql.Heartbeat, $"'{one}', 1, '1 minute'"),
                await PlanAsync(connection, "hm", "uuid[], bigint[], interval", sql.HeartbeatMany,
                    $"'{{{ids}}}', array_fill(1::bigint, ARRAY[256]), '1 minute'"),
                await PlanAsync(connection, "f1", "uuid, bigint, boolean, interval, text, text", sql.Fail,
                    $"'{one}', 1, true, '1 second', 'boom', 'none'"),
            ];
            // Each plan text starts with its statement's name, so a failure shows which one and how it was planned.
            foreach (var plan in plans)
            {
                // Neither running-rows index (version 1's by expiry, version 2's by id) may stand in for the key.
                Assert.DoesNotContain("tasks_running_expiry_idx", plan, StringComparison.Ordinal);
                Assert.DoesNotContain("tasks_running_idx", plan, StringComparison.Ordinal);
                Assert.Contains("tasks_pkey", plan, StringComparison.Ordinal);
                Assert.DoesNotContain("Seq Scan", plan, StringComparison.Ordinal);
            }
            foreach (var name in new[] { "cm", "c1", "cl", "hb", "hm", "f1" }) await ExecuteAsync(connection, $"DEALLOCATE {name}");
            await ExecuteAsync(connection, "RESET plan_cache_mode");
        }
        finally
        {
            await fixture.DropSchemaAsync(schema);
        }
    }

    [Fact]
    public async Task Failed_tasks_of_a_tenant_finished_in_the_last_day_are_read_through_an_index()
    {
        // Issue 15 item 1: with no index on finish time this query scanned every finished task (263 ms for 9 rows
        // at 500k finished). A seeded history: 100 tenants × 1,000 finished tasks spread over 100 days, so each
        // tenant has ~10 in the last day; plus 5,000 pending tasks without a tenant.
        var schema = PostgresStoreFixture.NewSchemaName();
        try
        {
            var store = fixture.CreatePostgresStore(schema);
            await store.MigrateAsync(Ct);
            await fixture.ScalarAsync<object>($"""
                INSERT INTO "{schema}".task_history (id, queue, state, run_at, max_attempts, tenant, payload, created_at, updated_at, finished_at)
                SELECT gen_random_uuid(), 'q', 2 + (n % 3), now() - interval '100 days', 1, 'tenant-' || (n % 100), '\x01',
                       now() - interval '100 days', now(), now() - random() * interval '100 days'
                FROM generate_series(1, 100000) AS n
                """);
            await fixture.ScalarAsync<object>($"""
                INSERT INTO "{schema}".tasks (id, queue, state, run_at, max_attempts, payload, created_at, updated_at)
                SELECT gen_random_uuid(), 'q', 0, now(), 1, '\x01', now(), now() FROM generate_series(1, 5000)
                """);
            await fixture.ScalarAsync<object>($"ANALYZE \"{schema}\".tasks");
            await fixture.ScalarAsync<object>($"ANALYZE \"{schema}\".task_history");

            var filter = new TaskQuery { Tenant = "tenant-7", States = [TaskState.Failed], FinishedFrom = DateTimeOffset.UtcNow.AddDays(-1) };
            var plan = await ExplainQueryAsync(new PostgresQueries(schema), filter);

            // Finished tasks are in task_history (migration 6): in day partitions (only the last day's are read: pruning)
            // and the default one, which holds the older days here and is read through an index (by finish time or
            // tenant, whichever the planner finds more selective: either reads only matching rows).
            Assert.Matches(@"Index Scan (Backward )?(using|on) task_history_default_\w+_idx", plan);
            Assert.DoesNotContain(" on tasks", plan, StringComparison.Ordinal);
            // 99 % of the history is in the default partition here (no day partitions that far back): read by index.
            // The last day's partitions are small, and a sequential scan of them is the planner's right choice.
            Assert.DoesNotContain("Seq Scan on task_history_default", plan, StringComparison.Ordinal);
            // The page itself is right: every failed task of tenant-7 that finished in the last day, and only those.
            var expected = await fixture.ScalarAsync<long>(
                $"SELECT count(*) FROM \"{schema}\".task_history WHERE tenant = 'tenant-7' AND state = 3 AND finished_at >= $1", filter.FinishedFrom.Value);
            var page = await store.QueryAsync(filter, PageRequest.First, Ct);
            Assert.Equal(expected, page.Items.Count);
            Assert.All(page.Items, t => Assert.True(t.Tenant == "tenant-7" && t.State == TaskState.Failed && t.FinishedAt >= filter.FinishedFrom));
        }
        finally
        {
            await fixture.DropSchemaAsync(schema);
        }
    }

    [Fact]
    public async Task Pending_tasks_of_a_queue_are_read_newest_first_from_an_index_of_that_queue()
    {
        // "Pending tasks of queue X, newest first" beside a larger queue: an index on (queue, state, id) cannot give id
        // order for `state = ANY(...)`, so the planner walked the primary key backwards and filtered out every newer
        // task of the other queues (reads grew with them). Migration 8's (queue, id) index of pending rows reads the
        // page in order, and it is also the index a lease no longer writes to (the row leaves its predicate).
        var schema = PostgresStoreFixture.NewSchemaName();
        try
        {
            var store = fixture.CreatePostgresStore(schema);
            await store.MigrateAsync(Ct);
            await fixture.ScalarAsync<object>($"""
                INSERT INTO "{schema}".tasks (id, queue, state, run_at, max_attempts, payload, created_at, updated_at)
                SELECT gen_random_uuid(), CASE WHEN n % 100 = 0 THEN 'rare' ELSE 'big' END, 0, now(), 1, '\x01', now(), now()
                FROM generate_series(1, 100000) AS n
                """);
            await fixture.ScalarAsync<object>($"ANALYZE \"{schema}\".tasks");

            var filter = new TaskQuery { Queue = "rare", States = [TaskState.Pending] };
            var plan = await ExplainQueryAsync(new PostgresQueries(schema), filter);
            Assert.Matches(@"Index (Only )?Scan Backward using tasks_pending_id_idx", plan);
            Assert.DoesNotContain("Sort", plan, StringComparison.Ordinal);
            Assert.DoesNotContain("tasks_pkey", plan, StringComparison.Ordinal);

            // The page itself: the newest pending tasks of the queue, in id order.
            var expected = new List<Guid>();
            await using (var connection = await fixture.DataSource.OpenConnectionAsync(Ct))
            await using (var cmd = new NpgsqlCommand($"SELECT id FROM \"{schema}\".tasks WHERE queue = 'rare' ORDER BY id DESC LIMIT 50", connection))
            await using (var reader = await cmd.ExecuteReaderAsync(Ct))
                while (await reader.ReadAsync(Ct)) expected.Add(reader.GetGuid(0));
            var page = await store.QueryAsync(filter, new PageRequest(50), Ct);
            Assert.Equal(expected, page.Items.Select(t => t.Id));
        }
        finally
        {
            await fixture.DropSchemaAsync(schema);
        }
    }

    // EXPLAIN of exactly the text and parameters the store sends for a query (an unnamed statement: planned with the values).
    private async Task<string> ExplainQueryAsync(PostgresQueries sql, TaskQuery filter)
    {
        await using var query = PostgresAdmin.BuildQuery(sql, filter, PageRequest.First);
        await using var connection = await fixture.DataSource.OpenConnectionAsync(Ct);
        query.CommandText = "EXPLAIN " + query.CommandText;
        query.Connection = connection;
        var lines = new List<string>();
        await using (var reader = await query.ExecuteReaderAsync(Ct))
            while (await reader.ReadAsync(Ct)) lines.Add(reader.GetString(0));
        return string.Join("\n", lines);
    }

    private static async Task<string> PlanAsync(NpgsqlConnection connection, string name, string types, string statement, string args)
    {
        await ExecuteAsync(connection, $"PREPARE {name}({types}) AS {statement}");
        await using var cmd = new NpgsqlCommand($"EXPLAIN EXECUTE {name}({args})", connection);
        var lines = new List<string>();
        await using var reader = await cmd.ExecuteReaderAsync(Ct);
        while (await reader.ReadAsync(Ct)) lines.Add(reader.GetString(0));
        return name + ":\n" + string.Join("\n", lines);
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, connection);
        await cmd.ExecuteNonQueryAsync(Ct);
    }
}
