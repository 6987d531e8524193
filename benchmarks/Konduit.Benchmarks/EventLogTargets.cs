using Konduit.Cassandra;
using Konduit.Cassandra.Cql;
using Konduit.InMemory;
using Konduit.Postgres;
using Npgsql;

namespace Konduit.Benchmarks;

/// <summary>An <see cref="ITaskEventLog"/> the event-append scenario drives, in its own schema or keyspace (dropped at the end).</summary>
public sealed class EventLogTarget : IAsyncDisposable
{
    private readonly Func<ITaskEventLog>? _recreate;
    private readonly Func<ValueTask> _drop;
    private readonly NpgsqlDataSource? _wal;

    /// <param name="recreate">For a log held in process: a new, empty one for each mode.</param>
    private EventLogTarget(string name, string where, ITaskEventLog log, Func<ITaskEventLog>? recreate, Func<ValueTask> drop, NpgsqlDataSource? wal = null)
    {
        _wal = wal;
        Name = name;
        Where = where;
        Log = log;
        _recreate = recreate;
        _drop = drop;
    }

    public string Name { get; }
    public string Where { get; }
    public ITaskEventLog Log { get; private set; }

    /// <summary>Every event log, in-memory reference first. Unavailable ones (no server configured) carry the reason.</summary>
    public static IReadOnlyList<(string Name, string? Why, Func<CancellationToken, Task<EventLogTarget>> Create)> All(BenchEnvironment env) =>
    [
        ("inmemory", null, _ => Task.FromResult(new EventLogTarget("inmemory", "in process (no server)", new InMemoryTaskEventLog(), () => new InMemoryTaskEventLog(), () => ValueTask.CompletedTask))),
        ("postgres", env.Postgres is null ? BenchEnvironment.NoPostgres : null, ct => CreatePostgresAsync(env.Postgres!, ct)),
        ("cassandra", env.Cassandra is null ? BenchEnvironment.NoCassandra : null, ct => CreateCassandraAsync("cassandra", env.Cassandra!, 16, 1, ct)),
        // Issue 14: the same log with one shard per bucket (the layout before sharding), and on the two-node ring.
        ("cassandra-1shard", env.Cassandra is null ? BenchEnvironment.NoCassandra : null, ct => CreateCassandraAsync("cassandra-1shard", env.Cassandra!, 1, 1, ct)),
        ("cassandra-ring", Ring is null ? NoRing : null, ct => CreateCassandraAsync("cassandra-ring", Ring!, 16, 2, ct)),
    ];

    private static string? Ring => Environment.GetEnvironmentVariable("KONDUIT_BENCH_CASSANDRA_RING") is { Length: > 0 } v ? v
        : Environment.GetEnvironmentVariable("KONDUIT_TEST_CASSANDRA_RING") is { Length: > 0 } t ? t : null;

    private const string NoRing = "no Cassandra ring: set KONDUIT_BENCH_CASSANDRA_RING (scripts/services.d/cassandra.sh ring-up)";

    /// <summary>The Postgres table log (one multi-row INSERT … ON CONFLICT DO NOTHING per append) in its own schema.</summary>
    private static async Task<EventLogTarget> CreatePostgresAsync(string connectionString, CancellationToken cancellationToken)
    {
        var schema = Targets.NewName("events");
        var dataSource = NpgsqlDataSource.Create(connectionString);
        var log = new PostgresTaskEventLog(new PostgresTaskEventLogOptions { Schema = schema, TimeToLive = TimeSpan.FromHours(1) }, dataSource);
        await log.MigrateAsync(cancellationToken);
        var where = await PostgresAdmin.DescribeAsync(dataSource, connectionString, $"schema `{schema}` (`task_events`, 3 indexes)", cancellationToken);
        return new EventLogTarget("postgres", where, log, null, async () =>
        {
            await log.DisposeAsync();
            await PostgresAdmin.DropSchemaAsync(dataSource, schema);
            await dataSource.DisposeAsync();
        }, dataSource);
    }

    /// <summary>The Cassandra log through our CQL client (two rows per event: by task, by queue-bucket-shard) in its own keyspace.</summary>
    private static async Task<EventLogTarget> CreateCassandraAsync(string name, string contactPoints, int shards, int replicationFactor, CancellationToken cancellationToken)
    {
        var keyspace = Targets.NewName("events");
        var options = CqlSessionOptions.FromContactPoint(contactPoints);
        options.RequestTimeout = TimeSpan.FromSeconds(30);
        options.DiscoverPeers = true;
        var session = new CqlSession(options);
        var log = new CassandraTaskEventLog(new CassandraTaskEventLogOptions
        {
            Keyspace = keyspace,
            Replication = $"{{'class': 'SimpleStrategy', 'replication_factor': {replicationFactor}}}",
            TimeToLive = TimeSpan.FromHours(1),
            RequestTimeout = TimeSpan.FromSeconds(30),
            ShardCount = shards,
            WriteConsistency = CassandraConsistency.LocalQuorum,
        }, session);
        await log.MigrateAsync(cancellationToken);
        var where = $"Cassandra at {contactPoints} ({session.Hosts.Count} node(s), protocol v{session.ProtocolVersion}), keyspace `{keyspace}` (RF {replicationFactor}, {shards} shard(s), LOCAL_QUORUM writes)";
        return new EventLogTarget(name, where, log, null, async () =>
        {
            try
            {
                await session.ExecuteAsync($"DROP KEYSPACE IF EXISTS {keyspace}", options: new CqlQueryOptions { Prepare = false, Timeout = TimeSpan.FromSeconds(60) });
            }
            finally
            {
                await log.DisposeAsync();
                await session.DisposeAsync();
            }
        });
    }

    /// <summary>Between modes: the in-memory log starts empty again (it would otherwise hold every event of the run); server logs keep their tables.</summary>
    /// <summary>The PostgreSQL server's WAL position (server-wide) for the Postgres log; null otherwise.</summary>
    public Task<long?> WalPositionAsync(CancellationToken cancellationToken) =>
        _wal is null ? Task.FromResult<long?>(null) : PostgresAdmin.WalPositionAsync(_wal, cancellationToken);

    public async Task ResetAsync()
    {
        if (_recreate is null) return;
        await Log.DisposeAsync();
        Log = _recreate();
    }

    public async ValueTask DisposeAsync()
    {
        if (_recreate is not null) await Log.DisposeAsync();
        await _drop();
    }
}
