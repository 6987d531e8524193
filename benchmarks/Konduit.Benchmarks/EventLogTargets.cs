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
        ("cassandra", env.Cassandra is null ? BenchEnvironment.NoCassandra : null, ct => CreateCassandraAsync(env.Cassandra!, ct)),
    ];

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

    /// <summary>The Cassandra log through our CQL client (two rows per event: by task, by queue-hour) in its own keyspace.</summary>
    private static async Task<EventLogTarget> CreateCassandraAsync(string contactPoint, CancellationToken cancellationToken)
    {
        var keyspace = Targets.NewName("events");
        var options = CqlSessionOptions.FromContactPoint(contactPoint);
        options.RequestTimeout = TimeSpan.FromSeconds(30);
        var session = new CqlSession(options);
        var log = new CassandraTaskEventLog(new CassandraTaskEventLogOptions
        {
            Keyspace = keyspace,
            TimeToLive = TimeSpan.FromHours(1),
            RequestTimeout = TimeSpan.FromSeconds(30),
            WriteConsistency = CassandraConsistency.LocalQuorum,
        }, session);
        await log.MigrateAsync(cancellationToken);
        var where = $"Cassandra at {contactPoint} (protocol v{session.ProtocolVersion}), keyspace `{keyspace}` (RF 1, LOCAL_QUORUM writes)";
        return new EventLogTarget("cassandra", where, log, null, async () =>
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
