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
    // One multiplexer per server for the whole test process, never disposed: fixtures of many test classes share it.
    private static readonly Dictionary<string, ConnectionMultiplexer> s_connections = new(StringComparer.Ordinal);
    private static readonly Dictionary<string, string> s_configurations = new(StringComparer.Ordinal);

    private ConnectionMultiplexer? _connection;

    /// <summary>This fixture's key prefix.</summary>
    public string KeyPrefix { get; } = NewKeyPrefix();

    /// <summary>The shared connection (available after <see cref="InitializeAsync"/>).</summary>
    public ConnectionMultiplexer Connection => _connection ?? throw new InvalidOperationException("The fixture is not initialized.");

    /// <summary>The connection the fixture's stores run on: <see cref="Connection"/> unless a subclass connects them as another user.</summary>
    protected virtual ConnectionMultiplexer StoreConnection => Connection;

    /// <summary>The configuration string of the single-node test server (set once a fixture has connected).</summary>
    public static string? Configuration => s_configurations.GetValueOrDefault(EnvironmentVariable);

    /// <summary>The configuration string of this fixture's server.</summary>
    public string ServerConfiguration => s_configurations[ServerVariable];

    /// <summary>The environment variable naming this fixture's server.</summary>
    protected virtual string ServerVariable => EnvironmentVariable;

    /// <summary>How to start this fixture's server, for the failure message when it is missing.</summary>
    protected virtual string StartInstructions => "run `scripts/services.sh up && source .services/env`";

    /// <summary>A fallback when the variable is not set (a container), or null for none.</summary>
    protected virtual Func<Task<string>> Fallback => Konduit.Tests.Shared.RedisTestContainer.StartAsync;

    /// <summary>The start of every key prefix of this test run (<c>kt-</c> and 8 hex digits and <c>-</c>).</summary>
    public static string RunPrefix { get; } = "kt-" + Guid.NewGuid().ToString("N")[..8] + "-";

    /// <summary>A key prefix no other fixture or test uses; its keys are deleted at the end of the run.</summary>
    public static string NewKeyPrefix() => RunPrefix + Guid.NewGuid().ToString("N")[..8];

    /// <inheritdoc />
    public override async ValueTask InitializeAsync() => _connection = await SharedConnectionAsync(ServerVariable, StartInstructions, Fallback);

    /// <inheritdoc />
    public override ValueTask<ITaskStore> CreateStoreAsync(Action<TaskStoreOptions>? configure = null) =>
        ValueTask.FromResult<ITaskStore>(CreateRedisStore(configure: configure));

    /// <summary>A store over this fixture's server (and, unless given, its prefix), disposed with the fixture.</summary>
    public RedisTaskStore CreateRedisStore(string? keyPrefix = null, Action<TaskStoreOptions>? configure = null)
    {
        var options = new RedisTaskStoreOptions { KeyPrefix = keyPrefix ?? KeyPrefix };
        configure?.Invoke(options);
        return Track(new RedisTaskStore(options, StoreConnection));
    }

    /// <summary>Every key under <paramref name="keyPrefix"/> (this fixture's by default), found by SCAN.</summary>
    public Task<List<string>> KeysAsync(string? keyPrefix = null) =>
        // Queue keys are {prefix:queue}…, id maps {prefix#n}:ids, the store's own {prefix}:…. The server is shared with other test runs
        // and benchmarks, so the scan matches this prefix only (large pages: the key space may be big).
        ScanAsync(Connection, "{" + (keyPrefix ?? KeyPrefix) + "[:}#]*");

    /// <summary>Every key matching <paramref name="pattern"/> (on every master, for a cluster).</summary>
    internal static async Task<List<string>> ScanAsync(ConnectionMultiplexer connection, string pattern)
    {
        var keys = new List<string>();
        foreach (var server in connection.GetServers().Where(s => s.IsConnected && !s.IsReplica))
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
        // One key per DEL: on a cluster a multi-key DEL must stay in one slot, and a prefix spans many.
        foreach (var chunk in keys.Chunk(500)) await Task.WhenAll(chunk.Select(k => db.KeyDeleteAsync(k)));
    }

    private static async Task<ConnectionMultiplexer> SharedConnectionAsync(string variable, string instructions, Func<Task<string>> fallback)
    {
        await ServerGate.WaitAsync();
        try
        {
            if (s_connections.TryGetValue(variable, out var existing)) return existing;
            var configuration = await TestServer.LocateAsync(variable, "Redis", instructions, fallback);
            // allowAdmin: the Redis-specific tests flush the script cache (SCRIPT FLUSH) and list keys.
            var connection = await ConnectionMultiplexer.ConnectAsync(configuration + ",allowAdmin=true");
            s_configurations[variable] = configuration;
            s_connections[variable] = connection;
            return connection;
        }
        finally
        {
            ServerGate.Release();
        }
    }

    /// <summary>The connections made (none when no test needed a server).</summary>
    internal static IReadOnlyList<ConnectionMultiplexer> ConnectionsCreated
    {
        // Read after the last test: nothing adds connections any more.
        get => [.. s_connections.Values];
    }

}

/// <summary>
/// The conformance fixture on a real Redis Cluster (3 masters, 3 replicas): <c>KONDUIT_TEST_REDIS_CLUSTER</c>, set
/// by <c>scripts/services.sh up</c>. No container fallback: a missing cluster is a failure that says how to start it.
/// </summary>
public sealed class RedisClusterStoreFixture : RedisStoreFixture
{
    /// <summary>The variable naming the cluster's nodes.</summary>
    public const string ClusterVariable = "KONDUIT_TEST_REDIS_CLUSTER";

    /// <inheritdoc />
    protected override string ServerVariable => ClusterVariable;

    /// <inheritdoc />
    protected override string StartInstructions =>
        "run `scripts/services.sh up && source .services/env` (it starts a 3-master Redis Cluster on 127.0.0.1:26401-26406)";

    /// <inheritdoc />
    protected override Func<Task<string>> Fallback => static () =>
        Task.FromException<string>(new InvalidOperationException("there is no container fallback for a cluster"));
}
