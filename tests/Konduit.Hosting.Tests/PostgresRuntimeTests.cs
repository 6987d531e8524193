using Konduit.Postgres;
using Npgsql;
using Xunit;

namespace Konduit.Hosting.Tests;

/// <summary>One migrated schema per test class on the server named by <c>KONDUIT_TEST_POSTGRES</c>; dropped at the end.</summary>
public sealed class PostgresRuntimeFixture : IAsyncLifetime
{
    public const string EnvironmentVariable = "KONDUIT_TEST_POSTGRES";

    private NpgsqlDataSource? _dataSource;
    private PostgresTaskStore? _store;

    public string Schema { get; } = "konduit_rt_" + Guid.NewGuid().ToString("N")[..8];

    public string ConnectionString { get; private set; } = "";

    public PostgresTaskStore Store => _store ?? throw new InvalidOperationException("not initialized");

    public static string RequireConnectionString() =>
        Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } cs
            ? cs
            : throw new InvalidOperationException(
                $"{EnvironmentVariable} is not set: run scripts/services.sh up && source .services/env");

    public async ValueTask InitializeAsync()
    {
        ConnectionString = RequireConnectionString();
        _dataSource = NpgsqlDataSource.Create(ConnectionString);
        _store = new PostgresTaskStore(new PostgresTaskStoreOptions { Schema = Schema }, _dataSource);
        await _store.MigrateAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (_store is not null) await _store.DisposeAsync();
        if (_dataSource is not null)
        {
            await using (var cmd = _dataSource.CreateCommand($"DROP SCHEMA IF EXISTS {Schema} CASCADE"))
                await cmd.ExecuteNonQueryAsync();
            await _dataSource.DisposeAsync();
        }
    }
}

/// <summary>The runtime tests over PostgreSQL (one store per class, isolated by queue name).</summary>
public sealed class PostgresRuntimeTests(PostgresRuntimeFixture fixture) : RuntimeTests, IClassFixture<PostgresRuntimeFixture>
{
    protected override TestStore CreateStore() => new(fixture.Store);
}
