using System.Globalization;
using System.Text.Json;
using Npgsql;
using Xunit;

namespace Konduit.Postgres.Tests;

// Seeding tens of thousands of rows in one transaction holds back the xmin horizon, so pages of other tests cannot be
// pruned meanwhile (a heartbeat then finds no room for a HOT update): runs alone, after the parallel test classes.
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SeededTablesCollection
{
    public const string Name = "Seeded tables";
}

/// <summary>
/// Issue 15 items 3 and 4: every statement that runs per task or per poll keeps its cost independent of the finished
/// history the table retains, in its generic plan too. A connection pooler's prepared statements, or
/// <c>plan_cache_mode = force_generic_plan</c>, plan a statement once without its parameter values: a generic plan
/// estimates <c>LIMIT $n</c> at 10 % of the rows and cannot prove a partial index from <c>state = ANY($1)</c>, so
/// lease and purge became a hash join over a full scan of the table. Each statement is prepared, run under
/// EXPLAIN (ANALYZE, BUFFERS) in a rolled-back transaction on two seeded tables that differ only in their finished
/// rows, and its buffer count must not follow the history.
/// </summary>
[Collection(SeededTablesCollection.Name)]
public sealed class PostgresGenericPlanTests(PostgresStoreFixture fixture) : IClassFixture<PostgresStoreFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // Live work, the same in both seeds: due and scheduled pending tasks, running leases, expired leases. Enough due
    // tasks that a generic plan's 10 % guess for `LIMIT $n` (2,000 rows) makes a hash join look cheaper than key probes.
    private const int Pending = 20_000;
    private const int Scheduled = 500;
    private const int Running = 200;
    private const int Expired = 50;

    [Fact]
    public Task Per_task_statements_read_the_same_buffers_whatever_the_finished_history_in_generic_and_custom_plans() =>
        CompareAsync(small: 10_000, large: 60_000);

    // The issue's scale (about a million finished rows); seeding takes a minute, so it runs with KONDUIT_LONG=1 only.
    [Fact]
    [Trait("Profile", "Long")]
    public Task Per_task_statements_read_the_same_buffers_at_a_million_finished_tasks() =>
        CompareAsync(small: 100_000, large: 1_000_000);

    private async Task CompareAsync(int small, int large)
    {
        // KONDUIT_PLAN_REPORT=<file>: also time every statement (median of 11 runs) and append a table to the file.
        var report = Environment.GetEnvironmentVariable("KONDUIT_PLAN_REPORT");
        var repeats = string.IsNullOrEmpty(report) ? 1 : 11;
        var smallRuns = await MeasureAsync(small, repeats);
        var largeRuns = await MeasureAsync(large, repeats);
        if (!string.IsNullOrEmpty(report)) await File.AppendAllTextAsync(report, Report(small, smallRuns, large, largeRuns), Ct);

        var failures = new List<string>();
        foreach (var (key, atLarge) in largeRuns)
        {
            var atSmall = smallRuns[key];
            // A full scan grows 6× (10× in the long profile) between the seeds; index probes grow by a btree level at most.
            if (atLarge.Buffers > atSmall.Buffers * 3 / 2 + 64)
                failures.Add($"{key}: {atSmall.Buffers} buffers at {small:N0} finished tasks, {atLarge.Buffers} at {large:N0}: {atLarge.Shape}");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    private async Task<Dictionary<string, Run>> MeasureAsync(int finished, int repeats)
    {
        var schema = PostgresStoreFixture.NewSchemaName();
        try
        {
            var store = fixture.CreatePostgresStore(schema);
            await store.MigrateAsync(Ct);
            await SeedAsync(schema, finished);
            var statements = await StatementsAsync(schema);
            var runs = new Dictionary<string, Run>();
            await using var connection = await fixture.DataSource.OpenConnectionAsync(Ct);
            foreach (var mode in new[] { "force_generic_plan", "force_custom_plan" })
            {
                await ExecuteAsync(connection, $"SET plan_cache_mode = {mode}");
                // Rolled-back writes leave pages not all-visible, and an index-only scan (stats) then visits the heap:
                // every mode starts from a vacuumed table, and stats runs first. INDEX_CLEANUP ON: a vacuum that skips
                // the indexes (few dead rows in a large table) leaves dead line pointers, and their pages stay not all-visible.
                await ExecuteAsync(connection, $"VACUUM (INDEX_CLEANUP ON) \"{schema}\".tasks");
                await ExecuteAsync(connection, $"VACUUM (INDEX_CLEANUP ON) \"{schema}\".task_history");
                foreach (var (name, types, sql, args) in statements)
                {
                    await ExecuteAsync(connection, types.Length == 0 ? $"PREPARE p_{name} AS {sql}" : $"PREPARE p_{name}({types}) AS {sql}");
                    var samples = new List<Run>();
                    for (var i = 0; i < repeats; i++) samples.Add(await ExplainAsync(connection, types.Length == 0 ? $"EXECUTE p_{name}" : $"EXECUTE p_{name}({args})"));
                    var median = samples.OrderBy(s => s.Milliseconds).ElementAt(samples.Count / 2);
                    runs[$"{name} ({(mode == "force_generic_plan" ? "generic" : "custom")})"] = median with
                    {
                        // The first run's buffers: later runs of a rolled-back write find its dead row versions.
                        Buffers = samples[0].Buffers,
                    };
                    await ExecuteAsync(connection, $"DEALLOCATE p_{name}");
                }
            }
            await ExecuteAsync(connection, "RESET plan_cache_mode");
            return runs;
        }
        finally
        {
            await fixture.DropSchemaAsync(schema);
        }
    }

    // Finished tasks (a third with an idempotency key, a tenth in a second queue) finished 5 days ago, plus the live work.
    // Finished rows are where schema 6 keeps them: task_history (here its default partition, as no partition goes back
    // 5 days), and tasks holds the live work only.
    private async Task SeedAsync(string schema, int finished)
    {
        var s = $"\"{schema}\"";
        await SeedSqlAsync($"""
            INSERT INTO {s}.task_history (id, queue, state, run_at, attempts, max_attempts, lease_token, idempotency_key, payload,
                                   created_at, updated_at, started_at, finished_at)
            SELECT gen_random_uuid(), CASE WHEN n % 10 = 0 THEN 'other' ELSE 'q' END, 2 + (n % 3), now() - interval '10 days',
                   1, 1, 1, CASE WHEN n % 3 = 0 THEN 'key-' || n END, '\x01', now() - interval '10 days', now(),
                   now() - interval '10 days', now() - interval '5 days' - n * interval '1 ms'
            FROM generate_series(1, {finished}) AS n;
            INSERT INTO {s}.task_keys (queue, idempotency_key, task_id)
            SELECT queue, idempotency_key, id FROM {s}.task_history WHERE idempotency_key IS NOT NULL;
            -- Scheduled tasks carry the flag (migration 7); the last 50 of them have come due and wait for promotion.
            INSERT INTO {s}.tasks (id, queue, state, run_at, max_attempts, payload, created_at, updated_at, scheduled)
            SELECT gen_random_uuid(), 'q', 0,
                   now() + CASE WHEN n <= {Pending} THEN -interval '1 hour'
                                WHEN n <= {Pending + Scheduled - 50} THEN interval '1 day' ELSE -interval '1 minute' END,
                   5, '\x01', now(), now(), n > {Pending}
            FROM generate_series(1, {Pending + Scheduled}) AS n;
            INSERT INTO {s}.tasks (id, queue, state, run_at, attempts, max_attempts, lease_token, lease_owner, lease_expires_at,
                                   payload, created_at, updated_at, started_at)
            SELECT gen_random_uuid(), 'q', 1, now() - interval '1 hour', 1, 5, 1, 'w',
                   now() + CASE WHEN n <= {Running} THEN interval '1 hour' ELSE -interval '1 minute' END, '\x01', now(), now(), now()
            FROM generate_series(1, {Running + Expired}) AS n;
            -- Seeded past the store's statements, so counted here the way migration 5 counts an existing table.
            INSERT INTO {s}.task_counts (queue, state, slot, tasks)
            SELECT queue, state, 0, count(*) FROM {s}.task_history GROUP BY queue, state
            """);
        await SeedSqlAsync($"VACUUM ANALYZE {s}.tasks");
        await SeedSqlAsync($"VACUUM ANALYZE {s}.task_keys");
        await SeedSqlAsync($"VACUUM ANALYZE {s}.task_history");
    }

    // Seeding a million rows takes longer than the default 30 s command timeout.
    private async Task SeedSqlAsync(string sql)
    {
        await using var cmd = fixture.DataSource.CreateCommand(sql);
        cmd.CommandTimeout = 0;
        await cmd.ExecuteNonQueryAsync(Ct);
    }

    // Every statement that runs per task or per poll, with arguments taken from the seed (name, PREPARE types, text, EXECUTE arguments).
    private async Task<List<(string Name, string Types, string Sql, string Args)>> StatementsAsync(string schema)
    {
        var sql = new PostgresQueries(schema);
        var s = $"\"{schema}\"";
        async Task<string> IdsAsync(string where, int limit, string table = "tasks") =>
            "'{" + await fixture.ScalarAsync<string>($"SELECT string_agg(id::text, ',') FROM (SELECT id FROM {s}.{table} WHERE {where} LIMIT {limit}) t") + "}'";
        var live = await IdsAsync("state = 1 AND lease_expires_at > now()", Running);
        var one = live.Trim('\'', '{', '}').Split(',')[0];
        var expired = (await IdsAsync("state = 1 AND lease_expires_at <= now()", 1)).Trim('\'', '{', '}');
        var pending = await IdsAsync("state = 0 AND run_at <= now()", 100);
        var failed = (await IdsAsync("state = 3", 1, "task_history")).Trim('\'', '{', '}');
        var keyed = await fixture.ScalarAsync<string>($"SELECT idempotency_key FROM {s}.task_history WHERE idempotency_key IS NOT NULL LIMIT 1");
        var ones = $"array_fill(1::bigint, ARRAY[{Running}])";
        var enqueueArrays = "ARRAY[gen_random_uuid()], '{q}', '{0}', '{null}', '{5}', '{null}', '{null}', '{null}', '{null}', ARRAY['\\x01'::bytea]";
        return
        [
            ("stats", "", sql.Stats, ""),
            ("lease", "text, integer, text, interval", sql.Lease, "'q', 100, 'w', '5 minutes'"),
            ("lease_by_ids", "uuid[], text, text, interval", sql.LeaseByIds, $"{pending}, 'q', 'w', '5 minutes'"),
            ("due_ids", "text, integer", sql.DueIds, "'q', 100"),
            ("heartbeat", "uuid, bigint, interval", sql.Heartbeat, $"'{one}', 1, '5 minutes'"),
            ("heartbeat_many", "uuid[], bigint[], interval", sql.HeartbeatMany, $"{live}, {ones}, '5 minutes'"),
            ("complete", "uuid, bigint, bytea", sql.Complete, $"'{one}', 1, NULL"),
            ("complete_many", "uuid[], bigint[], bytea[]", sql.CompleteMany, $"{live}, {ones}, array_fill(NULL::bytea, ARRAY[{Running}])"),
            ("complete_and_lease", "text, integer, text, interval, uuid, bigint, bytea", sql.CompleteAndLease, $"'q', 1, 'w', '5 minutes', '{one}', 1, NULL"),
            ("fail_retry", "uuid, bigint, boolean, interval, text, text", sql.Fail, $"'{one}', 1, true, '1 second', 'boom', 'none'"),
            ("fail_dead", "uuid, bigint, boolean, interval, text, text", sql.Fail, $"'{one}', 1, false, '1 second', 'boom', 'none'"),
            ("state_of", "uuid", sql.StateOf, $"'{one}'"),
            ("reclaim_expired", "integer, text", sql.ReclaimExpired, $"{PostgresQueries.SweepBatchSize}, 'none'"),
            ("promote_due", "integer", sql.PromoteDue, $"{PostgresQueries.SweepBatchSize}"),
            ("expire_lease", "uuid, bigint, text", sql.ExpireLease, $"'{expired}', 1, 'none'"),
            ("purge", "smallint[], interval, text, integer", sql.Purge, $"'{{2,3,4}}', '1 day', NULL, {PostgresQueries.SweepBatchSize}"),
            ("purge_queue", "smallint[], interval, text, integer", sql.Purge, $"'{{3}}', '1 day', 'q', {PostgresQueries.SweepBatchSize}"),
            ("enqueue_one", "uuid, text, integer, timestamptz, integer, text, text, jsonb, jsonb, bytea", sql.EnqueueOne,
                $"gen_random_uuid(), 'q', 0, NULL, 5, NULL, '{keyed}-new', NULL, NULL, '\\x01'"),
            ("enqueue_batch", "uuid[], text[], integer[], timestamptz[], integer[], text[], text[], jsonb[], jsonb[], bytea[]", sql.EnqueueQuiet, enqueueArrays),
            ("existing_key", "text, text", sql.ExistingKey, $"'q', '{keyed}'"),
            ("existing_keys", "text[], text[]", sql.ExistingKeys, $"'{{q}}', '{{{keyed}}}'"),
            ("paused_queues", "", sql.PausedQueues, ""),
            ("get", "uuid", sql.Get, $"'{one}'"),
            ("cancel", "uuid", sql.Cancel, $"'{one}'"),
            ("redrive", "uuid, text", sql.Retry, $"'{failed}', 'none'"),
        ];
    }

    // One execution in a transaction that is rolled back, so every statement sees the same seed.
    private static async Task<Run> ExplainAsync(NpgsqlConnection connection, string execute)
    {
        await ExecuteAsync(connection, "BEGIN");
        try
        {
            await using var cmd = new NpgsqlCommand($"EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) {execute}", connection);
            var json = (string)(await cmd.ExecuteScalarAsync(Ct))!;
            using var doc = JsonDocument.Parse(json);
            var top = doc.RootElement[0];
            var plan = top.GetProperty("Plan");
            return new Run(Buffers(plan), top.GetProperty("Execution Time").GetDouble(), Shape(plan));
        }
        finally
        {
            await ExecuteAsync(connection, "ROLLBACK");
        }
    }

    // The root's buffers include every node it ran; a data-modifying CTE that nothing reads runs after the root, apart.
    private static long Buffers(JsonElement plan)
    {
        var scanned = new HashSet<string>();
        var ctes = new List<JsonElement>();
        void Walk(JsonElement node)
        {
            if (node.TryGetProperty("CTE Name", out var cte)) scanned.Add(cte.GetString()!);
            if (node.TryGetProperty("Subplan Name", out var sub) && sub.GetString()!.StartsWith("CTE ", StringComparison.Ordinal)) ctes.Add(node);
            if (node.TryGetProperty("Plans", out var children)) foreach (var child in children.EnumerateArray()) Walk(child);
        }
        Walk(plan);
        static long Own(JsonElement n) => n.GetProperty("Shared Hit Blocks").GetInt64() + n.GetProperty("Shared Read Blocks").GetInt64();
        return Own(plan) + ctes.Where(c => !scanned.Contains(c.GetProperty("Subplan Name").GetString()!["CTE ".Length..])).Sum(Own);
    }

    // One line: the plan's nodes depth first, each with the index or table it reads.
    private static string Shape(JsonElement plan)
    {
        var parts = new List<string>();
        void Walk(JsonElement node)
        {
            var type = node.GetProperty("Node Type").GetString()!;
            if (type is "Result" or "LockRows" or "Limit" or "Aggregate" or "ProjectSet" or "Materialize") type = type == "Limit" ? "Limit" : "";
            var on = node.TryGetProperty("Index Name", out var index) ? index.GetString()
                : node.TryGetProperty("Relation Name", out var relation) ? relation.GetString()
                : node.TryGetProperty("CTE Name", out var cte) ? cte.GetString() : null;
            if (type.Length > 0) parts.Add(on is null ? type : $"{type} {on}");
            if (node.TryGetProperty("Plans", out var children)) foreach (var child in children.EnumerateArray()) Walk(child);
        }
        Walk(plan);
        return string.Join(" > ", parts);
    }

    private static string Report(int small, Dictionary<string, Run> atSmall, int large, Dictionary<string, Run> atLarge)
    {
        var lines = new List<string>
        {
            "",
            $"| statement (plan) | buffers @ {small:N0} | buffers @ {large:N0} | ms @ {small:N0} | ms @ {large:N0} | plan @ {large:N0} |",
            "|---|---:|---:|---:|---:|---|",
        };
        foreach (var (key, l) in atLarge)
        {
            var sm = atSmall[key];
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"| {key} | {sm.Buffers} | {l.Buffers} | {sm.Milliseconds:0.000} | {l.Milliseconds:0.000} | {l.Shape} |"));
        }
        return string.Join("\n", lines) + "\n";
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, connection);
        await cmd.ExecuteNonQueryAsync(Ct);
    }

    private sealed record Run(long Buffers, double Milliseconds, string Shape);
}
