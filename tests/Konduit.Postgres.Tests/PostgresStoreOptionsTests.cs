using Npgsql;
using Xunit;

namespace Konduit.Postgres.Tests;

public sealed class PostgresStoreOptionsTests(PostgresStoreFixture fixture) : IClassFixture<PostgresStoreFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Data_source_is_shared_not_owned()
    {
        // The store must not dispose an application's data source.
        await using var given = NpgsqlDataSource.Create(PostgresStoreFixture.ConnectionString);
        var store = new PostgresTaskStore(new PostgresTaskStoreOptions { Schema = fixture.Schema }, given);
        await store.GetStatsAsync(Ct);
        await store.DisposeAsync();
        await using var connection = await given.OpenConnectionAsync(Ct);
        Assert.Equal(System.Data.ConnectionState.Open, connection.State);
    }

    [Fact]
    public void Schema_must_be_a_plain_identifier()
    {
        foreach (var bad in new[] { "", "Konduit", "1abc", "a-b", "a\"b", "a;drop", new string('a', 64), "abc\n" })
        {
            Assert.ThrowsAny<ArgumentException>(() => new PostgresTaskStore(
                new PostgresTaskStoreOptions { Schema = bad, ConnectionString = "Host=127.0.0.1" }));
        }
        Assert.Throws<ArgumentException>(() => new PostgresTaskStore(new PostgresTaskStoreOptions()));
    }

    [Fact]
    public async Task A_store_built_from_a_connection_string_skips_the_pool_reset_unless_the_string_sets_it()
    {
        await using var own = new PostgresTaskStore(new PostgresTaskStoreOptions { ConnectionString = PostgresStoreFixture.ConnectionString, Schema = fixture.Schema });
        Assert.True(new NpgsqlConnectionStringBuilder(own.DataSource.ConnectionString).NoResetOnClose);
        foreach (var (keyword, value) in new[] { ("No Reset On Close", false), ("noresetonclose", false), ("No Reset On Close", true) })
        {
            await using var told = new PostgresTaskStore(new PostgresTaskStoreOptions
            {
                ConnectionString = $"{PostgresStoreFixture.ConnectionString};{keyword}={value}",
                Schema = fixture.Schema,
            });
            Assert.Equal(value, new NpgsqlConnectionStringBuilder(told.DataSource.ConnectionString).NoResetOnClose);
        }
        // An application's data source is used as it is.
        await using var given = NpgsqlDataSource.Create(PostgresStoreFixture.ConnectionString);
        await using var onGiven = new PostgresTaskStore(new PostgresTaskStoreOptions { Schema = fixture.Schema }, given);
        Assert.Same(given, onGiven.DataSource);
        Assert.False(new NpgsqlConnectionStringBuilder(onGiven.DataSource.ConnectionString).NoResetOnClose);
    }

    [Fact]
    public async Task Store_calls_leave_no_session_state_on_a_connection_the_pool_does_not_reset()
    {
        // The premise of skipping the reset: one physical connection (pool of 1), every kind of call the store makes on
        // it, then the connection as the next user gets it.
        var connectionString = new NpgsqlConnectionStringBuilder(PostgresStoreFixture.ConnectionString) { MaxPoolSize = 1 }.ConnectionString;
        await using var store = new PostgresTaskStore(new PostgresTaskStoreOptions { ConnectionString = connectionString, Schema = fixture.Schema });
        await store.MigrateAsync(Ct); // an advisory lock
        var queue = "pg.session." + Guid.NewGuid().ToString("N");
        await store.EnqueueAsync(new EnqueueRequest(queue, [1]), Ct); // the inline NOTIFY and its synchronous_commit
        await store.EnqueueManyAsync([new EnqueueRequest(queue, [2]), new EnqueueRequest(queue, [3]) { IdempotencyKey = "k" }], Ct);
        var leases = await store.LeaseAsync(queue, "w", 3, TimeSpan.FromMinutes(1), Ct);
        Assert.Equal(3, leases.Count);
        await store.CompleteAsync(leases[0], null, Ct);
        await store.FailAsync(leases[1], "boom", null, Ct);
        var next = await store.CompleteAndLeaseAsync(new TaskCompletion(leases[2]), "w", 1, TimeSpan.FromMinutes(1), Ct);
        Assert.True(next.Completed);
        await store.PauseQueueAsync(queue, Ct);
        await store.ResumeQueueAsync(queue, Ct);
        await store.GetStatsAsync(Ct);
        await store.ReclaimExpiredAsync(Ct);

        await using var connection = await store.DataSource.OpenConnectionAsync(Ct);
        await using var probe = new NpgsqlCommand(
            """
            SELECT current_setting('synchronous_commit'), current_setting('lock_timeout'),
                   (SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory'),
                   (SELECT count(*) FROM pg_listening_channels()),
                   (SELECT count(*) FROM pg_class WHERE relpersistence = 't')
            """, connection);
        await using var reader = await probe.ExecuteReaderAsync(Ct);
        Assert.True(await reader.ReadAsync(Ct));
        var server = fixture.ScalarAsync<string>("SELECT current_setting('synchronous_commit')");
        Assert.Equal((await server, "0", 0L, 0L, 0L), (reader.GetString(0), reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4)));
    }

    [Fact]
    public async Task Constructing_a_store_does_not_connect()
    {
        // Lazy connection: an unreachable server does not stop the store (or a DI container) from being built.
        await using var store = new PostgresTaskStore(new PostgresTaskStoreOptions { ConnectionString = "Host=127.0.0.1;Port=1;Timeout=1" });
        Assert.Equal("postgres", store.Name);
        var ex = await Assert.ThrowsAsync<StoreUnavailableException>(() => store.GetStatsAsync(Ct));
        Assert.IsAssignableFrom<NpgsqlException>(ex.InnerException);
    }
}
