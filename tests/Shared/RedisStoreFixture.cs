using Konduit.Testing.Conformance;
using StackExchange.Redis;
using Xunit;

namespace Konduit.Redis.Tests;

/// <summary>
/// The Redis adapter's conformance fixture: one connection per test process, one fresh key prefix per fixture
/// instance (<c>kt-&lt;run&gt;-&lt;fixture&gt;</c>, see <see cref="NewKeyPrefix"/>), whose keys are deleted with the fixture.
/// Every prefix of a test run shares the run's id, so the test project's <c>RedisTestRun</c> also deletes the keys of
/// tests that used a private prefix, with one scan at the end. Linked into the Redis tests and the benchmarks.
/// </summary>
/// <remarks>
/// The server is, in order: <c>KONDUIT_TEST_REDIS</c> (set by <c>source .services/env</c> after
/// <c>scripts/services.sh up</c>); else a Testcontainers <c>redis:7</c> when a Docker engine answers; else the
/// fixture fails with instructions.
/// </remarks>
public class RedisStoreFixture : TaskStoreFixture
{
    public const string EnvironmentVariable = "KONDUIT_TEST_REDIS";

    private static readonly SemaphoreSlim ServerGate = new(1, 1);
    // One multiplexer for the whole test process, never disposed: fixtures of many test classes share it.
    private static ConnectionMultiplexer? s_connection;

    private ConnectionMultiplexer? _connection;

    /// <summary>This fixture's key prefix.</summary>
    public string KeyPrefix { get; } = NewKeyPrefix();

    /// <summary>The shared connection (available after <see cref="InitializeAsync"/>).</summary>
    public ConnectionMultiplexer Connection => _connection ?? throw new InvalidOperationException("The fixture is not initialized.");

    /// <summary>The configuration string of the test server.</summary>
    public static string? Configuration { get; private set; }

    /// <summary>The start of every key prefix of this test run (<c>kt-</c> and 8 hex digits and <c>-</c>).</summary>
    public static string RunPrefix { get; } = "kt-" + Guid.NewGuid().ToString("N")[..8] + "-";

    /// <summary>A key prefix no other fixture or test uses; its keys are deleted at the end of the run.</summary>
    public static string NewKeyPrefix() => RunPrefix + Guid.NewGuid().ToString("N")[..8];

    /// <inheritdoc />
    public override async ValueTask InitializeAsync() => _connection = await SharedConnectionAsync();

    /// <inheritdoc />
    public override ValueTask<ITaskStore> CreateStoreAsync(Action<TaskStoreOptions>? configure = null) =>
        ValueTask.FromResult<ITaskStore>(CreateRedisStore(configure: configure));

    /// <summary>A store over this fixture's server (and, unless given, its prefix), disposed with the fixture.</summary>
    public RedisTaskStore CreateRedisStore(string? keyPrefix = null, Action<TaskStoreOptions>? configure = null)
    {
        var options = new RedisTaskStoreOptions { KeyPrefix = keyPrefix ?? KeyPrefix };
        configure?.Invoke(options);
        return Track(new RedisTaskStore(options, Connection));
    }

    /// <summary>Every key under <paramref name="keyPrefix"/> (this fixture's by default), found by SCAN.</summary>
    public Task<List<string>> KeysAsync(string? keyPrefix = null) =>
        // Queue keys are {prefix:queue}…, the store's own {prefix}:…. The server is shared with other test runs
        // and benchmarks, so the scan matches this prefix only (large pages: the key space may be big).
        ScanAsync(Connection, "{" + (keyPrefix ?? KeyPrefix) + "[:}]*");

    /// <summary>Every key matching <paramref name="pattern"/>.</summary>
    internal static async Task<List<string>> ScanAsync(ConnectionMultiplexer connection, string pattern)
    {
        var server = connection.GetServers().First(s => !s.IsReplica);
        var keys = new List<string>();
        await foreach (var key in server.KeysAsync(pattern: pattern, pageSize: 10_000)) keys.Add(key!);
        return keys;
    }

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync(); // the stores first, then their keys
        // This prefix's keys go with the fixture (the benchmarks start a fixture per scenario on a shared server);
        // the test project's RedisTestRun also sweeps the run's private prefixes at the end.
        if (_connection is null) return;
        var keys = await KeysAsync();
        var db = _connection.GetDatabase();
        foreach (var chunk in keys.Chunk(500)) await db.KeyDeleteAsync([.. chunk.Select(k => (RedisKey)k)]);
    }

    private static async Task<ConnectionMultiplexer> SharedConnectionAsync()
    {
        await ServerGate.WaitAsync();
        try
        {
            if (s_connection is not null) return s_connection;
            var configuration = await TestServer.LocateAsync(EnvironmentVariable, "Redis",
                "run `scripts/services.sh up && source .services/env`", Konduit.Tests.Shared.RedisTestContainer.StartAsync);
            Configuration = configuration;
            // allowAdmin: the Redis-specific tests flush the script cache (SCRIPT FLUSH) and list keys.
            s_connection = await ConnectionMultiplexer.ConnectAsync(configuration + ",allowAdmin=true");
            return s_connection;
        }
        finally
        {
            ServerGate.Release();
        }
    }

    /// <summary>The connection if one was made (null when no test needed the server).</summary>
    internal static ConnectionMultiplexer? ConnectionIfCreated => s_connection;

}
