using System.Text.Json;
using Npgsql;
using Xunit;

namespace Konduit.Postgres.Tests;

/// <summary>
/// Issue 15 item 2: a lease must not pay for tasks that are not due yet. The lease scan is ordered by priority first,
/// so with 200,000 priority-10 tasks due tomorrow, leasing a due priority-0 task stepped over every one of them (16 ms
/// and 2,535 buffers instead of 0.5 ms). Every way a task can wait for a future run-at is seeded through the store's
/// own API: a keyless batch (binary COPY), a keyed batch (the unnest statement), single enqueues, and a failure retried
/// with a backoff.
/// </summary>
// Seeds tens of thousands of rows: runs alone, after the parallel test classes (see SeededTablesCollection).
[Collection(SeededTablesCollection.Name)]
public sealed class PostgresScheduledLeaseTests(PostgresStoreFixture fixture) : IClassFixture<PostgresStoreFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_lease_reads_the_same_buffers_whatever_the_number_of_higher_priority_tasks_not_yet_due()
    {
        var schema = PostgresStoreFixture.NewSchemaName();
        try
        {
            var store = fixture.CreatePostgresStore(schema);
            await store.MigrateAsync(Ct);
            // The due work: priority 0, enough that each measured lease of 10 finds 10.
            for (var i = 0; i < 4; i++)
                await store.EnqueueManyAsync(Enumerable.Range(0, 500).Select(_ => new EnqueueRequest("q", [1])).ToArray(), Ct);
            await fixture.ScalarAsync<object>($"ANALYZE \"{schema}\".tasks");
            var before = await ExplainLeaseAsync(schema);

            var tomorrow = DateTimeOffset.UtcNow.AddDays(1);
            const int copied = 40_000;
            for (var i = 0; i < copied; i += 5_000)
                await store.EnqueueManyAsync(Enumerable.Range(0, 5_000)
                    .Select(n => new EnqueueRequest("q", [1]) { Priority = 10, RunAt = tomorrow.AddSeconds(n) }).ToArray(), Ct);
            await store.EnqueueManyAsync(Enumerable.Range(0, 2_000)
                .Select(n => new EnqueueRequest("q", [1]) { Priority = 10, RunAt = tomorrow, IdempotencyKey = "k" + n }).ToArray(), Ct);
            for (var i = 0; i < 50; i++)
                await store.EnqueueAsync(new EnqueueRequest("q", [1]) { Priority = 10, RunAt = tomorrow }, Ct);
            // Retried with a day's backoff: back to pending, due tomorrow. A priority-10 due batch, leased and failed.
            await store.EnqueueManyAsync(Enumerable.Range(0, 1_000).Select(_ => new EnqueueRequest("q", [1]) { Priority = 10, MaxAttempts = 5 }).ToArray(), Ct);
            var failed = await store.LeaseAsync("q", "w", 1_000, TimeSpan.FromMinutes(5), Ct);
            Assert.Equal(1_000, failed.Count);
            Assert.All(failed, l => Assert.Equal(10, l.Priority));
            foreach (var lease in failed)
                await store.FailAsync(lease, "later", new FailOptions { RetryDelay = TimeSpan.FromDays(1) }, Ct);
            await fixture.ScalarAsync<object>($"ANALYZE \"{schema}\".tasks");
            var notDue = await fixture.ScalarAsync<long>($"SELECT count(*) FROM \"{schema}\".tasks WHERE state = 0 AND run_at > now()");
            Assert.Equal(copied + 2_000 + 50 + 1_000, notDue);
            var after = await ExplainLeaseAsync(schema);

            // The same lease of 10 due priority-0 tasks: its cost may not follow the 43,050 tasks not yet due.
            Assert.True(after.Buffers <= before.Buffers * 3 / 2 + 16,
                $"lease of 10 due tasks: {before.Buffers} buffers with no task scheduled, {after.Buffers} with {notDue:N0} of higher priority not yet due");
            // And it leases what is due, in lease order: the priority-0 tasks, not one of the future ones.
            var leased = await store.LeaseAsync("q", "w", 100, TimeSpan.FromMinutes(5), Ct);
            Assert.Equal(100, leased.Count);
            Assert.All(leased, l => Assert.Equal(0, l.Priority));
        }
        finally
        {
            await fixture.DropSchemaAsync(schema);
        }
    }

    // The store's lease statement, leasing 10, under EXPLAIN (ANALYZE, BUFFERS) in a transaction that is rolled back.
    private async Task<(long Buffers, string Plan)> ExplainLeaseAsync(string schema)
    {
        var sql = new PostgresQueries(schema);
        await using var connection = await fixture.DataSource.OpenConnectionAsync(Ct);
        await using var tx = await connection.BeginTransactionAsync(Ct);
        await using var cmd = new NpgsqlCommand("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) " + sql.Lease, connection, tx);
        cmd.Parameters.Add(new NpgsqlParameter { Value = "q" });
        cmd.Parameters.Add(new NpgsqlParameter { Value = 10 });
        cmd.Parameters.Add(new NpgsqlParameter { Value = "w" });
        cmd.Parameters.Add(new NpgsqlParameter { Value = TimeSpan.FromMinutes(5) });
        var json = (string)(await cmd.ExecuteScalarAsync(Ct))!;
        await tx.RollbackAsync(Ct);
        using var doc = JsonDocument.Parse(json);
        var plan = doc.RootElement[0].GetProperty("Plan");
        return (plan.GetProperty("Shared Hit Blocks").GetInt64() + plan.GetProperty("Shared Read Blocks").GetInt64(), plan.ToString());
    }
}
