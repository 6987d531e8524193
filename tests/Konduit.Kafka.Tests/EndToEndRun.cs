using System.Collections.Concurrent;
using System.Globalization;
using Konduit.Chaos.Tests;
using Konduit.Heartbeats;
using Konduit.Postgres;
using Konduit.Testing.Conformance;
using Npgsql;

namespace Konduit.Kafka.Tests;

/// <summary>The size and timing of one end-to-end run.</summary>
/// <param name="Workers">Worker OS processes on the queue.</param>
/// <param name="Kills">Of those, how many are SIGKILLed while they hold running tasks (never restarted).</param>
/// <param name="Concurrency">Handlers per worker.</param>
/// <param name="Tasks">Tasks enqueued at the start, all at once.</param>
/// <param name="Work">How long each handler runs.</param>
/// <param name="HeartbeatInterval">The heartbeat interval of both runs: published to Kafka, or written to the store.</param>
/// <param name="LivenessTimeout">The monitor's liveness timeout; with store heartbeats, the store lease length (the same dead-worker detection).</param>
/// <param name="Ceiling">The store lease length with the channel on.</param>
/// <param name="Deadline">How long the run may take to finish every task.</param>
internal sealed record EndToEndProfile(int Workers, int Kills, int Concurrency, int Tasks, TimeSpan Work, TimeSpan HeartbeatInterval,
    TimeSpan LivenessTimeout, TimeSpan Ceiling, TimeSpan Deadline)
{
    /// <summary>The default CI run: about 15 s of work per heartbeat mode.</summary>
    public static EndToEndProfile Default { get; } = new(Workers: 4, Kills: 2, Concurrency: 4, Tasks: 24, Work: TimeSpan.FromSeconds(3),
        HeartbeatInterval: TimeSpan.FromMilliseconds(250), LivenessTimeout: TimeSpan.FromSeconds(2), Ceiling: TimeSpan.FromSeconds(60),
        Deadline: TimeSpan.FromSeconds(90));

    /// <summary>KONDUIT_LONG=1: more processes, more kills, tasks of 40 heartbeat intervals.</summary>
    public static EndToEndProfile Long { get; } = new(Workers: 8, Kills: 4, Concurrency: 4, Tasks: 160, Work: TimeSpan.FromSeconds(10),
        HeartbeatInterval: TimeSpan.FromMilliseconds(250), LivenessTimeout: TimeSpan.FromSeconds(2), Ceiling: TimeSpan.FromSeconds(60),
        Deadline: TimeSpan.FromMinutes(5));
}

/// <summary>How one lease held by a killed worker ended, from the server's clock and history.</summary>
internal sealed record KilledLease(Guid TaskId, long LeaseToken, DateTimeOffset KilledAt, DateTimeOffset EndedAt, DateTimeOffset? StoreExpiresAt, TaskState EndedIn)
{
    public TimeSpan KillToExpiry => EndedAt - KilledAt;

    /// <summary>Ended while its store lease still ran: by the monitor's fenced expiry, not by a sweeper.</summary>
    public bool EndedBeforeStoreExpiry => StoreExpiresAt is { } expires && EndedAt < expires;
}

/// <summary>What the server holds after one run.</summary>
internal sealed record EndToEndResult(
    bool Channel,
    int Tasks,
    long Succeeded,
    long SucceededTransitions,
    long DoubleAccepted,
    long AcceptedWithoutEffect,
    long TokenReused,
    long Transitions,
    long RowUpdates,
    IReadOnlyList<KilledLease> KilledLeases,
    IReadOnlyList<int> KilledLeasesPerWorker)
{
    public double RowUpdatesPerTask => (double)RowUpdates / Tasks;

    /// <summary>Row updates that changed neither state nor token: heartbeats (or ceiling renewals).</summary>
    public long HeartbeatRowUpdates => RowUpdates - Transitions;

    public string Describe(EndToEndProfile profile)
    {
        var delays = KilledLeases.Select(l => l.KillToExpiry.TotalSeconds).Order().ToList();
        var median = delays.Count == 0 ? double.NaN : delays.Count % 2 == 1 ? delays[delays.Count / 2] : (delays[(delays.Count / 2) - 1] + delays[delays.Count / 2]) / 2;
        return string.Create(CultureInfo.InvariantCulture,
            $"e2e {(Channel ? "kafka channel" : "store heartbeats")} ({profile.Workers} worker processes, {profile.Kills} SIGKILLed, {Tasks} tasks of {profile.Work.TotalSeconds:0.#} s, " +
            $"heartbeat {profile.HeartbeatInterval.TotalMilliseconds:0} ms, {(Channel ? $"liveness {profile.LivenessTimeout.TotalSeconds:0.#} s, ceiling {profile.Ceiling.TotalSeconds:0} s" : $"store lease {profile.LivenessTimeout.TotalSeconds:0.#} s")}): " +
            $"succeeded {Succeeded}/{Tasks}, accepted completions {SucceededTransitions}, double accepted {DoubleAccepted}; " +
            $"tasks.n_tup_upd + n_tup_del {RowUpdates} = {RowUpdatesPerTask:0.00}/task ({Transitions} state/token changes, {HeartbeatRowUpdates} other); " +
            $"killed leases {KilledLeases.Count}, SIGKILL -> expiry min {delays.FirstOrDefault():0.00} s, median {median:0.00} s, max {delays.LastOrDefault():0.00} s " +
            $"({KilledLeases.Count(l => l.EndedBeforeStoreExpiry)} before their store lease ran out)");
    }
}

/// <summary>
/// One end-to-end run (issue 12, section 3): the Postgres store on the shared server in a private schema, worker OS
/// processes (tests/Konduit.Chaos.Worker, the chaos suite's worker) and, with the channel, a lease-monitor OS process
/// and the Kafka mock cluster of this test process. Some workers are SIGKILLed while they hold running tasks. Every
/// figure is read from the server: the tasks rows, the history trigger, the effects table, pg_stat_user_tables.
/// </summary>
internal static class EndToEndRun
{
    private const string Queue = "e2e";
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(50);

    private static string ServerConnectionString =>
        Environment.GetEnvironmentVariable("KONDUIT_TEST_POSTGRES") is { Length: > 0 } cs ? cs
            : throw new InvalidOperationException("KONDUIT_TEST_POSTGRES is not set: run `scripts/services.sh up && source .services/env`.");

    public static async Task<EndToEndResult> RunAsync(KafkaFixture kafka, EndToEndProfile profile, bool channel, CancellationToken ct)
    {
        var schema = (channel ? "kafka_e2e_" : "store_e2e_") + Guid.NewGuid().ToString("N")[..12];
        // Every session of the run (workers, monitor, producer) carries this name, so the test can wait for all to end.
        var applicationName = "konduit-" + schema.Replace('_', '-');
        var connectionString = new NpgsqlConnectionStringBuilder(ServerConnectionString) { ApplicationName = applicationName }.ConnectionString;
        string Sql(string sql) => ChaosQueries.Format(sql, schema, schema);

        await using var admin = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(ServerConnectionString) { ApplicationName = "konduit-e2e-admin" }.ConnectionString);
        async Task<long> ScalarAsync(string sql, params object[] parameters)
        {
            await using var command = admin.CreateCommand(Sql(sql));
            foreach (var p in parameters) command.Parameters.Add(new NpgsqlParameter { Value = p });
            return Convert.ToInt64(await command.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture);
        }

        async Task<List<(Guid TaskId, long Token)>> LeasesOfAsync(int pid)
        {
            var leases = new List<(Guid, long)>();
            await using var read = admin.CreateCommand(Sql(EndToEndQueries.RunningLeasesOf));
            read.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Queue });
            read.Parameters.Add(new NpgsqlParameter<string> { TypedValue = pid.ToString(CultureInfo.InvariantCulture) });
            await using var reader = await read.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct)) leases.Add((reader.GetGuid(0), reader.GetInt64(1)));
            return leases;
        }

        var logs = Path.Combine(AppContext.BaseDirectory, "measurements");
        Directory.CreateDirectory(logs);
        try
        {
            List<(int Pid, List<(Guid TaskId, long Token)> Leases)> killed;
            // The processes and the producer's store end with this block, so their sessions are gone before the count.
            await using (var store = new PostgresTaskStore(new PostgresTaskStoreOptions { ConnectionString = connectionString, Schema = schema }))
            {
                await store.MigrateAsync(ct);
                foreach (var ddl in new[] { ChaosQueries.CreateHistory, ChaosQueries.CreateEffects, EndToEndQueries.CreateKills })
                {
                    await using var command = admin.CreateCommand(Sql(ddl));
                    await command.ExecuteNonQueryAsync(ct);
                }

                var arguments = WorkerArguments(profile, channel, schema, connectionString);
                // With the channel the test reads the topic too (a group of its own), only to know when a victim's
                // leases have reached Kafka: a lease is unknown to the monitor until its first heartbeat is delivered.
                await using var seen = new SeenLeases();
                if (channel)
                {
                    var topic = "hb-e2e-" + schema;
                    await kafka.CreateTopicAsync(topic, 4);
                    arguments.AddRange(KafkaArguments(kafka, profile, topic));
                    seen.Start(new KafkaHeartbeatChannel(kafka.Options(topic, group: "observers-" + topic)), ct);
                    await Await.Until(() => Task.FromResult(seen.Assigned == 4), kafka.AssignmentDeadline, Poll, "the test's reader holds the topic's partitions");
                }

                // The lease monitor: its own process, the same worker program with RunMonitor on and a queue nobody
                // enqueues to, never killed. It runs "Heartbeats": "Kafka" exactly as a production node would (the
                // component's start-up step starts it), and its verdicts reach the test only through the store.
                await using var monitor = new WorkerFleet(channel ? 1 : 0,
                    [.. arguments.Select(a => a.Replace("RunMonitor=false", "RunMonitor=true", StringComparison.Ordinal)
                        .Replace($"--Chaos:Queue={Queue}", $"--Chaos:Queue={Queue}-monitor", StringComparison.Ordinal))],
                    Path.Combine(logs, $"{schema}-monitor.log"));
                await monitor.StartAllAsync(ct);
                await using var workers = new WorkerFleet(profile.Workers, arguments, Path.Combine(logs, $"{schema}-workers.log"));
                await workers.StartAllAsync(ct);

                var payload = new byte[16];
                for (var offset = 0; offset < profile.Tasks; offset += 100)
                {
                    var batch = Enumerable.Range(0, Math.Min(100, profile.Tasks - offset)).Select(_ => new EnqueueRequest(Queue, payload) { MaxAttempts = 10 }).ToList();
                    await store.EnqueueManyAsync(batch, ct);
                }

                killed = [];
                for (var slot = 0; slot < profile.Kills; slot++)
                {
                    var pid = workers.ProcessId(slot) ?? throw new InvalidOperationException($"worker {slot} has no process");
                    await Await.Until(async () =>
                    {
                        var running = await LeasesOfAsync(pid);
                        return running.Count > 0 && (!channel || running.All(seen.Contains));
                    }, TimeSpan.FromSeconds(30), Poll, $"worker {slot} (pid {pid}) holds running tasks{(channel ? " whose heartbeats are on the topic" : "")}");
                    await workers.KillAsync(slot, ct);
                    await using (var record = admin.CreateCommand(Sql(EndToEndQueries.RecordKill)))
                    {
                        record.Parameters.Add(new NpgsqlParameter<int> { TypedValue = pid });
                        await record.ExecuteNonQueryAsync(ct);
                    }
                    // Read after the exit: exactly the leases the dead process still held.
                    killed.Add((pid, await LeasesOfAsync(pid)));
                }

                await Await.Until(async () => await ScalarAsync(EndToEndQueries.CountSucceeded, Queue) == profile.Tasks,
                    profile.Deadline, TimeSpan.FromMilliseconds(200), $"all {profile.Tasks} tasks succeed (worker logs: {logs})");
            }

            var killedLeases = new List<KilledLease>();
            foreach (var (pid, leases) in killed)
            {
                foreach (var (taskId, token) in leases)
                {
                    await using var read = admin.CreateCommand(Sql(EndToEndQueries.LeaseEnd));
                    read.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = taskId });
                    read.Parameters.Add(new NpgsqlParameter<long> { TypedValue = token });
                    read.Parameters.Add(new NpgsqlParameter<int> { TypedValue = pid });
                    await using var reader = await read.ExecuteReaderAsync(ct);
                    if (!await reader.ReadAsync(ct)) throw new InvalidOperationException($"no history row ends lease ({taskId}, {token}) of killed pid {pid}");
                    killedLeases.Add(new KilledLease(taskId, token, reader.GetFieldValue<DateTimeOffset>(3), reader.GetFieldValue<DateTimeOffset>(0),
                        reader.IsDBNull(1) ? null : reader.GetFieldValue<DateTimeOffset>(1), (TaskState)reader.GetInt16(2)));
                }
            }

            NpgsqlConnection.ClearAllPools();
            var transitions = await ScalarAsync(EndToEndQueries.CountTransitions);
            var updates = await RowUpdatesAsync(applicationName, schema, transitions, ct);
            return new EndToEndResult(channel, profile.Tasks,
                Succeeded: await ScalarAsync(EndToEndQueries.CountSucceeded, Queue),
                SucceededTransitions: await ScalarAsync(EndToEndQueries.CountSucceededTransitions),
                DoubleAccepted: await ScalarAsync(ChaosQueries.CountDoubleAccepted),
                AcceptedWithoutEffect: await ScalarAsync(EndToEndQueries.CountAcceptedWithoutEffect, Queue),
                TokenReused: await ScalarAsync(EndToEndQueries.CountTokenReused),
                Transitions: transitions, RowUpdates: updates, killedLeases, [.. killed.Select(k => k.Leases.Count)]);
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await using var drop = admin.CreateCommand(Sql(EndToEndQueries.DropSchema));
            await drop.ExecuteNonQueryAsync(CancellationToken.None);
        }
    }

    private static List<string> WorkerArguments(EndToEndProfile profile, bool channel, string schema, string connectionString)
    {
        string Span(TimeSpan t) => t.ToString("c", CultureInfo.InvariantCulture);
        var q = $"--Konduit:Queues:{Queue}";
        List<string> arguments =
        [
            "--Konduit:Store=Postgres",
            $"--Konduit:Postgres:ConnectionString={connectionString}",
            $"--Konduit:Postgres:Schema={schema}",
            // Both runs sweep often, so the store-heartbeat run's killed leases are reclaimed soon after they expire.
            $"--Konduit:SweepInterval={Span(TimeSpan.FromMilliseconds(500))}",
            $"{q}:Concurrency={profile.Concurrency}",
            $"{q}:MaxPollInterval={Span(TimeSpan.FromMilliseconds(250))}",
            // With the channel the store lease is the ceiling, renewed in the store every third of it (the default
            // fraction: longer than any task here); without it the store lease is the liveness timeout, renewed in the
            // store every heartbeat interval.
            $"{q}:LeaseSeconds={(channel ? profile.Ceiling : profile.LivenessTimeout).TotalSeconds.ToString(CultureInfo.InvariantCulture)}",
            $"--Chaos:Queue={Queue}",
            $"--Chaos:EffectsConnectionString={connectionString}",
            $"--Chaos:EffectsTable={schema}.effects",
            $"--Chaos:WorkMilliseconds={profile.Work.TotalMilliseconds.ToString(CultureInfo.InvariantCulture)}",
        ];
        if (!channel) arguments.Add($"{q}:HeartbeatInterval={Span(profile.HeartbeatInterval)}");
        return arguments;
    }

    private static IEnumerable<string> KafkaArguments(KafkaFixture kafka, EndToEndProfile profile, string topic)
    {
        string Span(TimeSpan t) => t.ToString("c", CultureInfo.InvariantCulture);
        const string k = "--Konduit:KafkaHeartbeats";
        return
        [
            "--Konduit:Heartbeats=Kafka",
            $"{k}:BootstrapServers={kafka.BootstrapServers}",
            $"{k}:Topic={topic}",
            $"{k}:ConsumerGroup=monitors-{topic}",
            $"{k}:HeartbeatInterval={Span(profile.HeartbeatInterval)}",
            $"{k}:LivenessTimeout={Span(profile.LivenessTimeout)}",
            // Below LivenessTimeout − HeartbeatInterval (validated); generous, so a slow shared machine does not push
            // the workers into the store fallback.
            $"{k}:DeliveryTimeout={Span(profile.LivenessTimeout - (profile.HeartbeatInterval * 2))}",
            // The mock's rebalances wait session.timeout − 1 s (issue 12).
            $"{k}:SessionTimeout={Span(TimeSpan.FromSeconds(2))}",
            $"{k}:RunMonitor=false",
        ];
    }

    /// <summary>
    /// tasks.n_tup_upd once every session of the run has ended (backends report their counts when they exit): at
    /// least <paramref name="atLeast"/> (the committed transitions) and the same in two reads.
    /// </summary>
    private static async Task<long> RowUpdatesAsync(string applicationName, string schema, long atLeast, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(ServerConnectionString) { ApplicationName = "konduit-e2e-stats" }.ConnectionString);
        await connection.OpenAsync(ct);
        await Await.Until(async () =>
        {
            await using var sessions = new NpgsqlCommand(EndToEndQueries.CountSessions, connection);
            sessions.Parameters.Add(new NpgsqlParameter<string> { TypedValue = applicationName });
            return Convert.ToInt64(await sessions.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture) == 0;
        }, TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(100), "every session of the run has ended");
        long updates = -1, previous;
        await Await.Until(async () =>
        {
            await using (var clear = new NpgsqlCommand(EndToEndQueries.ClearStatsSnapshot, connection)) await clear.ExecuteNonQueryAsync(ct);
            await using var read = new NpgsqlCommand(EndToEndQueries.RowUpdates, connection);
            read.Parameters.Add(new NpgsqlParameter<string> { TypedValue = schema });
            previous = updates;
            updates = Convert.ToInt64(await read.ExecuteScalarAsync(ct) ?? 0L, CultureInfo.InvariantCulture);
            return updates >= atLeast && updates == previous;
        }, TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(500), $"the server reports at least the {atLeast} committed transitions in tasks.n_tup_upd");
        return updates;
    }
}

/// <summary>The leases whose heartbeats the test's own reader of the topic has seen (a precondition for a kill, never a verdict).</summary>
internal sealed class SeenLeases : IHeartbeatObserver, IAsyncDisposable
{
    private readonly ConcurrentDictionary<(Guid, long), bool> _seen = new();
    private readonly CancellationTokenSource _stop = new();
    private KafkaHeartbeatChannel? _channel;
    private Task _consuming = Task.CompletedTask;
    private int _assigned;

    public int Assigned => Volatile.Read(ref _assigned);

    public bool Contains((Guid TaskId, long Token) lease) => _seen.ContainsKey(lease);

    public void Start(KafkaHeartbeatChannel channel, CancellationToken cancellationToken)
    {
        _channel = channel;
        var linked = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token, cancellationToken);
        _consuming = channel.ConsumeAsync(this, linked.Token).ContinueWith(_ => linked.Dispose(), TaskScheduler.Default);
    }

    public void OnHeartbeat(LeaseHeartbeat heartbeat, int partition) => _seen[(heartbeat.TaskId, heartbeat.LeaseToken)] = true;

    public void OnAssigned(IReadOnlyCollection<int> partitions) => Interlocked.Add(ref _assigned, partitions.Count);

    public void OnRevoked(IReadOnlyCollection<int> partitions) => Interlocked.Add(ref _assigned, -partitions.Count);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _consuming;
        if (_channel is not null) await _channel.DisposeAsync();
        _stop.Dispose();
    }
}
