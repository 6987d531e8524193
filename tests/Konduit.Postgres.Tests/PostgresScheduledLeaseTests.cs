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
            // VACUUM: the failed batch's old versions would otherwise be dead entries at the head of the lease index,
            // which the first scan after them visits once; that is MVCC's cost, not the one measured here. INDEX_CLEANUP
            // ON: with fewer dead rows than 2 % of the table's pages, VACUUM AUTO skips the indexes (at 200,000 tasks
            // not yet due that left 40 buffers of dead entries in the lease index).
            await fixture.ScalarAsync<object>($"VACUUM (INDEX_CLEANUP ON, ANALYZE) \"{schema}\".tasks");
            var notDue = await fixture.ScalarAsync<long>($"SELECT count(*) FROM \"{schema}\".tasks WHERE state = 0 AND run_at > now()");
            Assert.Equal(copied + 2_000 + 50 + 1_000, notDue);
            var after = await ExplainLeaseAsync(schema);

            TestContext.Current.TestOutputHelper?.WriteLine($"lease of 10: {before.Buffers} buffers with nothing scheduled, {after.Buffers} with {notDue:N0} not yet due");
            // The same lease of 10 due priority-0 tasks: its cost may not follow the 43,050 tasks not yet due.
            Assert.True(after.Buffers <= before.Buffers + 4,
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

    [Fact]
    public async Task Scheduled_tasks_that_came_due_are_leased_in_priority_order_among_the_due_ones_before_and_after_the_sweep_promotes_them()
    {
        var schema = PostgresStoreFixture.NewSchemaName();
        try
        {
            var store = fixture.CreatePostgresStore(schema);
            await store.MigrateAsync(Ct);
            var soon = DateTimeOffset.UtcNow.AddMilliseconds(400);
            // Two rounds of the same mix: round "a" is leased while its scheduled tasks still carry the flag (the
            // lease's second head), round "b" after the sweep has promoted them into the lease index.
            foreach (var round in new[] { "a", "b" })
            {
                var queue = "q-" + round;
                await store.EnqueueAsync(new EnqueueRequest(queue, [2]) { Priority = 2 }, Ct);
                await store.EnqueueAsync(new EnqueueRequest(queue, [1]) { Priority = 1, RunAt = soon }, Ct);
                await store.EnqueueManyAsync([new EnqueueRequest(queue, [5]) { Priority = 5, RunAt = soon }], Ct);
                await store.EnqueueManyAsync([new EnqueueRequest(queue, [3]) { Priority = 3, RunAt = soon, IdempotencyKey = "k3" }], Ct);
                await store.EnqueueAsync(new EnqueueRequest(queue, [9]) { Priority = 9, RunAt = DateTimeOffset.UtcNow.AddDays(1) }, Ct);
            }
            Assert.Equal(8, await ScheduledAsync(schema));
            // Nothing but the due priority-2 task may be leased before the run-at passes; another takes its place.
            var early = await store.LeaseAsync("q-a", "w", 10, TimeSpan.FromMinutes(1), Ct);
            Assert.Equal([2], early.Select(l => l.Priority));
            await store.CompleteAsync(early[0], null, Ct);
            await store.EnqueueAsync(new EnqueueRequest("q-a", [2]) { Priority = 2 }, Ct);
            // Wait on the server clock for the three to come due.
            while (await fixture.ScalarAsync<bool>($"SELECT now() < max(run_at) FROM \"{schema}\".tasks WHERE queue = 'q-a' AND run_at < now() + interval '1 hour'"))
                await Task.Delay(20, Ct);

            var a = new List<int>();
            for (var i = 0; i < 4; i++) a.AddRange((await store.LeaseAsync("q-a", "w", 1, TimeSpan.FromMinutes(1), Ct)).Select(l => l.Priority));
            Assert.Equal([5, 3, 2, 1], a);
            Assert.Empty(await store.LeaseAsync("q-a", "w", 10, TimeSpan.FromMinutes(1), Ct));

            // The sweep promotes q-b's three (and leaves every task due tomorrow scheduled).
            await store.ReclaimExpiredAsync(Ct);
            Assert.Equal(2, await ScheduledAsync(schema));
            Assert.Equal(0, await fixture.ScalarAsync<long>($"SELECT count(*) FROM \"{schema}\".tasks WHERE scheduled AND run_at <= now()"));
            var b = (await store.LeaseAsync("q-b", "w", 10, TimeSpan.FromMinutes(1), Ct)).Select(l => l.Priority).ToList();
            Assert.Equal([5, 3, 2, 1], b);
            // A retry with a backoff is scheduled; one with none is not.
            var leases = await store.LeaseAsync("q-b", "w", 10, TimeSpan.FromMinutes(1), Ct);
            Assert.Empty(leases);
            await store.EnqueueAsync(new EnqueueRequest("q-c", [1]) { MaxAttempts = 3 }, Ct);
            await store.EnqueueAsync(new EnqueueRequest("q-c", [1]) { MaxAttempts = 3 }, Ct);
            var two = await store.LeaseAsync("q-c", "w", 2, TimeSpan.FromMinutes(1), Ct);
            await store.FailAsync(two[0], "later", new FailOptions { RetryDelay = TimeSpan.FromHours(1) }, Ct);
            await store.FailAsync(two[1], "now", new FailOptions { RetryDelay = TimeSpan.Zero }, Ct);
            Assert.Equal(1, await fixture.ScalarAsync<long>($"SELECT count(*) FROM \"{schema}\".tasks WHERE queue = 'q-c' AND scheduled"));
            Assert.Equal([two[1].TaskId], (await store.LeaseAsync("q-c", "w", 10, TimeSpan.FromMinutes(1), Ct)).Select(l => l.TaskId));
        }
        finally
        {
            await fixture.DropSchemaAsync(schema);
        }
    }

    [Fact]
    public async Task Migrating_from_version_6_marks_the_pending_tasks_not_yet_due_and_leases_the_due_ones()
    {
        var schema = PostgresStoreFixture.NewSchemaName();
        try
        {
            await fixture.CreateSchemaAtVersionAsync(schema, 6);
            // As a version-6 store left them: 5 due priority-0 tasks, 5 priority-10 due tomorrow, 1 running.
            await fixture.ScalarAsync<object>($"""
                INSERT INTO "{schema}".tasks (id, queue, state, priority, run_at, max_attempts, payload, created_at, updated_at)
                SELECT gen_random_uuid(), 'q', CASE WHEN n = 11 THEN 1 ELSE 0 END, CASE WHEN n BETWEEN 6 AND 10 THEN 10 ELSE 0 END,
                       CASE WHEN n BETWEEN 6 AND 10 THEN now() + interval '1 day' ELSE now() END, 1, '\x01', now(), now()
                FROM generate_series(1, 11) AS n
                """);
            var store = fixture.CreatePostgresStore(schema);
            await store.MigrateAsync(Ct);

            Assert.Equal(PostgresQueries.LatestVersion, await fixture.ScalarAsync<int>($"SELECT max(version) FROM \"{schema}\".schema_version"));
            Assert.Equal(5, await ScheduledAsync(schema));
            Assert.Equal(5, await fixture.ScalarAsync<long>($"SELECT count(*) FROM \"{schema}\".tasks WHERE scheduled AND run_at > now() + interval '23 hours'"));
            var leased = await store.LeaseAsync("q", "w", 20, TimeSpan.FromMinutes(1), Ct);
            Assert.Equal(5, leased.Count);
            Assert.All(leased, l => Assert.Equal(0, l.Priority));
            var stats = Assert.Single(await store.GetStatsAsync(Ct));
            Assert.Equal((5L, 0L, 6L), (stats.Pending, stats.PendingDue, stats.Running));
        }
        finally
        {
            await fixture.DropSchemaAsync(schema);
        }
    }

    private Task<long> ScheduledAsync(string schema) =>
        fixture.ScalarAsync<long>($"SELECT count(*) FROM \"{schema}\".tasks WHERE state = 0 AND scheduled");

    // The store's lease statement, leasing 10, under EXPLAIN (ANALYZE, BUFFERS) in a transaction that is rolled back.
    // Buffers = what its scans of the tasks indexes that order pending work read (every index scan but the primary key's,
    // which re-finds the 10 picked rows): the statement's own writes (index inserts for the leased rows) grow with the
    // table's other indexes and are not what item 2 is about.
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
        return (OrderScanBuffers(plan), plan.ToString());
    }

    private static long OrderScanBuffers(JsonElement node)
    {
        var own = node.TryGetProperty("Index Name", out var index) && index.GetString() is { } name
                  && name.StartsWith("tasks_", StringComparison.Ordinal) && name != "tasks_pkey"
            ? node.GetProperty("Shared Hit Blocks").GetInt64() + node.GetProperty("Shared Read Blocks").GetInt64()
            : 0;
        return own + (node.TryGetProperty("Plans", out var children) ? children.EnumerateArray().Sum(OrderScanBuffers) : 0);
    }
}
