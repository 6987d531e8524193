using System.Diagnostics;
using System.Globalization;
using System.Text;
using Konduit.Heartbeats;
using Konduit.Hosting;
using Konduit.Kafka;
using Konduit.Kafka.Tests;
using Konduit.Postgres;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Konduit.Benchmarks;

/// <summary>Postgres row updates per task of one runtime run, with store heartbeats and with the Kafka channel (pg_stat_user_tables).</summary>
public sealed record KafkaWritesRow(int Tasks, int IntervalsPerTask, TimeSpan HeartbeatInterval, double StorePerTask, double ChannelPerTask)
{
    public double Fewer => StorePerTask > 0 ? 1 - (ChannelPerTask / StorePerTask) : double.NaN;
}

/// <summary>The heartbeat table's Kafka row: the channel's heartbeats/s, and what it saves Postgres.</summary>
/// <param name="Where">The broker: the in-process librdkafka mock cluster, or KONDUIT_BENCH_KAFKA.</param>
/// <param name="Heartbeats">Heartbeats published (and consumed) in the rate loop.</param>
/// <param name="QueuedPerSecond">TryPublish calls per second (librdkafka's local queue, never waiting).</param>
/// <param name="PublishedPerSecond">Heartbeats acknowledged by the brokers per second, from the first publish to the last acknowledgement.</param>
/// <param name="ConsumedPerSecond">Heartbeats received by one consumer-group member per second, from the first publish to the last receipt.</param>
/// <param name="Writes">Postgres writes per task with and without the channel; null when no PostgreSQL is configured.</param>
public sealed record KafkaHeartbeatRow(string Where, long Heartbeats, double QueuedPerSecond, double PublishedPerSecond, double ConsumedPerSecond,
    long DeliveryFailures, KafkaWritesRow? Writes, string? WritesWhy)
{
    /// <summary>The heartbeat table's row and the paragraph under it (Report.cs calls this; the columns are the table's).</summary>
    public static void AppendTo(StringBuilder sb, KafkaHeartbeatRow? row, string? configuredKafka)
    {
        var inv = CultureInfo.InvariantCulture;
        if (row is null)
        {
            sb.AppendLine("| kafka (heartbeat channel) | – | not measured | – | – | – | – | – |");
            sb.AppendLine();
            sb.AppendLine(inv, $"Kafka channel: not measured in this run (the heartbeat scenario did not run{(configuredKafka is null ? "" : $"; broker configured at {configuredKafka}")}).");
            sb.AppendLine();
            return;
        }
        sb.AppendLine(inv, $"| kafka channel, published (acked) | 1 producer | {row.PublishedPerSecond:N0} | – | – | – | – | – |");
        sb.AppendLine(inv, $"| kafka channel, consumed | 1 monitor | {row.ConsumedPerSecond:N0} | – | – | – | – | – |");
        sb.AppendLine();
        sb.AppendLine(inv, $"Kafka channel ({row.Where}): {row.Heartbeats:N0} heartbeats of 1,000 leases through `KafkaHeartbeatChannel`, queued at {row.QueuedPerSecond:N0}/s (`TryPublish` never waits), acknowledged at {row.PublishedPerSecond:N0}/s and consumed by one consumer-group member at {row.ConsumedPerSecond:N0}/s (both from the first publish to the last acknowledgement / receipt); {row.DeliveryFailures} delivery failures.");
        sb.AppendLine();
        if (row.Writes is { } w)
        {
            sb.AppendLine(inv, $"Postgres row updates per task through the runtime ({w.Tasks} tasks, each running {w.IntervalsPerTask} heartbeat intervals of {w.HeartbeatInterval.TotalMilliseconds:0} ms; `n_tup_upd + n_tup_del` of the run's own `tasks` table (a finished task leaves it by a delete) in `pg_stat_user_tables`): store heartbeats **{w.StorePerTask:0.00}**, Kafka channel **{w.ChannelPerTask:0.00}** ({w.Fewer:P1} fewer). With the channel a task's row is written on lease and on completion only: 2 + N against 2 for a task of N intervals.");
        }
        else
        {
            sb.AppendLine(inv, $"Postgres row updates per task with and without the channel: not measured ({row.WritesWhy}).");
        }
        sb.AppendLine();
    }
}

/// <summary>
/// Measures the Kafka heartbeat channel (issue 12): heartbeats/s published and consumed on the broker (the in-process
/// librdkafka mock cluster unless KONDUIT_BENCH_KAFKA names one), and Postgres row writes per task through the runtime
/// with store heartbeats and with the channel, counted by the server.
/// </summary>
public static class KafkaHeartbeatBench
{
    private const string Queue = "bench.kafka";

    private sealed record Size(int Heartbeats, int Tasks, int Intervals);

    private static Size SizeOf(Profile profile) => profile.Name switch
    {
        "smoke" => new(2_000, 8, 5),
        "full" => new(200_000, 200, 40),
        _ => new(20_000, 50, 20),
    };

    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);

    public static async Task<KafkaHeartbeatRow> RunAsync(Profile profile, BenchEnvironment env, TextWriter output, CancellationToken ct)
    {
        var size = SizeOf(profile);
        using var mock = env.Kafka is null ? new MockKafkaCluster(1) : null;
        var bootstrap = env.Kafka ?? mock!.BootstrapServers;
        var where = mock is null ? $"broker {env.Kafka}" : "librdkafka mock cluster, 1 broker, in process";

        var topic = Targets.NewName("hb").Replace('_', '-');
        await CreateTopicAsync(mock, bootstrap, topic, 4);
        var (queued, published, consumed, failures) = await RateAsync(Options(bootstrap, topic), size.Heartbeats, ct);
        lock (output) output.WriteLine($"kafka heartbeats ({where}): queued {queued:0}/s, published {published:0}/s, consumed {consumed:0}/s");

        if (env.Postgres is null) return new(where, size.Heartbeats, queued, published, consumed, failures, null, BenchEnvironment.NoPostgres);
        var store = await RowUpdatesPerTaskAsync(env.Postgres, null, size, ct);
        var writesTopic = Targets.NewName("hbw").Replace('_', '-');
        await CreateTopicAsync(mock, bootstrap, writesTopic, 4);
        var channel = await RowUpdatesPerTaskAsync(env.Postgres, Options(bootstrap, writesTopic), size, ct);
        lock (output) output.WriteLine($"postgres row updates per task: store heartbeats {store:0.00}, kafka channel {channel:0.00}");
        return new(where, size.Heartbeats, queued, published, consumed, failures, new KafkaWritesRow(size.Tasks, size.Intervals, Interval, store, channel), null);
    }

    private static KafkaHeartbeatOptions Options(string bootstrap, string topic) => new()
    {
        BootstrapServers = bootstrap,
        Topic = topic,
        ConsumerGroup = "monitors-" + topic,
        HeartbeatInterval = Interval,
        LivenessTimeout = Interval * 10,
        DeliveryTimeout = Interval * 7,
        // The mock's rebalances wait session.timeout − 1 s (issue 12).
        SessionTimeout = TimeSpan.FromSeconds(2),
        RunMonitor = false,
    };

    private static async Task CreateTopicAsync(MockKafkaCluster? mock, string bootstrap, string topic, int partitions)
    {
        if (mock is not null)
        {
            // CreateTopics hangs on the mock (issue 12): its own API instead.
            mock.CreateTopic(topic, partitions, 1);
            return;
        }
        using var admin = new Confluent.Kafka.AdminClientBuilder(new Confluent.Kafka.AdminClientConfig { BootstrapServers = bootstrap }).Build();
        await admin.CreateTopicsAsync([new Confluent.Kafka.Admin.TopicSpecification { Name = topic, NumPartitions = partitions, ReplicationFactor = -1 }]);
    }

    /// <summary>One producer, one consumer-group member: queued, acknowledged and consumed heartbeats/s.</summary>
    private static async Task<(double Queued, double Published, double Consumed, long Failures)> RateAsync(KafkaHeartbeatOptions options, int count, CancellationToken ct)
    {
        await using var channel = new KafkaHeartbeatChannel(options);
        var observer = new CountingObserver();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var consuming = channel.ConsumeAsync(observer, stop.Token);
        try
        {
            // The consumer reads from the newest offset: it must hold the partitions and read a probe before the clock starts.
            var probe = Guid.CreateVersion7();
            await UntilAsync(() => observer.Assigned == 4, TimeSpan.FromSeconds(30), "the consumer holds the topic's partitions", ct);
            await UntilAsync(() => channel.TryPublish(new LeaseHeartbeat(probe, 1, "probe", DateTimeOffset.UtcNow, TimeSpan.FromMinutes(1))) && observer.Count > 0,
                TimeSpan.FromSeconds(30), "the consumer reads the probe", ct);
            var before = observer.Count;
            var tasks = Enumerable.Range(0, 1000).Select(_ => Guid.CreateVersion7()).ToArray();
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < count; i++)
            {
                var beat = new LeaseHeartbeat(tasks[i % tasks.Length], 1 + (i / tasks.Length), "bench", DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5));
                if (!channel.TryPublish(beat)) throw new InvalidOperationException("the Kafka channel refused a heartbeat (local queue full or broker down)");
            }
            var queued = clock.Elapsed;
            channel.Flush(TimeSpan.FromSeconds(120));
            var published = clock.Elapsed;
            await UntilAsync(() => observer.Count - before >= count, TimeSpan.FromSeconds(120), "every heartbeat is consumed", ct);
            var consumed = clock.Elapsed;
            return (count / queued.TotalSeconds, count / published.TotalSeconds, count / consumed.TotalSeconds, channel.DeliveryFailures);
        }
        finally
        {
            await stop.CancelAsync();
            try
            {
                await consuming;
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    /// <summary>
    /// The runtime (AddKonduit, the Postgres store in a schema of its own) runs <see cref="Size.Tasks"/> tasks of
    /// <see cref="Size.Intervals"/> heartbeat intervals each, all at once; the server's <c>n_tup_upd</c> of that
    /// schema's tasks table ÷ tasks. <paramref name="kafka"/> null = store heartbeats (store lease = the channel's
    /// liveness timeout, the same dead-worker detection); otherwise the channel, with the store lease as its ceiling.
    /// </summary>
    private static async Task<double> RowUpdatesPerTaskAsync(string postgres, KafkaHeartbeatOptions? kafka, Size size, CancellationToken ct)
    {
        var schema = Targets.NewName(kafka is null ? "hbstore" : "hbkafka");
        var applicationName = "konduit-bench-" + schema.Replace('_', '-');
        var connectionString = new NpgsqlConnectionStringBuilder(postgres) { ApplicationName = applicationName }.ConnectionString;
        await using var admin = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(postgres) { ApplicationName = "konduit-bench-admin" }.ConnectionString);
        try
        {
            await using (var store = new PostgresTaskStore(new PostgresTaskStoreOptions { ConnectionString = connectionString, Schema = schema }))
            {
                await store.MigrateAsync(ct);
                var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
                builder.Logging.SetMinimumLevel(LogLevel.Warning);
                var q = $"Konduit:Queues:{Queue}";
                var settings = new Dictionary<string, string?>
                {
                    ["Konduit:Store"] = "Postgres",
                    ["Konduit:Postgres:ConnectionString"] = connectionString,
                    ["Konduit:Postgres:Schema"] = schema,
                    [$"{q}:Concurrency"] = size.Tasks.ToString(CultureInfo.InvariantCulture),
                    [$"{q}:MaxPollInterval"] = "00:00:00.100",
                };
                if (kafka is null)
                {
                    settings[$"{q}:LeaseSeconds"] = (Interval * 10).TotalSeconds.ToString(CultureInfo.InvariantCulture);
                    settings[$"{q}:HeartbeatInterval"] = Interval.ToString("c", CultureInfo.InvariantCulture);
                }
                else
                {
                    settings[$"{q}:LeaseSeconds"] = "60";
                    settings["Konduit:Heartbeats"] = "Kafka";
                    settings["Konduit:KafkaHeartbeats:BootstrapServers"] = kafka.BootstrapServers;
                    settings["Konduit:KafkaHeartbeats:Topic"] = kafka.Topic;
                    settings["Konduit:KafkaHeartbeats:ConsumerGroup"] = kafka.ConsumerGroup;
                    settings["Konduit:KafkaHeartbeats:HeartbeatInterval"] = kafka.HeartbeatInterval.ToString("c", CultureInfo.InvariantCulture);
                    settings["Konduit:KafkaHeartbeats:LivenessTimeout"] = kafka.LivenessTimeout.ToString("c", CultureInfo.InvariantCulture);
                    settings["Konduit:KafkaHeartbeats:DeliveryTimeout"] = kafka.EffectiveDeliveryTimeout.ToString("c", CultureInfo.InvariantCulture);
                    settings["Konduit:KafkaHeartbeats:SessionTimeout"] = kafka.SessionTimeout.ToString("c", CultureInfo.InvariantCulture);
                    // Writes are the question here; a monitor only reads (and expires dead leases: there are none).
                    settings["Konduit:KafkaHeartbeats:RunMonitor"] = "false";
                }
                builder.Configuration.AddInMemoryCollection(settings);
                builder.Services.AddSingleton(new BenchWork(Interval * size.Intervals));
                builder.Services.AddKonduit(builder.Configuration.GetSection("Konduit")).AddHandler<BenchWorkHandler>(Queue);
                using var host = builder.Build();
                await host.StartAsync(ct);
                try
                {
                    await store.EnqueueManyAsync([.. Enumerable.Range(0, size.Tasks).Select(i => new EnqueueRequest(Queue, Targets.Payload(i)))], ct);
                    await UntilAsync(async () => await ScalarAsync(admin, $"SELECT count(*) FROM \"{schema}\".task_history WHERE state = 2", ct) == size.Tasks,
                        TimeSpan.FromSeconds(60) + (Interval * size.Intervals * 2), "every task succeeds", ct);
                }
                finally
                {
                    await host.StopAsync(CancellationToken.None);
                }
            }
            NpgsqlConnection.ClearAllPools();
            // Backends report their table counts when they exit: wait until the run's sessions are gone, then for a stable count.
            await UntilAsync(async () => await ScalarAsync(admin, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", ct, applicationName) == 0,
                TimeSpan.FromSeconds(30), "the run's sessions end", ct);
            long updates = -1, previous = -2;
            await UntilAsync(async () =>
            {
                previous = updates;
                await ScalarAsync(admin, "SELECT 0 FROM pg_stat_clear_snapshot()", ct);
                updates = await ScalarAsync(admin, "SELECT coalesce(sum(n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'tasks'", ct, schema);
                return updates >= size.Tasks * 2 && updates == previous;
            }, TimeSpan.FromSeconds(30), "the server reports the run's row updates", ct, TimeSpan.FromMilliseconds(500));
            return (double)updates / size.Tasks;
        }
        finally
        {
            await using var drop = admin.CreateCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            await drop.ExecuteNonQueryAsync(CancellationToken.None);
        }
    }

    // The schema names above are generated here (Targets.NewName), never user input; values are parameters.
    private static async Task<long> ScalarAsync(NpgsqlDataSource dataSource, string sql, CancellationToken ct, params object[] parameters)
    {
        await using var command = dataSource.CreateCommand(sql);
        foreach (var p in parameters) command.Parameters.Add(new NpgsqlParameter { Value = p });
        return Convert.ToInt64(await command.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture);
    }

    private static Task UntilAsync(Func<bool> condition, TimeSpan deadline, string what, CancellationToken ct) =>
        UntilAsync(() => Task.FromResult(condition()), deadline, what, ct);

    private static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan deadline, string what, CancellationToken ct, TimeSpan? poll = null)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > deadline) throw new TimeoutException($"kafka heartbeat bench: {what} did not happen within {deadline.TotalSeconds:0} s");
            await Task.Delay(poll ?? TimeSpan.FromMilliseconds(20), ct);
        }
    }

    private sealed class CountingObserver : IHeartbeatObserver
    {
        private long _count;
        private int _assigned;

        public long Count => Interlocked.Read(ref _count);

        public int Assigned => Volatile.Read(ref _assigned);

        public void OnHeartbeat(LeaseHeartbeat heartbeat, int partition) => Interlocked.Increment(ref _count);

        public void OnAssigned(IReadOnlyCollection<int> partitions) => Interlocked.Add(ref _assigned, partitions.Count);

        public void OnRevoked(IReadOnlyCollection<int> partitions) => Interlocked.Add(ref _assigned, -partitions.Count);
    }
}

/// <summary>How long the write-count handler runs.</summary>
internal sealed record BenchWork(TimeSpan Duration);

/// <summary>A handler that holds its lease for <see cref="BenchWork.Duration"/> (so the lease is renewed N times).</summary>
internal sealed class BenchWorkHandler(BenchWork work) : ITaskHandler
{
    public Task HandleAsync(TaskContext context, CancellationToken cancellationToken) => Task.Delay(work.Duration, cancellationToken);
}
