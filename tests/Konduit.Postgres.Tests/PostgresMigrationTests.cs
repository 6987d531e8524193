using Xunit;

namespace Konduit.Postgres.Tests;

public sealed class PostgresMigrationTests(PostgresStoreFixture fixture) : IClassFixture<PostgresStoreFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Migration_is_idempotent_and_safe_to_run_on_many_nodes_at_once()
    {
        var schema = PostgresStoreFixture.NewSchemaName();
        try
        {
            // Four "nodes" start together on a fresh database schema; they serialize on the advisory lock.
            var stores = Enumerable.Range(0, 4).Select(_ => fixture.CreatePostgresStore(schema)).ToArray();
            await Task.WhenAll(stores.Select(s => Task.Run(() => s.MigrateAsync(Ct), Ct)));
            await stores[0].MigrateAsync(Ct);

            var versions = await fixture.ScalarAsync<int[]>($"SELECT array_agg(version ORDER BY version) FROM \"{schema}\".schema_version");
            Assert.Equal(Enumerable.Range(1, PostgresQueries.LatestVersion).ToArray(), versions);

            var id = (await stores[1].EnqueueAsync(new EnqueueRequest("q", [1]), Ct)).TaskId;
            Assert.Equal(TaskState.Pending, (await stores[2].GetAsync(id, Ct)).State);
        }
        finally
        {
            await fixture.DropSchemaAsync(schema);
        }
    }

    [Fact]
    public async Task Operations_on_a_missing_schema_throw_naming_MigrateAsync()
    {
        var store = fixture.CreatePostgresStore(PostgresStoreFixture.NewSchemaName());

        var enqueue = await Assert.ThrowsAsync<KonduitException>(() => store.EnqueueAsync(new EnqueueRequest("q", [1]), Ct));
        Assert.Contains("MigrateAsync", enqueue.Message, StringComparison.Ordinal);
        var lease = await Assert.ThrowsAsync<KonduitException>(() => store.LeaseAsync("q", "w", 1, TimeSpan.FromMinutes(1), Ct));
        Assert.Contains("MigrateAsync", lease.Message, StringComparison.Ordinal);
        var get = await Assert.ThrowsAsync<KonduitException>(() => store.GetAsync(Guid.NewGuid(), Ct));
        Assert.IsNotType<TaskNotFoundException>(get);
        Assert.Contains("MigrateAsync", get.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Operations_on_a_schema_without_tables_throw_naming_MigrateAsync()
    {
        var schema = PostgresStoreFixture.NewSchemaName();
        try
        {
            await fixture.ScalarAsync<object>($"CREATE SCHEMA \"{schema}\"");
            var store = fixture.CreatePostgresStore(schema);

            var ex = await Assert.ThrowsAsync<KonduitException>(() => store.GetStatsAsync(Ct));
            Assert.Contains("MigrateAsync", ex.Message, StringComparison.Ordinal);
            // Nothing was created implicitly.
            Assert.Equal(0L, await fixture.ScalarAsync<long>("SELECT count(*) FROM pg_tables WHERE schemaname = $1", schema));
        }
        finally
        {
            await fixture.DropSchemaAsync(schema);
        }
    }

    [Fact]
    public async Task Migration_creates_the_lease_sweep_query_and_purge_indexes()
    {
        var names = await fixture.ScalarAsync<string[]>(
            "SELECT array_agg(indexname::text ORDER BY indexname) FROM pg_indexes WHERE schemaname = $1 AND tablename IN ('tasks', 'task_keys')", fixture.Schema);
        Assert.Equal(
            new[]
            {
                "task_keys_pkey", "tasks_finished_idx", "tasks_pending_id_idx", "tasks_pending_idx", "tasks_pkey",
                "tasks_running_idx", "tasks_scheduled_idx", "tasks_tenant_id_idx",
            },
            names);
        // Finished tasks are in task_history (migration 6): its indexes serve queries by queue, tenant and finish time.
        var history = await fixture.ScalarAsync<string[]>(
            "SELECT array_agg(indexname::text ORDER BY indexname) FROM pg_indexes WHERE schemaname = $1 AND tablename = 'task_history'", fixture.Schema);
        Assert.Equal(
            new[]
            {
                "task_history_finished_idx", "task_history_pkey", "task_history_queue_state_id_idx", "task_history_tenant_finished_idx",
                "task_history_tenant_id_idx",
            },
            history);

        // The lease index is partial on pending rows that were due when they became pending, and ordered like the
        // lease statement; scheduled ones are indexed by run-at (migration 7, issue 15 item 2).
        var pending = await fixture.ScalarAsync<string>(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = 'tasks_pending_idx'", fixture.Schema);
        Assert.Contains("(queue, priority DESC, run_at, id) WHERE ((state = 0) AND (NOT scheduled))", pending, StringComparison.Ordinal);
        var scheduled = await fixture.ScalarAsync<string>(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = 'tasks_scheduled_idx'", fixture.Schema);
        Assert.Contains("(queue, run_at, id) WHERE ((state = 0) AND scheduled)", scheduled, StringComparison.Ordinal);
        // Running rows by id, not by expiry: no index covers lease_expires_at, so heartbeats can be HOT (version 2).
        var running = await fixture.ScalarAsync<string>(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = 'tasks_running_idx'", fixture.Schema);
        Assert.Contains("(id) WHERE (state = 1)", running, StringComparison.Ordinal);

        // No unique constraint on tasks besides its primary key: the table stays partitionable. (Read from pg_index,
        // not a LIKE over pg_indexes.indexdef: that filter may run pg_get_indexdef on other schemas' indexes while
        // parallel test classes drop them, failing with "could not open relation".)
        Assert.Equal(1L, await fixture.ScalarAsync<long>(
            """
            SELECT count(*) FROM pg_index i
            JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE n.nspname = $1 AND t.relname = 'tasks' AND i.indisunique
            """, fixture.Schema));
    }

    [Fact]
    public async Task Migration_5_counts_the_terminal_tasks_a_schema_already_holds_and_the_store_keeps_counting()
    {
        // Stats read terminal counts from task_counts (issue 15 item 4); a schema upgraded from version 4 holds
        // finished tasks no statement counted, so the migration counts them once.
        var schema = PostgresStoreFixture.NewSchemaName();
        try
        {
            var sql = new PostgresQueries(schema);
            await fixture.ScalarAsync<object>(sql.MigrationPrepare);
            foreach (var (version, migration) in sql.Migrations.Where(m => m.Version <= 4))
            {
                await fixture.ScalarAsync<object>(migration);
                await fixture.ScalarAsync<object>($"INSERT INTO \"{schema}\".schema_version (version) VALUES ({version})");
            }
            await fixture.ScalarAsync<object>($"""
                INSERT INTO "{schema}".tasks (id, queue, state, run_at, max_attempts, payload, created_at, updated_at, finished_at)
                SELECT gen_random_uuid(), q, st, now(), 1, '\x01', now(), now(), CASE WHEN st >= 2 THEN now() - interval '1 day' END
                FROM (VALUES ('a', 2), ('a', 2), ('a', 2), ('a', 3), ('a', 3), ('b', 4), ('b', 0)) AS v(q, st)
                """);

            var store = fixture.CreatePostgresStore(schema);
            await store.MigrateAsync(Ct);
            var a = Assert.Single(await store.GetStatsAsync(Ct), s => s.Queue == "a");
            var b = Assert.Single(await store.GetStatsAsync(Ct), s => s.Queue == "b");
            Assert.Equal(new QueueStats("a", 0, 0, 3, 2, 0), a);
            Assert.Equal((1L, 0L, 0L, 0L, 1L), (b.Pending, b.Running, b.Succeeded, b.Failed, b.Canceled));

            // From here the store's own statements count: a completion adds, a redrive and a purge take away.
            var lease = Assert.Single(await store.LeaseAsync("b", "w", 1, TimeSpan.FromMinutes(1), Ct));
            await store.CompleteAsync(lease, null, Ct);
            var failed = (await store.QueryAsync(new TaskQuery { Queue = "a", States = [TaskState.Failed] }, PageRequest.First, Ct)).Items[0];
            await store.RedriveAsync(failed.Id, Ct);
            Assert.Equal(new QueueStats("a", 1, 0, 3, 1, 0) { PendingDue = 1, OldestDueAt = (await StatsAsync(store, "a")).OldestDueAt }, await StatsAsync(store, "a"));
            Assert.Equal((0L, 1L, 1L), ((await StatsAsync(store, "b")).Pending, (await StatsAsync(store, "b")).Succeeded, (await StatsAsync(store, "b")).Canceled));
            Assert.Equal(4, (await store.PurgeAsync(TimeSpan.Zero, queue: "a", cancellationToken: Ct)).Count);
            Assert.Equal(new QueueStats("a", 1, 0, 0, 0, 0) { PendingDue = 1, OldestDueAt = (await StatsAsync(store, "a")).OldestDueAt }, await StatsAsync(store, "a"));
        }
        finally
        {
            await fixture.DropSchemaAsync(schema);
        }
    }

    private static async Task<QueueStats> StatsAsync(PostgresTaskStore store, string queue) =>
        Assert.Single(await store.GetStatsAsync(Ct), s => s.Queue == queue);
}
