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
            foreach (var name in new[] { "cm", "c1", "hb", "hm", "f1" }) await ExecuteAsync(connection, $"DEALLOCATE {name}");
            await ExecuteAsync(connection, "RESET plan_cache_mode");
        }
        finally
        {
            await fixture.DropSchemaAsync(schema);
        }
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
