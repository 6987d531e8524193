using System.Globalization;
using Konduit.Chaos.Tests.Servers;
using Konduit.Postgres;
using Konduit.PostgresRedis;
using Konduit.Redis;
using Npgsql;

namespace Konduit.Chaos.Tests;

/// <summary>What the server holds after a run: the store's rows, its history (where the store has one) and the effects table.</summary>
internal sealed record ServerCounts(
    int Acknowledged,
    int Lost,
    long Succeeded,
    long Pending,
    long Running,
    long Failed,
    long? DoubleAccepted,
    long? AttemptsNotCounted,
    long AttemptsBelowRuns,
    long AcceptedWithoutEffect,
    long TokenReused,
    long RanMoreThanOnce,
    long? ReturnedToPending);

/// <summary>
/// One store under test: its private servers, the producer's own store instance, the worker's command line, and
/// the server-side reads every verdict comes from. Each scenario gets a fresh schema / key prefix and queue.
/// </summary>
internal abstract class ChaosTarget : IAsyncDisposable
{
    private static int s_sequence;

    protected ChaosTarget(PrivatePostgres postgres, string scenario)
    {
        Postgres = postgres;
        var id = $"{scenario}_{Interlocked.Increment(ref s_sequence)}_{Guid.NewGuid():N}"[..Math.Min(scenario.Length + 10, 50)].ToLowerInvariant();
        Schema = "chaos_" + id;
        EffectsSchema = Schema;
        Queue = "chaos." + scenario;
    }

    public abstract string StoreName { get; }

    public PrivatePostgres Postgres { get; }

    public string Schema { get; }

    public string EffectsSchema { get; protected init; }

    public string Queue { get; }

    /// <summary>The producer's store (the test process enqueues through the public API, so an acknowledgement is a returned call).</summary>
    public ITaskStore Store { get; protected set; } = null!;

    /// <summary>A Redis server the store depends on, or null.</summary>
    public virtual PrivateRedis? Redis => null;

    protected NpgsqlDataSource Admin { get; private set; } = null!;

    /// <summary>The library's sessions as the workers open them (Application Name), for pg_terminate_backend.</summary>
    public const string WorkerApplicationName = "konduit-chaos-worker";

    public async Task SetUpAsync(CancellationToken cancellationToken)
    {
        Admin = NpgsqlDataSource.Create(Postgres.ConnectionString("chaos-test"));
        await CreateStoreAsync(cancellationToken);
        await ExecuteAsync(ChaosQueries.CreateEffects, cancellationToken);
    }

    protected abstract Task CreateStoreAsync(CancellationToken cancellationToken);

    /// <summary>The worker's store settings; <paramref name="postgresPort"/>/<paramref name="redisPort"/> point it at a proxy.</summary>
    public abstract IEnumerable<string> StoreArguments(int postgresPort, int redisPort);

    public string EffectsConnectionString => Postgres.ConnectionString("konduit-chaos-effects");

    protected async Task ExecuteAsync(string sql, CancellationToken cancellationToken)
    {
        await using var command = Admin.CreateCommand(ChaosQueries.Format(sql, Schema, EffectsSchema));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    protected async Task<long> ScalarAsync(string sql, CancellationToken cancellationToken, params object[] parameters)
    {
        await using var command = Admin.CreateCommand(ChaosQueries.Format(sql, Schema, EffectsSchema));
        foreach (var p in parameters) command.Parameters.Add(new NpgsqlParameter { Value = p });
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture);
    }

    /// <summary>Finish times of the queue's succeeded tasks, as the server recorded them.</summary>
    public virtual async Task<List<DateTimeOffset>> FinishedTimesAsync(CancellationToken cancellationToken) =>
        [.. (await SnapshotsAsync([TaskState.Succeeded], cancellationToken)).Select(t => t.FinishedAt ?? t.UpdatedAt)];

    /// <summary>Pending + running tasks of the queue, from the store's own counters.</summary>
    public async Task<long> BacklogAsync(CancellationToken cancellationToken)
    {
        var stats = (await Store.GetStatsAsync(cancellationToken)).FirstOrDefault(s => s.Queue == Queue);
        return stats is null ? 0 : stats.Pending + stats.Running;
    }

    protected async Task<List<TaskSnapshot>> SnapshotsAsync(IReadOnlyCollection<TaskState>? states, CancellationToken cancellationToken)
    {
        var all = new List<TaskSnapshot>();
        Guid? after = null;
        do
        {
            var page = await Store.QueryAsync(new TaskQuery { Queue = Queue, States = states }, new PageRequest(TaskValidation.MaxPageSize, after), cancellationToken);
            all.AddRange(page.Items);
            after = page.NextCursor;
        }
        while (after is not null);
        return all;
    }

    /// <summary>Store-history counts where the store keeps its rows in PostgreSQL (null otherwise).</summary>
    protected virtual Task<(long DoubleAccepted, long AttemptsNotCounted, long ReturnedToPending)?> HistoryAsync(CancellationToken cancellationToken) =>
        Task.FromResult<(long, long, long)?>(null);

    public async Task<ServerCounts> CountAsync(IReadOnlyCollection<Guid> acknowledged, CancellationToken cancellationToken)
    {
        var tasks = await SnapshotsAsync(null, cancellationToken);
        var byId = tasks.ToDictionary(t => t.Id);
        var effects = new Dictionary<(Guid, long), int>();
        await using (var command = Admin.CreateCommand(ChaosQueries.Format(ChaosQueries.ReadEffects, Schema, EffectsSchema)))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
                effects[(reader.GetGuid(0), reader.GetInt64(1))] = reader.GetInt32(2);
        }
        var runsPerTask = effects.GroupBy(e => e.Key.Item1).ToDictionary(g => g.Key, g => g.Count());
        var history = await HistoryAsync(cancellationToken);
        return new ServerCounts(
            Acknowledged: acknowledged.Count,
            Lost: acknowledged.Count(id => !byId.ContainsKey(id)),
            Succeeded: tasks.Count(t => t.State == TaskState.Succeeded),
            Pending: tasks.Count(t => t.State == TaskState.Pending),
            Running: tasks.Count(t => t.State == TaskState.Running),
            Failed: tasks.Count(t => t.State is TaskState.Failed or TaskState.Canceled),
            DoubleAccepted: history?.DoubleAccepted,
            AttemptsNotCounted: history?.AttemptsNotCounted,
            // Each handler run holds its own lease, and each lease is an attempt.
            AttemptsBelowRuns: tasks.Count(t => runsPerTask.TryGetValue(t.Id, out var runs) && t.Attempts < runs),
            // The accepted completion's lease must be one a handler really ran under.
            AcceptedWithoutEffect: tasks.Count(t => t.State == TaskState.Succeeded && !effects.ContainsKey((t.Id, t.LeaseToken))),
            TokenReused: effects.Count(e => e.Value > 1),
            RanMoreThanOnce: runsPerTask.Count(r => r.Value > 1),
            ReturnedToPending: history?.ReturnedToPending);
    }

    /// <summary>
    /// Verdicts of an add-on (an event log) read from its own server after the run: failures, and lines for the report.
    /// </summary>
    public virtual Task<(IReadOnlyList<string> Failures, IReadOnlyList<string> Report)> AddOnVerdictAsync(CancellationToken cancellationToken) =>
        Task.FromResult<(IReadOnlyList<string>, IReadOnlyList<string>)>(([], []));

    /// <summary>Every task of the queue as the store holds it after the run.</summary>
    public Task<List<TaskSnapshot>> AllTasksAsync(CancellationToken cancellationToken) => SnapshotsAsync(null, cancellationToken);

    public virtual async ValueTask DisposeAsync()
    {
        if (Store is not null) await Store.DisposeAsync();
        if (Admin is not null) await Admin.DisposeAsync();
    }
}

/// <summary>Tasks in PostgreSQL (the Postgres store, and the hybrid that keeps its rows there): the history trigger is on the tasks table.</summary>
internal abstract class PostgresRowsTarget(PrivatePostgres postgres, string scenario) : ChaosTarget(postgres, scenario)
{
    protected async Task InstallHistoryAsync(CancellationToken cancellationToken) =>
        await ExecuteAsync(ChaosQueries.CreateHistory, cancellationToken);

    public override async Task<List<DateTimeOffset>> FinishedTimesAsync(CancellationToken cancellationToken)
    {
        var times = new List<DateTimeOffset>();
        await using var command = Admin.CreateCommand(ChaosQueries.Format(ChaosQueries.FinishedTimes, Schema, EffectsSchema));
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Queue });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken)) times.Add(reader.GetFieldValue<DateTimeOffset>(0));
        return times;
    }

    protected override async Task<(long DoubleAccepted, long AttemptsNotCounted, long ReturnedToPending)?> HistoryAsync(CancellationToken cancellationToken) =>
        (await ScalarAsync(ChaosQueries.CountDoubleAccepted, cancellationToken),
         await ScalarAsync(ChaosQueries.CountAttemptsNotCounted, cancellationToken, Queue),
         await ScalarAsync(ChaosQueries.CountReturnedToPending, cancellationToken));
}

internal class PostgresTarget(PrivatePostgres postgres, string scenario) : PostgresRowsTarget(postgres, scenario)
{
    public override string StoreName => "Postgres";

    protected override async Task CreateStoreAsync(CancellationToken cancellationToken)
    {
        var store = new PostgresTaskStore(new PostgresTaskStoreOptions { ConnectionString = Postgres.ConnectionString("konduit-chaos-producer"), Schema = Schema });
        Store = store;
        await store.MigrateAsync(cancellationToken);
        await InstallHistoryAsync(cancellationToken);
    }

    public override IEnumerable<string> StoreArguments(int postgresPort, int redisPort) => PostgresArguments(postgresPort);

    protected IEnumerable<string> PostgresArguments(int postgresPort) =>
    [
        "--Konduit:Store=Postgres",
        $"--Konduit:Postgres:ConnectionString={Postgres.ConnectionString(WorkerApplicationName, postgresPort)}",
        $"--Konduit:Postgres:Schema={Schema}",
    ];
}

internal sealed class PostgresRedisTarget(PrivatePostgres postgres, PrivateRedis redis, string scenario) : PostgresRowsTarget(postgres, scenario)
{
    public override string StoreName => "PostgresRedis";

    public override PrivateRedis? Redis => redis;

    private string KeyPrefix => Schema.Replace('_', '-');

    protected override async Task CreateStoreAsync(CancellationToken cancellationToken)
    {
        var store = new PostgresRedisTaskStore(new PostgresRedisTaskStoreOptions
        {
            ConnectionString = Postgres.ConnectionString("konduit-chaos-producer"),
            Schema = Schema,
            RedisConfiguration = redis.Configuration(),
            KeyPrefix = KeyPrefix,
        });
        Store = store;
        await store.MigrateAsync(cancellationToken);
        await InstallHistoryAsync(cancellationToken);
    }

    public override IEnumerable<string> StoreArguments(int postgresPort, int redisPort) =>
    [
        "--Konduit:Store=PostgresRedis",
        $"--Konduit:PostgresRedis:ConnectionString={Postgres.ConnectionString(WorkerApplicationName, postgresPort)}",
        $"--Konduit:PostgresRedis:Schema={Schema}",
        $"--Konduit:PostgresRedis:RedisConfiguration={redis.Configuration(redisPort)}",
        $"--Konduit:PostgresRedis:KeyPrefix={KeyPrefix}",
    ];
}

/// <summary>The Redis store: rows in Redis, effects in the private PostgreSQL (no history trigger is possible, so double acceptance is not counted).</summary>
internal sealed class RedisTarget(PrivatePostgres postgres, PrivateRedis redis, string scenario) : ChaosTarget(postgres, scenario)
{
    public override string StoreName => "Redis";

    public override PrivateRedis? Redis => redis;

    private string KeyPrefix => Schema.Replace('_', '-');

    protected override Task CreateStoreAsync(CancellationToken cancellationToken)
    {
        Store = new RedisTaskStore(new RedisTaskStoreOptions { Configuration = redis.Configuration(), KeyPrefix = KeyPrefix });
        return Task.CompletedTask;
    }

    public override IEnumerable<string> StoreArguments(int postgresPort, int redisPort) =>
    [
        "--Konduit:Store=Redis",
        $"--Konduit:Redis:Configuration={redis.Configuration(redisPort)}",
        $"--Konduit:Redis:KeyPrefix={KeyPrefix}",
    ];
}
