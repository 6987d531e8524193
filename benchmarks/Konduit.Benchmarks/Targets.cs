using System.Diagnostics;
using System.Globalization;
using System.Text;
using Konduit.Postgres;
using Konduit.Postgres.Tests;
using Konduit.PostgresRedis.Tests;
using Konduit.Redis.Tests;
using Konduit.Testing.Conformance;
using Konduit.Tests;
using Npgsql;
using StackExchange.Redis;

namespace Konduit.Benchmarks;

/// <summary>
/// One thing the benchmarks drive: a raw baseline (SQL or Redis Streams, no library code) or a store. Every scenario
/// is written once against this shape, so a new store joins every table by adding its conformance fixture to <see cref="Targets.All"/>.
/// </summary>
public interface IBenchTarget : IAsyncDisposable
{
    /// <summary>Row label in the report: <c>raw-sql</c>, <c>raw-redis</c>, <c>postgres</c>, <c>inmemory</c>, …</summary>
    string Name { get; }

    /// <summary>Where it runs, for the report header: server, version, database and the schema or key prefix of this run.</summary>
    string Where { get; }

    /// <summary>The store, when this target is one (the worker runtime needs it); null for a raw baseline.</summary>
    ITaskStore? Store { get; }

    /// <summary>The raw target this one is reported as a ratio of (<c>raw-sql</c>, <c>raw-redis</c>), or null.</summary>
    string? Baseline { get; }

    /// <summary>True when <see cref="RelationBytesAsync"/> measures a table (WAL and table sizes are reported; the churn scenario runs).</summary>
    bool MeasuresStorage { get; }

    /// <summary>One task with an idempotency key (the seed's INSERT … ON CONFLICT; raw Redis: one XADD).</summary>
    Task EnqueueOneAsync(string queue, long n, CancellationToken cancellationToken);

    /// <summary>A batch without keys, in one round trip (arrays/unnest, pipelined XADDs; <paramref name="copy"/>: binary COPY where supported).</summary>
    Task EnqueueBatchAsync(string queue, long first, int count, bool copy, CancellationToken cancellationToken);

    /// <summary>True when <see cref="EnqueueBatchAsync"/> has a binary COPY path.</summary>
    bool SupportsCopy { get; }

    /// <summary>Leases up to <paramref name="max"/> tasks and completes them (one by id for 1, one = ANY round trip otherwise); returns how many.</summary>
    Task<int> CycleAsync(string queue, string worker, int max, CancellationToken cancellationToken);

    /// <summary>True when <see cref="CompleteAndLeaseCycleAsync"/> is implemented.</summary>
    bool SupportsCompleteAndLease => false;

    /// <summary>
    /// One step of the unbatched chained cycle (issue 15, complete-and-lease-next): completes the task this worker holds and
    /// leases its next in one call (a store: <see cref="ITaskStore.CompleteAndLeaseAsync"/>; raw-sql: one statement of
    /// the same shape). A worker's first step only leases. Returns how many tasks were leased (0: drained).
    /// </summary>
    Task<int> CompleteAndLeaseCycleAsync(string queue, string worker, CancellationToken cancellationToken) =>
        throw new NotSupportedException($"{Name} has no complete-and-lease cycle");

    /// <summary>Leases <paramref name="count"/> prefilled tasks of <paramref name="queue"/> and returns a way to heartbeat each of them.</summary>
    Task<IHeartbeats> LeaseForHeartbeatsAsync(string queue, string worker, int count, CancellationToken cancellationToken);

    /// <summary>Table plus index bytes of the task table(s); null when not applicable.</summary>
    Task<long?> RelationBytesAsync(CancellationToken cancellationToken);

    /// <summary>The PostgreSQL server's WAL position in bytes (server-wide), null for targets without one.</summary>
    Task<long?> WalPositionAsync(CancellationToken cancellationToken);

    /// <summary>Every table and index of the target's own schema, with vacuum statistics; null for targets without one.</summary>
    Task<StorageSnapshot?> StorageAsync(CancellationToken cancellationToken);

    /// <summary>True when <see cref="PinHorizonAsync"/> can hold the server's xmin horizon (PostgreSQL-backed targets).</summary>
    bool CanPinHorizon { get; }

    /// <summary>Opens a transaction holding an xid on the target's server (committed on dispose); null when <see cref="CanPinHorizon"/> is false.</summary>
    Task<HorizonPin?> PinHorizonAsync(CancellationToken cancellationToken);

    /// <summary>Empties the target (between scenarios, so every scenario starts on an empty table).</summary>
    Task ResetAsync(CancellationToken cancellationToken);

    /// <summary>A raw baseline's idle pickup (enqueue, wake-up, lease) without the library; null for the rest.</summary>
    IPickupFloor? PickupFloor => null;
}

/// <summary>
/// The idle pickup of a raw baseline: the least a push wake-up can cost on this server, measured the way the steady
/// scenario measures the runtime (issue 15: "the floor on this box"), so that the report gives the store's pickup as a
/// ratio to it in the same run.
/// </summary>
public interface IPickupFloor
{
    /// <summary>Starts the consumer of <paramref name="queue"/>: it leases on each wake-up and reports every task to <paramref name="probe"/>.</summary>
    Task<IAsyncDisposable> StartConsumerAsync(string queue, RuntimeProbe probe, CancellationToken cancellationToken);

    /// <summary>Enqueues one task carrying <see cref="System.Diagnostics.Stopwatch.GetTimestamp"/> and wakes the consumer.</summary>
    Task EnqueueTimestampedAsync(string queue, CancellationToken cancellationToken);

    /// <summary>The consumer's lease calls that returned tasks (the pickup's second store call).</summary>
    LatencyHistogram LeaseLatency { get; }

    /// <summary>Starts <see cref="LeaseLatency"/> over (after the warm-up).</summary>
    void ResetLeaseLatency();
}

/// <summary>Held leases whose heartbeat the scenario sends (one lease extension per call).</summary>
public interface IHeartbeats
{
    int Count { get; }

    Task BeatAsync(int index, CancellationToken cancellationToken);
}

/// <summary>Where the services are: environment variables (docker-compose.bench.yml or .services/env).</summary>
public sealed record BenchEnvironment(string? Postgres, string? Redis, string? Cassandra = null, string? Kafka = null, string? RedisCluster = null)
{
    public static BenchEnvironment FromEnvironment() => new(
        Variable("KONDUIT_BENCH_POSTGRES", "KONDUIT_TEST_POSTGRES"),
        Variable("KONDUIT_BENCH_REDIS", "KONDUIT_TEST_REDIS"),
        Variable("KONDUIT_BENCH_CASSANDRA", "KONDUIT_TEST_CASSANDRA"),
        Variable("KONDUIT_BENCH_KAFKA", "KONDUIT_TEST_KAFKA"),
        Variable("KONDUIT_BENCH_REDIS_CLUSTER", "KONDUIT_TEST_REDIS_CLUSTER"));

    private static string? Variable(string bench, string test) =>
        Environment.GetEnvironmentVariable(bench) is { Length: > 0 } v ? v : Environment.GetEnvironmentVariable(test) is { Length: > 0 } t ? t : null;

    internal const string NoPostgres = "no PostgreSQL: set KONDUIT_BENCH_POSTGRES (or source .services/env)";
    internal const string NoRedis = "no Redis: set KONDUIT_BENCH_REDIS (or source .services/env)";
    internal const string NoRedisCluster = "no Redis Cluster: set KONDUIT_BENCH_REDIS_CLUSTER (or source .services/env)";
    internal const string NoCassandra = "no Cassandra: set KONDUIT_BENCH_CASSANDRA (or source .services/env)";
}

/// <summary>A named way to build a target (for a store: its conformance fixture, see <see cref="StoreTarget{TFixture}"/>).</summary>
public sealed record TargetFactory(string Name, bool Available, string? Why, Func<CancellationToken, Task<IBenchTarget>> Create);

public static class Targets
{
    /// <summary>Name prefix of everything a run creates (schemas, key prefixes, keyspaces): prefix + random suffix,
    /// dropped at the end, so concurrent runs (a bench next to the smoke test) never touch each other's data.</summary>
    public const string Prefix = "konduit_bench";

    internal static string NewName(string kind) => $"{Prefix}_{kind}_{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>Every target, raw baselines first. Unavailable ones (no server configured) are listed with the reason.</summary>
    public static IReadOnlyList<TargetFactory> All(BenchEnvironment env)
    {
        var pg = env.Postgres;
        var redis = env.Redis;
        var cluster = env.RedisCluster;
        return
        [
            new("raw-sql", pg is not null, pg is null ? BenchEnvironment.NoPostgres : null, ct => RawSqlTarget.CreateAsync(pg!, ct)),
            new("raw-redis", redis is not null, redis is null ? BenchEnvironment.NoRedis : null, ct => RawRedisTarget.CreateAsync("raw-redis", redis!, ct)),
            // The same streams on a Redis Cluster (issue 16): each queue's stream in its own slot, queues spread over the masters.
            new("raw-redis-cluster", cluster is not null, cluster is null ? BenchEnvironment.NoRedisCluster : null, ct => RawRedisTarget.CreateAsync("raw-redis-cluster", cluster!, ct)),
            // The stores: each built by its conformance fixture (tests/Shared), so whatever passes the suite runs here.
            Store("postgres", "raw-sql", Needs(env, postgres: true), () => new PostgresStoreFixture(), new StoreHooks<PostgresStoreFixture>
            {
                Describe = (f, ct) => PostgresAdmin.DescribeAsync(f.DataSource, f.DataSource.ConnectionString, SchemaPerScenario(f.Schema), ct),
                RelationBytes = (f, ct) => PostgresAdmin.RelationBytesAsync(f.DataSource, TaskTables(f.Schema), ct),
                WalPosition = (f, ct) => PostgresAdmin.WalPositionAsync(f.DataSource, ct),
                Storage = (f, ct) => PostgresAdmin.StorageAsync(f.DataSource, f.Schema, ct),
                PinHorizon = (f, ct) => HorizonPin.OpenAsync(f.DataSource, ct),
                // Konduit.Postgres's binary COPY bulk enqueue (the "Konduit.Postgres binary COPY" row): its own API, not ITaskStore's.
                CopyEnqueue = (store, requests, ct) => ((PostgresTaskStore)store).BulkEnqueueAsync(requests, ct),
            }),
            Store("inmemory", null, Needs(env), () => new InMemoryStoreFixture(), new StoreHooks<InMemoryStoreFixture>
            {
                Describe = (_, _) => Task.FromResult("in process (no server)"),
            }),
            Store("redis", "raw-redis", Needs(env, redis: true), () => new RedisStoreFixture(), new StoreHooks<RedisStoreFixture>
            {
                Describe = async (f, _) => $"{await RedisKeys.DescribeAsync(f.Connection)}, a fresh key prefix per scenario (`{{{f.KeyPrefix}*`, …)",
            }),
            Store("redis-cluster", "raw-redis-cluster", Needs(env, redisCluster: true), () => new RedisClusterStoreFixture(), new StoreHooks<RedisClusterStoreFixture>
            {
                Describe = async (f, _) => $"{await RedisKeys.DescribeAsync(f.Connection)}, a fresh key prefix per scenario (`{{{f.KeyPrefix}*`, …)",
            }),
            Store("postgresredis", "raw-sql", Needs(env, postgres: true, redis: true), () => new PostgresRedisStoreFixture(), new StoreHooks<PostgresRedisStoreFixture>
            {
                Describe = async (f, ct) => await PostgresAdmin.DescribeAsync(f.DataSource, f.DataSource.ConnectionString, SchemaPerScenario(f.Schema), ct)
                    + $"; {await RedisKeys.DescribeAsync(f.Redis)}, keys `{{{f.KeyPrefix}*` (one prefix per scenario)",
                RelationBytes = (f, ct) => PostgresAdmin.RelationBytesAsync(f.DataSource, TaskTables(f.Schema), ct),
                WalPosition = (f, ct) => PostgresAdmin.WalPositionAsync(f.DataSource, ct),
                Storage = (f, ct) => PostgresAdmin.StorageAsync(f.DataSource, f.Schema, ct),
                PinHorizon = (f, ct) => HorizonPin.OpenAsync(f.DataSource, ct),
            }),
        ];
    }

    /// <summary>A store's entry: its fixture type and optional extras; nothing else about the store is known here.</summary>
    private static TargetFactory Store<TFixture>(string name, string? baseline, Servers servers, Func<TFixture> newFixture, StoreHooks<TFixture> hooks)
        where TFixture : TaskStoreFixture =>
        new(name, servers.Available, servers.Why, ct =>
        {
            servers.PointFixtures();
            return StoreTarget<TFixture>.CreateAsync(name, baseline, newFixture, hooks, ct);
        });

    private sealed record Servers(bool Available, string? Why, Action PointFixtures);

    /// <summary>
    /// Whether the servers a target needs are configured, and how to point the fixtures at them: the fixtures read
    /// KONDUIT_TEST_*, the benchmarks prefer KONDUIT_BENCH_* (docker-compose.bench.yml), so the bench's choice is
    /// copied into this process's test variables before a fixture looks.
    /// </summary>
    private static Servers Needs(BenchEnvironment env, bool postgres = false, bool redis = false, bool redisCluster = false)
    {
        if (postgres && env.Postgres is null) return new(false, BenchEnvironment.NoPostgres, () => { });
        if (redis && env.Redis is null) return new(false, BenchEnvironment.NoRedis, () => { });
        if (redisCluster && env.RedisCluster is null) return new(false, BenchEnvironment.NoRedisCluster, () => { });
        return new(true, null, () =>
        {
            if (postgres) Environment.SetEnvironmentVariable(PostgresStoreFixture.EnvironmentVariable, env.Postgres);
            if (redis) Environment.SetEnvironmentVariable(RedisStoreFixture.EnvironmentVariable, env.Redis);
            if (redisCluster) Environment.SetEnvironmentVariable(RedisClusterStoreFixture.ClusterVariable, env.RedisCluster);
        });
    }

    private static string SchemaPerScenario(string first) => $"a fresh schema per scenario (`{first}`, …)";

    // A partitioned table counts with its partitions (RelationBytesAsync walks pg_partition_tree).
    private static string[] TaskTables(string schema) => [$"{schema}.tasks", $"{schema}.task_history", $"{schema}.task_keys"];

    internal static byte[] Payload(long n) => Encoding.UTF8.GetBytes("{\"n\":" + n.ToString(System.Globalization.CultureInfo.InvariantCulture) + "}");
}

/// <summary>
/// The ceiling: the seed's golden-path statements (../shared/seeds/000, "Postgres golden path task registry") run
/// through Npgsql with no library code, prepared, on the seed's own table in its own schema.
/// </summary>
public sealed class RawSqlTarget : IBenchTarget, IPickupFloor
{
    private readonly NpgsqlDataSource _dataSource;
    /// <summary>The schema the statements below are written against; each run replaces it with its own.</summary>
    private const string S = "konduit_bench_raw";
    private readonly string _schema;
    private readonly string _insertOne, _insertArrays, _copy, _lease, _completeById, _completeByAny, _heartbeat, _completeAndLease, _insertTimestamped;
    // The task each worker of the chained cycle holds, by (queue, worker).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string, string), long> _held = new();

    // The seed's DDL, verbatim apart from the schema; enum and jsonb payload included.
    private const string Ddl = $"""
        CREATE SCHEMA {S};
        CREATE TYPE {S}.task_status AS ENUM ('pending','running','succeeded','failed','canceled');
        CREATE TABLE {S}.task (
          id                BIGSERIAL PRIMARY KEY,
          queue             TEXT NOT NULL DEFAULT 'default',
          idempotency_key   TEXT UNIQUE,
          status            {S}.task_status NOT NULL DEFAULT 'pending',
          priority          INT NOT NULL DEFAULT 0,
          scheduled_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
          attempts          INT NOT NULL DEFAULT 0,
          max_attempts      INT NOT NULL DEFAULT 10,
          lease_owner       TEXT,
          lease_expires_at  TIMESTAMPTZ,
          payload           JSONB NOT NULL,
          result            JSONB,
          error             TEXT,
          created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
          updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        CREATE INDEX idx_task_pending ON {S}.task (queue, status, scheduled_at, priority DESC) WHERE status = 'pending';
        CREATE INDEX idx_task_lease ON {S}.task (lease_expires_at) WHERE status = 'running';
        """;

    internal const string InsertOne = $"INSERT INTO {S}.task (queue, idempotency_key, payload) VALUES ($1, $2, $3::jsonb) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id";
    internal const string InsertArrays = $"INSERT INTO {S}.task (queue, payload) SELECT $1, p FROM unnest($2::jsonb[]) AS u(p)";
    internal const string Copy = $"COPY {S}.task (queue, payload) FROM STDIN (FORMAT BINARY)";
    // The seed's dequeue with LIMIT as a parameter.
    internal const string Lease = $"""
        WITH picked AS (
          SELECT id FROM {S}.task
          WHERE status='pending' AND queue = $1 AND scheduled_at <= now()
          ORDER BY priority DESC, scheduled_at
          FOR UPDATE SKIP LOCKED
          LIMIT $3
        )
        UPDATE {S}.task t
        SET status='running', lease_owner = $2, lease_expires_at = now() + interval '30 seconds', updated_at = now()
        FROM picked
        WHERE t.id = picked.id
        RETURNING t.id, t.payload::text
        """;
    // The unbatched chained cycle's statement, shaped like the store's (PostgresQueries.CompleteAndLease): the seed's
    // complete by id ($3 the held task) and its dequeue of one, in one statement and one round trip.
    internal const string CompleteAndLease = $"""
        WITH done AS (
          UPDATE {S}.task SET status='succeeded', result=NULL, updated_at=now() WHERE id=$3 AND lease_owner=$2 AND status='running'
          RETURNING id
        ),
        picked AS (
          SELECT id FROM {S}.task
          WHERE status='pending' AND queue = $1 AND scheduled_at <= now()
          ORDER BY priority DESC, scheduled_at
          FOR UPDATE SKIP LOCKED
          LIMIT 1
        )
        UPDATE {S}.task t
        SET status='running', lease_owner = $2, lease_expires_at = now() + interval '30 seconds', updated_at = now()
        FROM picked
        WHERE t.id = picked.id
        RETURNING t.id, t.payload::text, (SELECT count(*) FROM done)
        """;
    // The pickup floor's enqueue, as the store sends its own when idle: the insert, then the wake-up in the same round
    // trip as a transaction of its own (error barriers), which need not wait for its commit to reach disk. The
    // insert takes the queue and the payload (a JSON number: the timestamp), the NOTIFY the channel and the queue.
    internal const string InsertTimestamped = $"INSERT INTO {S}.task (queue, payload) VALUES ($1, $2::jsonb)";
    internal const string Notify = "SELECT pg_notify($1, $2), set_config('synchronous_commit', 'off', true)";
    internal const string CompleteById = $"UPDATE {S}.task SET status='succeeded', result=NULL, updated_at=now() WHERE id=$1 AND lease_owner=$2 AND status='running'";
    internal const string CompleteByAny = $"UPDATE {S}.task SET status='succeeded', result=NULL, updated_at=now() WHERE id = ANY($1) AND lease_owner=$2 AND status='running'";
    // The seed's "Heartbeat (extend lease)".
    internal const string Heartbeat = $"UPDATE {S}.task SET lease_expires_at = now() + interval '30 seconds', updated_at=now() WHERE id=$1 AND lease_owner=$2 AND status='running'";

    private RawSqlTarget(NpgsqlDataSource dataSource, string schema, string where)
    {
        _dataSource = dataSource;
        _schema = schema;
        Where = where;
        // The statements are written against S and pointed at this run's schema once, here.
        _insertOne = Sql(InsertOne);
        _insertArrays = Sql(InsertArrays);
        _copy = Sql(Copy);
        _lease = Sql(Lease);
        _completeById = Sql(CompleteById);
        _completeByAny = Sql(CompleteByAny);
        _heartbeat = Sql(Heartbeat);
        _completeAndLease = Sql(CompleteAndLease);
        _insertTimestamped = Sql(InsertTimestamped);
    }

    private string Sql(string text) => text.Replace(S + ".", _schema + ".", StringComparison.Ordinal);

    public static async Task<IBenchTarget> CreateAsync(string connectionString, CancellationToken cancellationToken)
    {
        var ds = NpgsqlDataSource.Create(connectionString);
        var schema = Targets.NewName("raw");
        await using (var cmd = ds.CreateCommand(Ddl.Replace(S, schema, StringComparison.Ordinal)))
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        var where = await PostgresAdmin.DescribeAsync(ds, connectionString, $"schema `{schema}` (a plain `task` table, no library)", cancellationToken);
        return new RawSqlTarget(ds, schema, where);
    }

    public string Name => "raw-sql";
    public string Where { get; }
    public ITaskStore? Store => null;
    public string? Baseline => null;
    public bool MeasuresStorage => true;
    public bool CanPinHorizon => true;
    public bool SupportsCopy => true;

    public async Task EnqueueOneAsync(string queue, long n, CancellationToken cancellationToken)
    {
        await using var conn = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var cmd = new NpgsqlCommand(_insertOne, conn);
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = queue });
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = queue + ":" + n.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Encoding.UTF8.GetString(Targets.Payload(n)) });
        await cmd.PrepareAsync(cancellationToken);
        await cmd.ExecuteScalarAsync(cancellationToken);
    }

    public async Task EnqueueBatchAsync(string queue, long first, int count, bool copy, CancellationToken cancellationToken)
    {
        await using var conn = await _dataSource.OpenConnectionAsync(cancellationToken);
        if (copy)
        {
            await using var writer = await conn.BeginBinaryImportAsync(_copy, cancellationToken);
            for (var i = 0; i < count; i++)
            {
                await writer.StartRowAsync(cancellationToken);
                await writer.WriteAsync(queue, NpgsqlTypes.NpgsqlDbType.Text, cancellationToken);
                await writer.WriteAsync(Encoding.UTF8.GetString(Targets.Payload(first + i)), NpgsqlTypes.NpgsqlDbType.Jsonb, cancellationToken);
            }
            await writer.CompleteAsync(cancellationToken);
            return;
        }
        var payloads = new string[count];
        for (var i = 0; i < count; i++) payloads[i] = Encoding.UTF8.GetString(Targets.Payload(first + i));
        await using var cmd = new NpgsqlCommand(_insertArrays, conn);
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = queue });
        cmd.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = payloads, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Jsonb });
        await cmd.PrepareAsync(cancellationToken);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<int> CycleAsync(string queue, string worker, int max, CancellationToken cancellationToken)
    {
        await using var conn = await _dataSource.OpenConnectionAsync(cancellationToken);
        var ids = await LeaseAsync(conn, queue, worker, max, cancellationToken);
        if (ids.Count == 0) return 0;
        if (max == 1)
        {
            await using var complete = new NpgsqlCommand(_completeById, conn);
            complete.Parameters.Add(new NpgsqlParameter<long> { TypedValue = ids[0] });
            complete.Parameters.Add(new NpgsqlParameter<string> { TypedValue = worker });
            await complete.PrepareAsync(cancellationToken);
            await complete.ExecuteNonQueryAsync(cancellationToken);
        }
        else
        {
            await using var complete = new NpgsqlCommand(_completeByAny, conn);
            complete.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [.. ids] });
            complete.Parameters.Add(new NpgsqlParameter<string> { TypedValue = worker });
            await complete.PrepareAsync(cancellationToken);
            await complete.ExecuteNonQueryAsync(cancellationToken);
        }
        return ids.Count;
    }

    public bool SupportsCompleteAndLease => true;

    public async Task<int> CompleteAndLeaseCycleAsync(string queue, string worker, CancellationToken cancellationToken)
    {
        await using var conn = await _dataSource.OpenConnectionAsync(cancellationToken);
        if (!_held.TryGetValue((queue, worker), out var held))
        {
            var ids = await LeaseAsync(conn, queue, worker, 1, cancellationToken);
            if (ids.Count == 0) return 0;
            _held[(queue, worker)] = ids[0];
            return 1;
        }
        await using var cmd = new NpgsqlCommand(_completeAndLease, conn);
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = queue });
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = worker });
        cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = held });
        await cmd.PrepareAsync(cancellationToken);
        await using var reader = await ExecuteRetryingDeadlocksAsync(cmd, cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            _held.TryRemove((queue, worker), out _);
            return 0;
        }
        _held[(queue, worker)] = reader.GetInt64(0);
        _ = reader.GetString(1); // the payload is read, as a worker would
        return 1;
    }

    /// <summary>
    /// Two chained statements deadlocked once in many runs (each waiting for a row of the other, 40P01): the server
    /// rolls the loser back whole, so it is sent again, as an application would.
    /// </summary>
    private static async Task<NpgsqlDataReader> ExecuteRetryingDeadlocksAsync(NpgsqlCommand cmd, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await cmd.ExecuteReaderAsync(cancellationToken);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.DeadlockDetected && attempt < 3)
            {
            }
        }
    }

    private async Task<List<long>> LeaseAsync(NpgsqlConnection conn, string queue, string worker, int max, CancellationToken cancellationToken)
    {
        var ids = new List<long>(max);
        await using var lease = new NpgsqlCommand(_lease, conn);
        lease.Parameters.Add(new NpgsqlParameter<string> { TypedValue = queue });
        lease.Parameters.Add(new NpgsqlParameter<string> { TypedValue = worker });
        lease.Parameters.Add(new NpgsqlParameter<int> { TypedValue = max });
        await lease.PrepareAsync(cancellationToken);
        await using var reader = await lease.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            ids.Add(reader.GetInt64(0));
            _ = reader.GetString(1); // the payload is read, as a worker would
        }
        return ids;
    }

    public async Task<IHeartbeats> LeaseForHeartbeatsAsync(string queue, string worker, int count, CancellationToken cancellationToken)
    {
        await using var conn = await _dataSource.OpenConnectionAsync(cancellationToken);
        var ids = await LeaseAsync(conn, queue, worker, count, cancellationToken);
        return new Beats(this, ids.ToArray(), worker);
    }

    private sealed class Beats(RawSqlTarget target, long[] ids, string worker) : IHeartbeats
    {
        public int Count => ids.Length;

        public async Task BeatAsync(int index, CancellationToken cancellationToken)
        {
            await using var conn = await target._dataSource.OpenConnectionAsync(cancellationToken);
            await using var cmd = new NpgsqlCommand(target._heartbeat, conn);
            cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = ids[index] });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = worker });
            await cmd.PrepareAsync(cancellationToken);
            if (await cmd.ExecuteNonQueryAsync(cancellationToken) != 1) throw new InvalidOperationException($"raw heartbeat of task {ids[index]} updated no row");
        }
    }

    public Task<long?> RelationBytesAsync(CancellationToken cancellationToken) =>
        PostgresAdmin.RelationBytesAsync(_dataSource, [$"{_schema}.task"], cancellationToken);

    public async Task<StorageSnapshot?> StorageAsync(CancellationToken cancellationToken) => await PostgresAdmin.StorageAsync(_dataSource, _schema, cancellationToken);

    public async Task<HorizonPin?> PinHorizonAsync(CancellationToken cancellationToken) => await HorizonPin.OpenAsync(_dataSource, cancellationToken);

    public Task<long?> WalPositionAsync(CancellationToken cancellationToken) => PostgresAdmin.WalPositionAsync(_dataSource, cancellationToken);

    public IPickupFloor? PickupFloor => this;

    public LatencyHistogram LeaseLatency { get; private set; } = new();

    public void ResetLeaseLatency() => LeaseLatency = new LatencyHistogram();

    // The run's schema name is fresh and ours (never user input), so it doubles as the wake-up channel.
    private string Channel => _schema;

    public async Task EnqueueTimestampedAsync(string queue, CancellationToken cancellationToken)
    {
        await using var conn = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var batch = new NpgsqlBatch(conn) { EnableErrorBarriers = true };
        var insert = new NpgsqlBatchCommand(_insertTimestamped);
        insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = queue });
        insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Stopwatch.GetTimestamp().ToString(CultureInfo.InvariantCulture) });
        var notify = new NpgsqlBatchCommand(Notify);
        notify.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Channel });
        notify.Parameters.Add(new NpgsqlParameter<string> { TypedValue = queue });
        batch.BatchCommands.Add(insert);
        batch.BatchCommands.Add(notify);
        await batch.PrepareAsync(cancellationToken);
        await batch.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<IAsyncDisposable> StartConsumerAsync(string queue, RuntimeProbe probe, CancellationToken cancellationToken)
    {
        ResetLeaseLatency();
        var listener = await _dataSource.OpenConnectionAsync(cancellationToken);
        // One permit per notification: the leaser drains the queue on each, so an extra permit costs one empty lease.
        var woken = new SemaphoreSlim(0);
        listener.Notification += (_, _) => woken.Release();
        await using (var listen = new NpgsqlCommand($"LISTEN \"{Channel}\"", listener))
            await listen.ExecuteNonQueryAsync(cancellationToken);
        var stop = new CancellationTokenSource();
        var listening = Task.Run(async () =>
        {
            while (true) await listener.WaitAsync(stop.Token);
        }, CancellationToken.None);
        var leasing = Task.Run(async () =>
        {
            while (true)
            {
                await woken.WaitAsync(stop.Token);
                while (await LeaseForPickupAsync(queue, probe, stop.Token) > 0)
                {
                }
            }
        }, CancellationToken.None);
        return new PickupConsumer(listener, woken, stop, [listening, leasing]);
    }

    /// <summary>One lease call of up to 100 (the runtime's batch), each task's pickup recorded at the call's return.</summary>
    private async Task<int> LeaseForPickupAsync(string queue, RuntimeProbe probe, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var stamps = new List<long>();
        await using (var conn = await _dataSource.OpenConnectionAsync(cancellationToken))
        await using (var cmd = new NpgsqlCommand(_lease, conn))
        {
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = queue });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = "floor" });
            cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = 100 });
            await cmd.PrepareAsync(cancellationToken);
            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
                stamps.Add(long.Parse(reader.GetString(1), CultureInfo.InvariantCulture));
        }
        if (stamps.Count > 0) LeaseLatency.RecordSince(started);
        foreach (var stamp in stamps) probe.OnPickedUp(stamp);
        return stamps.Count;
    }

    private sealed class PickupConsumer(NpgsqlConnection listener, SemaphoreSlim woken, CancellationTokenSource stop, Task[] loops) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await stop.CancelAsync();
            foreach (var loop in loops)
            {
                try
                {
                    await loop;
                }
                catch (OperationCanceledException)
                {
                }
            }
            await listener.DisposeAsync();
            woken.Dispose();
            stop.Dispose();
        }
    }

    public async Task ResetAsync(CancellationToken cancellationToken)
    {
        await using var cmd = _dataSource.CreateCommand($"TRUNCATE {_schema}.task");
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        await PostgresAdmin.DropSchemaAsync(_dataSource, _schema);
        await _dataSource.DisposeAsync();
    }
}

internal static class PostgresAdmin
{
    // Every table and index of one schema: indexes by pg_relation_size (each on its own), tables by pg_table_size
    // (heap with TOAST and maps, no indexes), so the two kinds add up to pg_total_relation_size without counting twice.
    // The statistics columns say what vacuum has and has not cleaned; a schema of the store's, whatever tables it has.
    internal const string SchemaStorage = """
        SELECT c.relname, t.relname,
               CASE WHEN c.relkind = 'i' THEN pg_relation_size(c.oid) ELSE pg_table_size(c.oid) END,
               s.n_live_tup, s.n_dead_tup, s.autovacuum_count, s.last_autovacuum
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_index i ON i.indexrelid = c.oid
        LEFT JOIN pg_class t ON t.oid = i.indrelid
        LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'i')
        ORDER BY coalesce(t.relname, c.relname), t.relname NULLS FIRST, c.relname
        """;

    public static async Task<StorageSnapshot> StorageAsync(NpgsqlDataSource dataSource, string schema, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand(SchemaStorage);
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = schema });
        var relations = new List<RelationSize>();
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            relations.Add(new RelationSize(reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetInt64(2),
                reader.IsDBNull(3) ? null : reader.GetInt64(3), reader.IsDBNull(4) ? null : reader.GetInt64(4),
                reader.IsDBNull(5) ? null : reader.GetInt64(5), reader.IsDBNull(6) ? null : reader.GetFieldValue<DateTimeOffset>(6)));
        }
        return new StorageSnapshot(DateTimeOffset.UtcNow, relations);
    }

    public static async Task<long?> RelationBytesAsync(NpgsqlDataSource dataSource, string[] relations, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("SELECT sum(pg_total_relation_size(t.relid))::bigint FROM unnest($1::text[]) AS r, pg_partition_tree(r::regclass) AS t");
        cmd.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = relations });
        return await cmd.ExecuteScalarAsync(cancellationToken) is long n ? n : null;
    }

    /// <summary>The server's WAL insert position in bytes (server-wide: every session's writes move it).</summary>
    public static async Task<long?> WalPositionAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint");
        return await cmd.ExecuteScalarAsync(cancellationToken) is long n ? n : null;
    }

    /// <summary>"PostgreSQL 15.4 at host:port, database d, …": what the report header says about a target.</summary>
    public static async Task<string> DescribeAsync(NpgsqlDataSource dataSource, string connectionString, string what, CancellationToken cancellationToken)
    {
        var cs = new NpgsqlConnectionStringBuilder(connectionString);
        await using var cmd = dataSource.CreateCommand("SELECT current_setting('server_version'), current_database(), current_setting('synchronous_commit'), current_setting('fsync')");
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return $"PostgreSQL {reader.GetString(0).Split(' ')[0]} at {cs.Host}:{cs.Port}, database `{reader.GetString(1)}`, {what} (fsync {reader.GetString(3)}, synchronous_commit {reader.GetString(2)})";
    }

    public static async Task DropSchemaAsync(NpgsqlDataSource dataSource, string schema)
    {
        await using var drop = dataSource.CreateCommand($"DROP SCHEMA IF EXISTS {schema} CASCADE");
        await drop.ExecuteNonQueryAsync();
    }
}

/// <summary>The keys one run wrote under a prefix on the Redis server: deleted on reset and at the end, so the shared server keeps nothing.</summary>
internal sealed class RedisKeys : IAsyncDisposable
{
    private readonly ConnectionMultiplexer _connection;

    private RedisKeys(ConnectionMultiplexer connection, string prefix, string server)
    {
        _connection = connection;
        Prefix = prefix;
        Server = server;
    }

    public string Prefix { get; }

    /// <summary>"Redis 7.0.15 at host:port (appendonly …)".</summary>
    public string Server { get; }

    public IDatabase Database => _connection.GetDatabase();

    public static async Task<RedisKeys> ConnectAsync(string configuration, string prefix)
    {
        // Admin mode: INFO (for the header) and SCAN (to delete the run's keys) are server commands.
        var options = ConfigurationOptions.Parse(configuration);
        options.AllowAdmin = true;
        var connection = await ConnectionMultiplexer.ConnectAsync(options);
        return new RedisKeys(connection, prefix, await DescribeAsync(connection));
    }

    /// <summary>"Redis 7.0.15 at host:port, appendonly …", or "Redis Cluster 7.0.15, 3 masters (…), …" (INFO needs an admin connection).</summary>
    public static async Task<string> DescribeAsync(IConnectionMultiplexer connection)
    {
        var masters = Masters(connection);
        var server = masters.Count > 0 ? masters[0] : connection.GetServers()[0];
        var info = (await server.InfoAsync("persistence")).SelectMany(g => g).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        var aof = info.TryGetValue("aof_enabled", out var a) && a == "1" ? "appendonly yes" : "appendonly no";
        return server.ServerType == ServerType.Cluster
            ? $"Redis Cluster {server.Version}, {masters.Count} masters ({string.Join(", ", masters.Select(m => m.EndPoint))}), {aof}"
            : $"Redis {server.Version} at {server.EndPoint}, {aof}";
    }

    /// <summary>The connected masters: every key lives on exactly one of them (a replica's copy would be listed twice).</summary>
    internal static List<IServer> Masters(IConnectionMultiplexer connection) =>
        [.. connection.GetServers().Where(s => s.IsConnected && !s.IsReplica)];

    /// <summary>Deletes every key that starts with the prefix (with or without the hash-tag brace).</summary>
    public async Task DeleteAllAsync()
    {
        var db = _connection.GetDatabase();
        foreach (var server in Masters(_connection))
        {
            // On a cluster a multi-key DEL must stay in one slot, and a prefix spans many: one key per DEL there.
            var cluster = server.ServerType == ServerType.Cluster;
            foreach (var pattern in new[] { Prefix + "*", "{" + Prefix + "*" })
            {
                var batch = new List<RedisKey>(1000);
                await foreach (var key in server.KeysAsync(pattern: pattern, pageSize: 5000))
                {
                    batch.Add(key);
                    if (batch.Count == 1000)
                    {
                        await DeleteAsync(db, batch, cluster);
                        batch.Clear();
                    }
                }
                if (batch.Count > 0) await DeleteAsync(db, batch, cluster);
            }
        }
    }

    private static Task DeleteAsync(IDatabase db, List<RedisKey> keys, bool cluster) =>
        cluster ? Task.WhenAll(keys.Select(k => db.KeyDeleteAsync(k))) : db.KeyDeleteAsync([.. keys]);

    public async ValueTask DisposeAsync()
    {
        try { await DeleteAllAsync(); }
        finally { await _connection.DisposeAsync(); }
    }
}
