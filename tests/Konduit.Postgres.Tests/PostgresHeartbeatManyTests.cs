using Npgsql;
using Xunit;

namespace Konduit.Postgres.Tests;

/// <summary>
/// <see cref="PostgresTaskStore.HeartbeatManyAsync"/>: one statement renews all of a worker's leases (issue 11
/// item 3), fenced like CompleteMany, HOT like the single heartbeat. The contract's behaviour is also in the
/// conformance suite; these are the Postgres-specific promises.
/// </summary>
public sealed class PostgresHeartbeatManyTests(PostgresStoreFixture fixture) : IClassFixture<PostgresStoreFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Queue() => "hbm." + Guid.NewGuid().ToString("N")[..8];

    private async Task<(PostgresTaskStore Store, IReadOnlyList<TaskLease> Leases)> LeasedAsync(int count, PostgresTaskStore? store = null)
    {
        store ??= fixture.CreatePostgresStore();
        var queue = Queue();
        await store.EnqueueManyAsync(Enumerable.Range(0, count).Select(i => new EnqueueRequest(queue, [(byte)i])).ToArray(), Ct);
        var leases = await store.LeaseAsync(queue, "w", count, TimeSpan.FromMinutes(1), Ct);
        Assert.Equal(count, leases.Count);
        return (store, leases);
    }

    [Fact]
    public async Task HeartbeatMany_renews_valid_leases_in_input_order_and_reports_the_lost_ones()
    {
        var (store, leases) = await LeasedAsync(5);
        await store.CompleteAsync(leases[1], null, Ct); // no longer running
        await fixture.ScalarAsync<object>( // expired by the server clock, still marked running
            $"UPDATE \"{fixture.Schema}\".tasks SET lease_expires_at = now() - interval '1 second' WHERE id = $1", leases[2].TaskId);
        var stale = leases[3] with { LeaseToken = leases[3].LeaseToken - 1 }; // an older holder's copy
        var unknown = leases[0] with { TaskId = Guid.NewGuid() };

        var result = await store.HeartbeatManyAsync(
            [leases[4], leases[1], leases[0], stale, leases[2], unknown, leases[4], leases[3]], TimeSpan.FromMinutes(10), Ct);

        Assert.Equal([leases[4].TaskId, leases[0].TaskId, leases[4].TaskId, leases[3].TaskId], result.Renewed.Select(l => l.TaskId));
        Assert.Equal([leases[1].TaskId, leases[3].TaskId, leases[2].TaskId, unknown.TaskId], result.Lost);
        foreach (var renewed in result.Renewed)
        {
            // The expiry is the server's new one, ~10 minutes out instead of ~1, and the store holds exactly it.
            Assert.True(renewed.ExpiresAt > leases[0].ExpiresAt.AddMinutes(8), renewed.ExpiresAt.ToString("O"));
            Assert.Equal(renewed.ExpiresAt, (await store.GetAsync(renewed.TaskId, Ct)).LeaseExpiresAt);
            Assert.Equal(TaskState.Running, (await store.GetAsync(renewed.TaskId, Ct)).State);
        }
        // The lost ones were not touched.
        Assert.Null((await store.GetAsync(leases[1].TaskId, Ct)).LeaseExpiresAt);
        Assert.True((await store.GetAsync(leases[2].TaskId, Ct)).LeaseExpiresAt < DateTimeOffset.UtcNow.AddMinutes(1));
        // The renewed leases are as good as the originals: they complete.
        Assert.Empty(await store.CompleteManyAsync([new TaskCompletion(result.Renewed[0]), new TaskCompletion(result.Renewed[1])], Ct));
    }

    [Fact]
    public async Task HeartbeatMany_of_nothing_or_with_a_null_entry_changes_nothing()
    {
        var (store, leases) = await LeasedAsync(1);
        var before = (await store.GetAsync(leases[0].TaskId, Ct)).LeaseExpiresAt;

        var empty = await store.HeartbeatManyAsync([], TimeSpan.FromMinutes(10), Ct);
        Assert.Empty(empty.Renewed);
        Assert.Empty(empty.Lost);
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => store.HeartbeatManyAsync([leases[0], null!], TimeSpan.FromMinutes(10), Ct));
        Assert.Equal("leases", ex.ParamName);
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.HeartbeatManyAsync(leases, TimeSpan.Zero, Ct));

        Assert.Equal(before, (await store.GetAsync(leases[0].TaskId, Ct)).LeaseExpiresAt);
    }

    [Fact]
    public async Task HeartbeatMany_sends_one_statement_for_all_leases()
    {
        // A data source of our own whose logger sees every command Npgsql executes for this store.
        using var log = new CapturingLoggerFactory();
        var builder = new NpgsqlDataSourceBuilder(PostgresStoreFixture.ConnectionString);
        builder.UseLoggerFactory(log);
        await using var dataSource = builder.Build();
        await using var store = new PostgresTaskStore(new PostgresTaskStoreOptions { Schema = fixture.Schema }, dataSource);
        var (_, leases) = await LeasedAsync(50, store);

        log.Clear();
        var result = await store.HeartbeatManyAsync(leases, TimeSpan.FromMinutes(5), Ct);

        Assert.Equal(50, result.Renewed.Count);
        // Statements on the tasks table only: the store's notifier may still be sending the enqueue's wake-up.
        var executed = log.Executed().Where(c => c.Contains($"\"{fixture.Schema}\".tasks", StringComparison.Ordinal)).ToList();
        Assert.True(executed.Count == 1, "one statement for 50 leases; executed:\n" + string.Join("\n", log.Executed()));
        Assert.Contains("unnest", executed[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Batched_heartbeats_are_hot_updates()
    {
        // A table of its own: HOT needs room on the row's page, and the class's shared table fills its pages with
        // other tests' row versions that a concurrent snapshot (another test class) keeps from being pruned. Ten
        // tasks' insert, lease and heartbeat versions fit one fresh 8 KB page even if nothing is pruned.
        var schema = PostgresStoreFixture.NewSchemaName();
        try
        {
            var store = fixture.CreatePostgresStore(schema); // disposed with the fixture
            await store.MigrateAsync(Ct);
            var (_, leases) = await LeasedAsync(10, store);
            await AssertHeartbeatManyIsHotAsync(schema, leases);
        }
        finally
        {
            await fixture.DropSchemaAsync(schema);
        }
    }

    private async Task AssertHeartbeatManyIsHotAsync(string schema, IReadOnlyList<TaskLease> leases)
    {
        // The store's own batch statement, in a transaction of ours, so its HOT count is read back exactly.
        var sql = new PostgresQueries(schema);
        await using var connection = await fixture.DataSource.OpenConnectionAsync(Ct);
        await using var tx = await connection.BeginTransactionAsync(Ct);
        // Deltas: the backend's pending counters may still hold earlier, unflushed statements of this pooled connection.
        var (updatedBefore, hotBefore) = await UpdateCountsAsync(schema, connection, tx);
        await using (var beat = new NpgsqlCommand(sql.HeartbeatMany, connection, tx))
        {
            beat.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = [.. leases.Select(l => l.TaskId)] });
            beat.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [.. leases.Select(l => l.LeaseToken)] });
            beat.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = TimeSpan.FromMinutes(2) });
            Assert.Equal(leases.Count, await beat.ExecuteNonQueryAsync(Ct));
        }
        var (updated, hot) = await UpdateCountsAsync(schema, connection, tx);
        Assert.Equal(leases.Count, updated - updatedBefore);
        Assert.Equal(leases.Count, hot - hotBefore); // every row stayed on its page, no index entries
        await tx.RollbackAsync(Ct);
    }

    private static async Task<(long Updated, long Hot)> UpdateCountsAsync(string schema, NpgsqlConnection connection, NpgsqlTransaction tx)
    {
        await using var counts = new NpgsqlCommand(
            $"SELECT pg_stat_get_xact_tuples_updated('\"{schema}\".tasks'::regclass), pg_stat_get_xact_tuples_hot_updated('\"{schema}\".tasks'::regclass)",
            connection, tx);
        await using var reader = await counts.ExecuteReaderAsync(Ct);
        Assert.True(await reader.ReadAsync(Ct));
        return (reader.GetInt64(0), reader.GetInt64(1));
    }
}
