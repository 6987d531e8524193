using Npgsql;
using Xunit;

namespace Konduit.Postgres.Tests;

/// <summary>
/// Binary COPY bulk enqueue (same results as the array statement, falls back where COPY cannot keep the semantics)
/// and the version 2 bloat settings (heartbeats are HOT updates, per-table autovacuum and fillfactor).
/// </summary>
public sealed class PostgresBulkAndBloatTests(PostgresStoreFixture fixture) : IClassFixture<PostgresStoreFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Queue() => "bulk." + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task BulkEnqueue_stores_every_field_in_request_order_with_server_clock_times()
    {
        var store = fixture.CreatePostgresStore();
        var queue = Queue();
        var policy = new RetryPolicy { InitialDelay = TimeSpan.FromSeconds(3), MaxDelay = TimeSpan.FromMinutes(1), Multiplier = 3, Jitter = 0 };
        var requests = Enumerable.Range(0, 50).Select(i => new EnqueueRequest(queue, [(byte)i, 7])
        {
            Priority = i % 3,
            MaxAttempts = 4,
            Tenant = i % 2 == 0 ? "acme" : null,
            Headers = i % 5 == 0 ? new Dictionary<string, string> { ["traceparent"] = "00-abc-01" } : null,
            RetryPolicy = i == 1 ? policy : null,
        }).ToArray();
        var serverBefore = await fixture.ScalarAsync<DateTime>("SELECT now()");

        var results = await store.BulkEnqueueAsync(requests, Ct);

        Assert.Equal(requests.Length, results.Count);
        Assert.All(results, r => Assert.True(r.Created));
        // Ids are time-ordered in request order, so enqueue order within the batch is request order.
        Assert.Equal(results.Select(r => r.TaskId).Order().ToArray(), results.Select(r => r.TaskId).ToArray());
        for (var i = 0; i < requests.Length; i++)
        {
            var task = await store.GetAsync(results[i].TaskId, Ct);
            Assert.Equal(TaskState.Pending, task.State);
            Assert.Equal(queue, task.Queue);
            Assert.Equal(requests[i].Payload, task.Payload);
            Assert.Equal(requests[i].Priority, task.Priority);
            Assert.Equal(4, task.MaxAttempts);
            Assert.Equal(0, task.Attempts);
            Assert.Equal(0, task.LeaseToken);
            Assert.Equal(requests[i].Tenant, task.Tenant);
            Assert.Null(task.IdempotencyKey);
            Assert.Empty(task.Errors);
            Assert.Equal(requests[i].Headers?.Count ?? 0, task.Headers.Count);
            // Server clock, like the INSERT path: created = updated = run_at = the statement's now().
            Assert.True(task.EnqueuedAt >= new DateTimeOffset(DateTime.SpecifyKind(serverBefore, DateTimeKind.Utc)));
            Assert.Equal(task.EnqueuedAt, task.RunAt);
            Assert.Equal(task.EnqueuedAt, task.UpdatedAt);
        }
        // The stored retry policy reads back equal, and the tasks lease like any others (priority first).
        var leases = await store.LeaseAsync(queue, "w", 100, TimeSpan.FromMinutes(1), Ct);
        Assert.Equal(requests.Length, leases.Count);
        Assert.Equal(2, leases[0].Priority);
        Assert.Equal(policy, leases.Single(l => l.TaskId == results[1].TaskId).RetryPolicy);
    }

    [Fact]
    public async Task BulkEnqueue_keeps_explicit_run_at_values()
    {
        var store = fixture.CreatePostgresStore();
        var queue = Queue();
        var runAt = DateTimeOffset.UtcNow.AddHours(2);
        var results = await store.BulkEnqueueAsync(
            Enumerable.Range(0, 10).Select(i => new EnqueueRequest(queue, [(byte)i]) { RunAt = runAt.AddMinutes(i) }).ToArray(), Ct);

        for (var i = 0; i < results.Count; i++)
        {
            var task = await store.GetAsync(results[i].TaskId, Ct);
            Assert.True((task.RunAt - runAt.AddMinutes(i)).Duration() < TimeSpan.FromMilliseconds(1));
        }
        Assert.Empty(await store.LeaseAsync(queue, "w", 10, TimeSpan.FromMinutes(1), Ct)); // not due yet
    }

    [Fact]
    public async Task BulkEnqueue_with_idempotency_keys_or_mixed_run_at_keeps_the_batch_semantics()
    {
        var store = fixture.CreatePostgresStore();
        var queue = Queue();
        var first = await store.EnqueueAsync(new EnqueueRequest(queue, [1]) { IdempotencyKey = "taken" }, Ct);

        // A key already taken and a key repeated inside the batch resolve to their first task, as in EnqueueManyAsync.
        var keyed = await store.BulkEnqueueAsync(
        [
            new EnqueueRequest(queue, [2]) { IdempotencyKey = "taken" },
            new EnqueueRequest(queue, [3]) { IdempotencyKey = "new" },
            new EnqueueRequest(queue, [4]) { IdempotencyKey = "new" },
            new EnqueueRequest(queue, [5]),
        ], Ct);
        Assert.Equal(new EnqueueResult(first.TaskId, false), keyed[0]);
        Assert.True(keyed[1].Created);
        Assert.Equal(new EnqueueResult(keyed[1].TaskId, false), keyed[2]);
        Assert.True(keyed[3].Created);

        var later = DateTimeOffset.UtcNow.AddHours(1);
        var mixed = await store.BulkEnqueueAsync([new EnqueueRequest(queue, [6]) { RunAt = later }, new EnqueueRequest(queue, [7])], Ct);
        Assert.True((await store.GetAsync(mixed[0].TaskId, Ct)).RunAt > DateTimeOffset.UtcNow.AddMinutes(30));
        Assert.True((await store.GetAsync(mixed[1].TaskId, Ct)).RunAt < DateTimeOffset.UtcNow.AddMinutes(1));
    }

    [Fact]
    public async Task EnqueueMany_of_a_large_keyless_batch_goes_through_copy_with_the_same_results()
    {
        var store = fixture.CreatePostgresStore();
        var queue = Queue();
        var count = PostgresTaskStore.CopyThreshold + 1;
        var results = await store.EnqueueManyAsync(Enumerable.Range(0, count).Select(i => new EnqueueRequest(queue, BitConverter.GetBytes(i))).ToArray(), Ct);

        Assert.Equal(count, results.Count);
        Assert.All(results, r => Assert.True(r.Created));
        var stats = (await store.GetStatsAsync(Ct)).Single(s => s.Queue == queue);
        Assert.Equal(count, stats.Pending);
        var leases = await store.LeaseAsync(queue, "w", 1000, TimeSpan.FromMinutes(1), Ct);
        Assert.Equal(Enumerable.Range(0, count), leases.Select(l => BitConverter.ToInt32(l.Payload)));
    }

    [Fact]
    public async Task A_schema_still_at_version_1_gets_the_array_statement()
    {
        // A node on the new library before the migration ran (rolling upgrade): COPY would need the version 2
        // column defaults, so the store checks the version once and keeps the array statement.
        var schema = PostgresStoreFixture.NewSchemaName();
        try
        {
            await fixture.CreatePostgresStore(schema).MigrateAsync(Ct);
            await fixture.ScalarAsync<object>($"""
                ALTER TABLE "{schema}".tasks ALTER COLUMN run_at DROP DEFAULT, ALTER COLUMN created_at DROP DEFAULT,
                    ALTER COLUMN updated_at DROP DEFAULT;
                DELETE FROM "{schema}".schema_version WHERE version >= 2
                """);
            var store = fixture.CreatePostgresStore(schema); // a new store: nothing cached
            var queue = Queue();
            var results = await store.BulkEnqueueAsync(Enumerable.Range(0, 5).Select(i => new EnqueueRequest(queue, [(byte)i])).ToArray(), Ct);
            Assert.Equal(5, (await store.GetStatsAsync(Ct)).Single(s => s.Queue == queue).Pending);
            Assert.All(results, r => Assert.True(r.Created));
        }
        finally
        {
            await fixture.DropSchemaAsync(schema);
        }
    }

    [Fact]
    public async Task Heartbeats_are_hot_updates_and_the_tasks_table_carries_its_bloat_settings()
    {
        // A private table: a HOT update also needs room on its page, and on the shared table other tests' rows fill the
        // pages this test's rows share (CI saw 18 of 20 heartbeats HOT). Five small rows and their versions fit in one
        // page's free space whatever the xmin horizon is, so a non-HOT heartbeat here can only mean an indexed column changed.
        var schema = PostgresStoreFixture.NewSchemaName();
        try
        {
            var store = fixture.CreatePostgresStore(schema);
            await store.MigrateAsync(Ct);
            var queue = Queue();
            await store.EnqueueManyAsync(Enumerable.Range(0, 5).Select(i => new EnqueueRequest(queue, [(byte)i])).ToArray(), Ct);
            var leases = await store.LeaseAsync(queue, "w", 5, TimeSpan.FromMinutes(1), Ct);
            Assert.Equal(5, leases.Count);

            // The store's own heartbeat statement, in a transaction of ours, so its HOT count is read back exactly.
            var sql = new PostgresQueries(schema);
            await using var connection = await fixture.DataSource.OpenConnectionAsync(Ct);
            await using var tx = await connection.BeginTransactionAsync(Ct);
            // Deltas: the backend's pending counters may still hold earlier, unflushed statements of this pooled connection.
            var (updatedBefore, hotBefore) = await UpdateCountsAsync(connection, tx, schema);
            foreach (var lease in leases)
            {
                await using var beat = new NpgsqlCommand(sql.Heartbeat, connection, tx);
                beat.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = lease.TaskId });
                beat.Parameters.Add(new NpgsqlParameter<long> { TypedValue = lease.LeaseToken });
                beat.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = TimeSpan.FromMinutes(2) });
                Assert.NotNull(await beat.ExecuteScalarAsync(Ct));
            }
            var (updated, hot) = await UpdateCountsAsync(connection, tx, schema);
            Assert.Equal(leases.Count, updated - updatedBefore);
            Assert.Equal(leases.Count, hot - hotBefore); // every heartbeat stayed on its page, no index entries
            await tx.RollbackAsync(Ct);

            var options = await fixture.ScalarAsync<string[]>(
                "SELECT reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = 'tasks'",
                schema);
            Assert.Contains("fillfactor=80", options);
            Assert.Contains("autovacuum_vacuum_scale_factor=0.01", options);
            Assert.Contains("autovacuum_analyze_scale_factor=0.02", options);
        }
        finally
        {
            await fixture.DropSchemaAsync(schema);
        }
    }

    private static async Task<(long Updated, long Hot)> UpdateCountsAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string schema)
    {
        // The table by name as a parameter: to_regclass resolves the quoted schema-qualified name on the server.
        await using var counts = new NpgsqlCommand(
            "SELECT pg_stat_get_xact_tuples_updated(to_regclass($1)), pg_stat_get_xact_tuples_hot_updated(to_regclass($1))",
            connection, tx);
        counts.Parameters.Add(new NpgsqlParameter<string> { TypedValue = $"\"{schema}\".tasks" });
        await using var reader = await counts.ExecuteReaderAsync(Ct);
        Assert.True(await reader.ReadAsync(Ct));
        return (reader.GetInt64(0), reader.GetInt64(1));
    }
}
