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
        var store = fixture.CreatePostgresStore();
        await store.DisposeAsync();
        await using var connection = await fixture.DataSource.OpenConnectionAsync(Ct);
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
    public async Task Constructing_a_store_does_not_connect()
    {
        // Lazy connection: an unreachable server does not stop the store (or a DI container) from being built.
        await using var store = new PostgresTaskStore(new PostgresTaskStoreOptions { ConnectionString = "Host=127.0.0.1;Port=1;Timeout=1" });
        Assert.Equal("postgres", store.Name);
        var ex = await Assert.ThrowsAsync<StoreUnavailableException>(() => store.GetStatsAsync(Ct));
        Assert.IsAssignableFrom<NpgsqlException>(ex.InnerException);
    }
}
