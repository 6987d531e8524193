using System.Text;
using Konduit.InMemory;
using Konduit.Postgres;
using Konduit.PostgresRedis;
using Konduit.Redis;
using Npgsql;

namespace Konduit.Benchmarks;

/// <summary>
/// One thing the benchmarks drive: the raw SQL baseline or a store. Every scenario is written once against this
/// shape, so a new store joins every table by adding one factory to <see cref="Targets.All"/>.
/// </summary>
public interface IBenchTarget : IAsyncDisposable
{
    /// <summary>Row label in the report: <c>raw-sql</c>, <c>postgres</c>, <c>inmemory</c>, …</summary>
    string Name { get; }

    /// <summary>The store, when this target is one (the worker runtime needs it); null for the raw baseline.</summary>
    ITaskStore? Store { get; }

    /// <summary>True for targets backed by the PostgreSQL server (their ratio is taken against raw-sql).</summary>
    bool IsPostgres { get; }

    /// <summary>One task with an idempotency key (the seed's INSERT … ON CONFLICT).</summary>
    Task EnqueueOneAsync(string queue, long n, CancellationToken cancellationToken);

    /// <summary>A batch without keys, in one round trip (arrays/unnest; <paramref name="copy"/>: binary COPY where supported).</summary>
    Task EnqueueBatchAsync(string queue, long first, int count, bool copy, CancellationToken cancellationToken);

    /// <summary>True when <see cref="EnqueueBatchAsync"/> has a binary COPY path.</summary>
    bool SupportsCopy { get; }

    /// <summary>Leases up to <paramref name="max"/> tasks and completes them (one by id for 1, one = ANY round trip otherwise); returns how many.</summary>
    Task<int> CycleAsync(string queue, string worker, int max, CancellationToken cancellationToken);

    /// <summary>Table plus index bytes of the task table(s); null when not applicable.</summary>
    Task<long?> RelationBytesAsync(CancellationToken cancellationToken);

    /// <summary>Empties the target (between scenarios, so every scenario starts on an empty table).</summary>
    Task ResetAsync(CancellationToken cancellationToken);
}

/// <summary>Where the services are: environment variables (docker-compose.bench.yml or .services/env).</summary>
public sealed record BenchEnvironment(string? Postgres, string? Redis)
{
    public static BenchEnvironment FromEnvironment() => new(
        Environment.GetEnvironmentVariable("KONDUIT_BENCH_POSTGRES") is { Length: > 0 } pg ? pg : Environment.GetEnvironmentVariable("KONDUIT_TEST_POSTGRES"),
        Environment.GetEnvironmentVariable("KONDUIT_BENCH_REDIS") is { Length: > 0 } r ? r : Environment.GetEnvironmentVariable("KONDUIT_TEST_REDIS"));
}

/// <summary>A named way to build a target (the benchmark-side twin of the conformance fixtures' store factories).</summary>
public sealed record TargetFactory(string Name, bool Available, string? Why, Func<CancellationToken, Task<IBenchTarget>> Create);

public static class Targets
{
    /// <summary>Schema name prefixes; each run gets its own schemas (prefix + random suffix), dropped at the end, so
    /// concurrent runs (a bench next to the smoke test) never touch each other's tables.</summary>
    public const string RawSchema = "konduit_bench_raw";
    public const string StoreSchema = "konduit_bench";

    internal static string NewSchema(string prefix) => prefix + "_" + Guid.NewGuid().ToString("N")[..8];

    /// <summary>Every target, raw baseline first. Unavailable ones (no server configured) are listed with the reason.</summary>
    public static IReadOnlyList<TargetFactory> All(BenchEnvironment env)
    {
        var pg = env.Postgres;
        var noPg = "no PostgreSQL: set KONDUIT_BENCH_POSTGRES (or source .services/env)";
        return
        [
            new("raw-sql", pg is not null, pg is null ? noPg : null, ct => RawSqlTarget.CreateAsync(pg!, ct)),
            new("postgres", pg is not null, pg is null ? noPg : null, ct => StoreTarget.CreatePostgresAsync(pg!, ct)),
            new("inmemory", true, null, _ => Task.FromResult<IBenchTarget>(new StoreTarget("inmemory", () => new InMemoryTaskStore(), null, false))),
            new("redis", env.Redis is not null, env.Redis is null ? "no Redis: set KONDUIT_BENCH_REDIS (or source .services/env)" : null,
                _ => Task.FromResult<IBenchTarget>(new StoreTarget("redis", () => new RedisTaskStore(new RedisTaskStoreOptions
                {
                    Configuration = env.Redis,
                    KeyPrefix = "konduit_bench_" + Guid.NewGuid().ToString("N")[..8],
                }), null, false))),
            new("postgresredis", pg is not null && env.Redis is not null,
                pg is null ? noPg : env.Redis is null ? "no Redis: set KONDUIT_BENCH_REDIS (or source .services/env)" : null,
                ct => StoreTarget.CreatePostgresRedisAsync(pg!, env.Redis!, ct)),
        ];
    }

    internal static byte[] Payload(long n) => Encoding.UTF8.GetBytes("{\"n\":" + n.ToString(System.Globalization.CultureInfo.InvariantCulture) + "}");
}

/// <summary>
/// The ceiling: the seed's golden-path statements (../shared/seeds/000, "Postgres golden path task registry") run
/// through Npgsql with no library code, prepared, on the seed's own table in its own schema.
/// </summary>
public sealed class RawSqlTarget : IBenchTarget
{
    private readonly NpgsqlDataSource _dataSource;
    private const string S = Targets.RawSchema;
    private readonly string _schema;
    private readonly string _insertOne, _insertArrays, _copy, _lease, _completeById, _completeByAny;

    // The seed's DDL, verbatim apart from the schema; enum and jsonb payload included.
    private static readonly string Ddl = $"""
        DROP SCHEMA IF EXISTS {S} CASCADE;
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
    internal const string CompleteById = $"UPDATE {S}.task SET status='succeeded', result=NULL, updated_at=now() WHERE id=$1 AND lease_owner=$2 AND status='running'";
    internal const string CompleteByAny = $"UPDATE {S}.task SET status='succeeded', result=NULL, updated_at=now() WHERE id = ANY($1) AND lease_owner=$2 AND status='running'";

    private RawSqlTarget(NpgsqlDataSource dataSource, string schema)
    {
        _dataSource = dataSource;
        _schema = schema;
        // The statements are written against the prefix (S) and pointed at this run's schema once, here.
        _insertOne = Sql(InsertOne);
        _insertArrays = Sql(InsertArrays);
        _copy = Sql(Copy);
        _lease = Sql(Lease);
        _completeById = Sql(CompleteById);
        _completeByAny = Sql(CompleteByAny);
    }

    private string Sql(string text) => text.Replace(S + ".", _schema + ".", StringComparison.Ordinal);

    public static async Task<IBenchTarget> CreateAsync(string connectionString, CancellationToken cancellationToken)
    {
        var ds = NpgsqlDataSource.Create(connectionString);
        var schema = Targets.NewSchema(S);
        await using (var cmd = ds.CreateCommand(Ddl.Replace(S, schema, StringComparison.Ordinal)))
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        return new RawSqlTarget(ds, schema);
    }

    public string Name => "raw-sql";
    public ITaskStore? Store => null;
    public bool IsPostgres => true;
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
        var ids = new List<long>(max);
        await using (var lease = new NpgsqlCommand(_lease, conn))
        {
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
        }
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

    public Task<long?> RelationBytesAsync(CancellationToken cancellationToken) =>
        PostgresAdmin.RelationBytesAsync(_dataSource, [$"{_schema}.task"], cancellationToken);

    public async Task ResetAsync(CancellationToken cancellationToken)
    {
        await using var cmd = _dataSource.CreateCommand($"TRUNCATE {_schema}.task");
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        await using (var drop = _dataSource.CreateCommand($"DROP SCHEMA IF EXISTS {_schema} CASCADE"))
            await drop.ExecuteNonQueryAsync();
        await _dataSource.DisposeAsync();
    }
}

/// <summary>A Konduit store driven through <see cref="ITaskStore"/> only.</summary>
public sealed class StoreTarget(string name, Func<ITaskStore> create, NpgsqlDataSource? admin, bool isPostgres) : IBenchTarget
{
    public static async Task<IBenchTarget> CreatePostgresAsync(string connectionString, CancellationToken cancellationToken)
    {
        var admin = NpgsqlDataSource.Create(connectionString);
        var schema = Targets.NewSchema(Targets.StoreSchema);
        var store = new PostgresTaskStore(new PostgresTaskStoreOptions { ConnectionString = connectionString, Schema = schema });
        await store.MigrateAsync(cancellationToken);
        return new StoreTarget("postgres", () => store, admin, true) { _schema = schema };
    }

    /// <summary>The hybrid (ADR 007): Postgres decides, a Redis stream per queue signals; its own schema and key prefix.</summary>
    public static async Task<IBenchTarget> CreatePostgresRedisAsync(string connectionString, string redis, CancellationToken cancellationToken)
    {
        var admin = NpgsqlDataSource.Create(connectionString);
        var schema = Targets.NewSchema(Targets.StoreSchema);
        var store = new PostgresRedisTaskStore(new PostgresRedisTaskStoreOptions
        {
            ConnectionString = connectionString,
            Schema = schema,
            RedisConfiguration = redis,
            KeyPrefix = schema,
        });
        await store.MigrateAsync(cancellationToken);
        return new StoreTarget("postgresredis", () => store, admin, true) { _schema = schema };
    }

    public string Name => name;
    public ITaskStore? Store => _store;
    public bool IsPostgres => isPostgres;
    public bool SupportsCopy => false;

    private ITaskStore _store = create();
    private string? _schema;

    public Task EnqueueOneAsync(string queue, long n, CancellationToken cancellationToken) =>
        _store.EnqueueAsync(new EnqueueRequest(queue, Targets.Payload(n)) { IdempotencyKey = queue + ":" + n.ToString(System.Globalization.CultureInfo.InvariantCulture) }, cancellationToken);

    public Task EnqueueBatchAsync(string queue, long first, int count, bool copy, CancellationToken cancellationToken)
    {
        var requests = new EnqueueRequest[count];
        for (var i = 0; i < count; i++) requests[i] = new EnqueueRequest(queue, Targets.Payload(first + i));
        return _store.EnqueueManyAsync(requests, cancellationToken);
    }

    public async Task<int> CycleAsync(string queue, string worker, int max, CancellationToken cancellationToken)
    {
        var leases = await _store.LeaseAsync(queue, worker, max, TimeSpan.FromSeconds(30), cancellationToken);
        if (leases.Count == 0) return 0;
        if (leases.Count == 1)
        {
            await _store.CompleteAsync(leases[0], null, cancellationToken);
            return 1;
        }
        var completions = new TaskCompletion[leases.Count];
        for (var i = 0; i < completions.Length; i++) completions[i] = new TaskCompletion(leases[i]);
        await _store.CompleteManyAsync(completions, cancellationToken);
        return leases.Count;
    }

    public Task<long?> RelationBytesAsync(CancellationToken cancellationToken) =>
        admin is null ? Task.FromResult<long?>(null)
            : PostgresAdmin.RelationBytesAsync(admin, [$"{_schema}.tasks", $"{_schema}.task_keys"], cancellationToken);

    public async Task ResetAsync(CancellationToken cancellationToken)
    {
        if (admin is not null)
        {
            await using var cmd = admin.CreateCommand($"TRUNCATE {_schema}.tasks, {_schema}.task_keys");
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }
        else
        {
            // A fresh store (in-memory: empty; Redis: a new key prefix), so every scenario starts empty.
            await _store.DisposeAsync();
            _store = create();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _store.DisposeAsync();
        if (admin is not null)
        {
            await using (var drop = admin.CreateCommand($"DROP SCHEMA IF EXISTS {_schema} CASCADE"))
                await drop.ExecuteNonQueryAsync();
            await admin.DisposeAsync();
        }
    }
}

internal static class PostgresAdmin
{
    public static async Task<long?> RelationBytesAsync(NpgsqlDataSource dataSource, string[] relations, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("SELECT sum(pg_total_relation_size(r::regclass))::bigint FROM unnest($1::text[]) AS r");
        cmd.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = relations });
        return await cmd.ExecuteScalarAsync(cancellationToken) is long n ? n : null;
    }
}
