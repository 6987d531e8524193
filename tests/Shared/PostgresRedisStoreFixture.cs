using Konduit.Testing.Conformance;
using Konduit.Tests.Shared;
using Npgsql;
using StackExchange.Redis;
using Xunit;

namespace Konduit.PostgresRedis.Tests;

/// <summary>
/// The hybrid store's fixture: the servers of <c>KONDUIT_TEST_POSTGRES</c> and <c>KONDUIT_TEST_REDIS</c>
/// (<c>scripts/services.sh up &amp;&amp; source .services/env</c>), one fresh schema and one fresh key prefix per
/// fixture instance, both removed at the end.
/// </summary>
public class PostgresRedisStoreFixture : TaskStoreFixture
{
    public const string PostgresVariable = "KONDUIT_TEST_POSTGRES";
    public const string RedisVariable = "KONDUIT_TEST_REDIS";
    private const string HowToStart = "run `scripts/services.sh up && source .services/env`";

    private static readonly SemaphoreSlim ServerGate = new(1, 1);
    // Shared by every fixture of the test process, never disposed (the process exit closes them).
    private static string? s_postgres;
    private static NpgsqlDataSource? s_dataSource;
    private static ConnectionMultiplexer? s_redis;


    public string Schema { get; } = "konduit_h_" + Guid.NewGuid().ToString("N")[..8];

    public string KeyPrefix { get; } = "kh-" + Guid.NewGuid().ToString("N")[..8];

    public NpgsqlDataSource DataSource => s_dataSource ?? throw new InvalidOperationException("The fixture is not initialized.");

    public ConnectionMultiplexer Redis => s_redis ?? throw new InvalidOperationException("The fixture is not initialized.");

    /// <summary>The Postgres connection string of the test server.</summary>
    public static string PostgresConnectionString => s_postgres ?? Required(PostgresVariable);

    public override async ValueTask InitializeAsync()
    {
        await ServerGate.WaitAsync();
        try
        {
            s_postgres ??= await TestServer.LocateAsync(PostgresVariable, "PostgreSQL", HowToStart, PostgresTestContainer.StartAsync);
            s_dataSource ??= NpgsqlDataSource.Create(s_postgres);
            s_redis ??= await ConnectionMultiplexer.ConnectAsync(await TestServer.LocateAsync(RedisVariable, "Redis", HowToStart, RedisTestContainer.StartAsync) + ",allowAdmin=true");
        }
        finally
        {
            ServerGate.Release();
        }
        await using var store = new PostgresRedisTaskStore(Options(), DataSource, Redis);
        await store.MigrateAsync();
    }

    public override ValueTask<ITaskStore> CreateStoreAsync(Action<TaskStoreOptions>? configure = null) =>
        ValueTask.FromResult<ITaskStore>(CreateHybridStore(configure: configure));

    /// <summary>The dispatch mode of every store this fixture creates.</summary>
    protected virtual DispatchMode Dispatch => DispatchMode.Signal;

    /// <summary>Options for this fixture's schema, prefix and dispatch mode.</summary>
    public PostgresRedisTaskStoreOptions Options() => new() { Schema = Schema, KeyPrefix = KeyPrefix, Dispatch = Dispatch };

    /// <summary>A hybrid store over this fixture's servers (or <paramref name="redis"/>), disposed with the fixture.</summary>
    public PostgresRedisTaskStore CreateHybridStore(IConnectionMultiplexer? redis = null, Action<PostgresRedisTaskStoreOptions>? configure = null)
    {
        var options = Options();
        configure?.Invoke(options);
        return Track(new PostgresRedisTaskStore(options, DataSource, redis ?? Redis));
    }

    /// <summary>Runs a scalar query (test-authored SQL).</summary>
    public async Task<T> ScalarAsync<T>(string sql, params object[] args)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        foreach (var arg in args) cmd.Parameters.Add(new NpgsqlParameter { Value = arg });
        return (T)(await cmd.ExecuteScalarAsync(TestContext.Current.CancellationToken))!;
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync(); // the stores first, then their schema and keys
        if (s_dataSource is not null)
        {
            await using var cmd = s_dataSource.CreateCommand($"DROP SCHEMA IF EXISTS \"{Schema}\" CASCADE");
            await cmd.ExecuteNonQueryAsync();
        }
        if (s_redis is not null)
        {
            var server = s_redis.GetServers().First(s => !s.IsReplica);
            var db = s_redis.GetDatabase();
            await foreach (var key in server.KeysAsync(pattern: "{" + KeyPrefix + "*", pageSize: 1000)) await db.KeyDeleteAsync(key);
        }
    }

    private static string Required(string variable)
    {
        var value = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrWhiteSpace(value))
            throw new InvalidOperationException(
                $"{variable} is not set: run scripts/services.sh up && source .services/env");
        return value;
    }
}

/// <summary>The hybrid fixture in its opt-in <see cref="DispatchMode.ClaimIds"/> mode (ADR 007), as River runs its suite per driver mode.</summary>
public sealed class PostgresRedisClaimIdsStoreFixture : PostgresRedisStoreFixture
{
    protected override DispatchMode Dispatch => DispatchMode.ClaimIds;
}
