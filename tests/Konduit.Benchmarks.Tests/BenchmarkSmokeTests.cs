using System.Diagnostics;
using System.Globalization;
using StackExchange.Redis;
using Xunit;

namespace Konduit.Benchmarks.Tests;

/// <summary>
/// Keeps the benchmark harness from rotting: every scenario and every BenchmarkDotNet method runs once, tiny. Results
/// are never asserted as times (issue 7); only that each scenario produced its rows for every target and the report
/// was written. Server-backed targets run when their variable is set (KONDUIT_TEST_POSTGRES, _REDIS, _CASSANDRA:
/// scripts/test.sh sources .services/env); otherwise only the in-memory store and log run.
/// </summary>
public sealed class BenchmarkSmokeTests
{
    private static readonly BenchEnvironment Env = BenchEnvironment.FromEnvironment();
    private static bool HasPostgres => Env.Postgres is not null;
    private static bool HasRedis => Env.Redis is not null;
    private static bool HasRedisCluster => Env.RedisCluster is not null;

    // The load runner and BenchmarkDotNet classes share the benchmark schemas: one test at a time touches them.
    private static readonly SemaphoreSlim Server = new(1, 1);

    [Fact]
    public async Task Every_load_scenario_runs_once_and_writes_the_report()
    {
        var dir = Path.Combine(Path.GetTempPath(), "konduit-bench-smoke-" + Guid.NewGuid().ToString("N")[..8]);
        await Server.WaitAsync(TestContext.Current.CancellationToken);
        try
        {
            var run = await BenchRun.RunAsync(Profile.Smoke, Env, null, null, dir, null, TextWriter.Null, TestContext.Current.CancellationToken);

            Assert.True(File.Exists(run.Markdown));
            Assert.NotEmpty(run.Charts);
            foreach (var chart in run.Charts)
            {
                Assert.Contains("<svg", await File.ReadAllTextAsync(chart.Svg, TestContext.Current.CancellationToken), StringComparison.Ordinal);
                Assert.True(File.Exists(chart.Png), chart.Png);
            }
            var r = run.Results;
            Assert.Equal(LoadRunner.ScenarioNames, r.Timings.Select(t => t.Scenario));

            // Every scenario × every available target, once.
            var targets = Targets.All(Env).Where(f => f.Available).Select(f => f.Name).ToList();
            var stores = targets.Where(t => !t.StartsWith("raw-", StringComparison.Ordinal)).ToList();
            string[] perTarget =
            [
                LoadRunner.EnqueueSingle1, LoadRunner.EnqueueSingle16, LoadRunner.EnqueueBatchArrays,
                .. Profile.Smoke.WorkerCounts.SelectMany(w => new[] { LoadRunner.Cycle1(w), LoadRunner.Cycle100(w) }),
                LoadRunner.BurnDownLoops,
            ];
            foreach (var scenario in perTarget)
                Assert.Equal(targets, r.Throughput.Where(x => x.Scenario == scenario).Select(x => x.Target));
            Assert.Equal(stores, r.Throughput.Where(x => x.Scenario == LoadRunner.BurnDownRuntime).Select(x => x.Target));
            // The chained unbatched cycle: every store, and raw-sql (the raw Redis baselines, single node and cluster, have
            // no such statement).
            var chaining = targets.Where(t => !t.StartsWith("raw-redis", StringComparison.Ordinal)).ToList();
            foreach (var w in Profile.Smoke.WorkerCounts)
                Assert.Equal(chaining, r.Throughput.Where(x => x.Scenario == LoadRunner.CycleCompleteAndLease(w)).Select(x => x.Target));
            foreach (var callers in Profile.Smoke.HeartbeatCallers)
                Assert.Equal(targets, r.Heartbeats.Where(x => x.Scenario == LoadRunner.Heartbeat(callers)).Select(x => x.Target));
            Assert.All(r.Throughput.Concat(r.Heartbeats), x => Assert.True(x.Tasks > 0, $"{x.Scenario} [{x.Target}] did no work"));
            // The Kafka row: heartbeats through the channel (the in-process mock unless KONDUIT_BENCH_KAFKA is set), and
            // with PostgreSQL the row writes per task with and without it (the channel writes lease and completion only).
            var kafka = Assert.IsType<KafkaHeartbeatRow>(r.KafkaHeartbeats);
            Assert.True(kafka.PublishedPerSecond > 0 && kafka.ConsumedPerSecond > 0, $"kafka: published {kafka.PublishedPerSecond}/s, consumed {kafka.ConsumedPerSecond}/s");
            Assert.Equal(0, kafka.DeliveryFailures);
            if (HasPostgres)
            {
                var writes = Assert.IsType<KafkaWritesRow>(kafka.Writes);
                Assert.Equal(2.0, writes.ChannelPerTask);
                Assert.True(writes.StorePerTask > writes.ChannelPerTask, $"store heartbeats wrote {writes.StorePerTask} rows per task");
            }

            var logs = EventLogTarget.All(Env).Where(l => l.Why is null).Select(l => l.Name).ToList();
            Assert.Equal(4 * logs.Count, r.Events.Count);
            Assert.All(r.Events, x => Assert.True(x.Tasks > 0, $"{x.Scenario} [{x.Target}] appended nothing"));

            // Steady state: idle and loaded with push off on every store, and with push on where the store has it.
            foreach (var store in stores)
            {
                foreach (var load in new[] { "idle", "loaded" })
                {
                    Assert.Contains(r.Steady, s => s.Target == store && s.Load == load && !s.Push);
                    Assert.InRange(r.Steady.Count(s => s.Target == store && s.Load == load && s.Push), 0, 1);
                }
            }

            var md = await File.ReadAllTextAsync(run.Markdown, TestContext.Current.CancellationToken);
            foreach (var section in new[] { "## Which store for which need", "## Throughput", "## Heartbeats", "| kafka channel, published (acked) |", "| kafka channel, consumed |", "## Event append", "## Pickup latency" })
                Assert.Contains(section, md, StringComparison.Ordinal);
            if (HasPostgres)
            {
                // The idle pickup's raw floor: one idle row with push, every task it produced leased by its consumer.
                var floor = Assert.Single(r.Steady, s => s.Target == "raw-sql");
                Assert.Equal(("idle", true), (floor.Load, floor.Push));
                Assert.True(floor.Produced > 0 && floor.Started == floor.Produced, $"raw floor: {floor.Started} of {floor.Produced} picked up");
                Assert.Contains("÷ the floor's, this run: `Postgres`", md, StringComparison.Ordinal);
                Assert.Contains(r.Throughput, x => x.Target == "raw-sql" && x.Scenario == LoadRunner.EnqueueBatchCopy);
                Assert.Equal(targets.Where(t => t.StartsWith("postgres", StringComparison.Ordinal)), r.Churn.Select(c => c.Target).Distinct());
                Assert.All(r.Churn, c => Assert.Contains(c.Storage!.Relations, rel => rel.Name == "tasks" && !rel.IsIndex));
                // The pinned horizon: every PostgreSQL-backed target, raw SQL included, before, during and after a held
                // xid that other sessions' transactions really passed, with its schema's tables and indexes each interval.
                Assert.Equal(targets.Where(t => t == "raw-sql" || t.StartsWith("postgres", StringComparison.Ordinal)), r.HorizonRuns.Select(h => h.Target));
                foreach (var pin in r.HorizonRuns)
                {
                    Assert.True(pin.Xid > 0 && pin.ReleasedAt > pin.PinnedAt, $"{pin.Target}: xid {pin.Xid} held {pin.PinnedAt} → {pin.ReleasedAt}");
                    Assert.True(pin.XidAge > 0, $"{pin.Target}: no transaction took an xid while xid {pin.Xid} was held");
                    var rows = r.Horizon.Where(x => x.Target == pin.Target).ToList();
                    Assert.Equal([HorizonRow.Before, HorizonRow.Pinned, HorizonRow.After], rows.Select(x => x.Phase).Distinct());
                    Assert.True(rows.Sum(x => x.Completed) > 0, $"{pin.Target}: the horizon churn completed nothing");
                    Assert.All(rows, x => Assert.Contains(x.Storage!.Relations, rel => rel.IsIndex && rel.Bytes > 0));
                    Assert.True(HorizonSummary.Of(pin, rows, Profile.Smoke.HorizonRecoveryWindow).Baseline > 0, $"{pin.Target}: no baseline");
                }
                Assert.Contains("## Pinned xmin horizon", md, StringComparison.Ordinal);
                // The header names this run's own schemas, not a fixed one.
                Assert.DoesNotContain("schema `konduit_bench_raw`", md, StringComparison.Ordinal);
                Assert.Contains("schema `konduit_bench_raw_", md, StringComparison.Ordinal);
            }
            if (HasRedis)
                Assert.Contains("× raw Redis Streams", md, StringComparison.Ordinal);
            if (HasRedisCluster)
            {
                // The cluster pair: both rows in every scenario above, and the store's ratio column beside the others.
                Assert.Contains("raw-redis-cluster", targets);
                Assert.Contains("redis-cluster", stores);
                var lines = md.Split('\n');
                var header = Array.FindIndex(lines, l => l.StartsWith("| scenario |", StringComparison.Ordinal) && l.Contains("| redis-cluster ÷ raw-redis-cluster |", StringComparison.Ordinal));
                Assert.True(header >= 0, "no throughput table with a redis-cluster ÷ raw-redis-cluster column");
                var column = Array.IndexOf(lines[header].Split('|'), " redis-cluster ÷ raw-redis-cluster ");
                var table = lines.Skip(header + 2).TakeWhile(l => l.StartsWith('|')).ToList();
                foreach (var w in Profile.Smoke.WorkerCounts)
                {
                    foreach (var scenario in new[] { LoadRunner.Cycle1(w), LoadRunner.Cycle100(w) })
                    {
                        var store = r.Throughput.Single(x => x.Scenario == scenario && x.Target == "redis-cluster");
                        var raw = r.Throughput.Single(x => x.Scenario == scenario && x.Target == "raw-redis-cluster");
                        Assert.True(store.TasksPerSecond > 0 && raw.TasksPerSecond > 0, $"{scenario}: redis-cluster {store.TasksPerSecond}/s, raw-redis-cluster {raw.TasksPerSecond}/s");
                        // The cluster ratio column of this scenario's row holds a figure, not "–".
                        var row = table.Single(l => l.StartsWith($"| {scenario} |", StringComparison.Ordinal)).Split('|');
                        Assert.Matches(@"^ \*\*\d+\.\d\d\*\* $", row[column]);
                    }
                }
            }
        }
        finally
        {
            Server.Release();
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); // absent when the run failed early: keep its exception
        }
    }

    [Fact]
    public async Task The_raw_cluster_baseline_spreads_32_queues_over_all_three_masters_and_cleans_up_one_key_per_del()
    {
        Assert.True(HasRedisCluster, $"{BenchEnvironment.NoRedisCluster}: `scripts/services.sh up` starts one on 127.0.0.1:26401-26406");
        var ct = TestContext.Current.CancellationToken;
        await using var admin = await ConnectionMultiplexer.ConnectAsync(Env.RedisCluster!);
        var target = (RawRedisTarget)await Targets.All(Env).Single(f => f.Name == "raw-redis-cluster").Create(ct);
        var pattern = "{" + target.KeyPrefix + ":*";
        try
        {
            var queues = Enumerable.Range(0, 32).Select(i => "spread-" + i.ToString(CultureInfo.InvariantCulture)).ToArray();
            foreach (var queue in queues) await target.EnqueueBatchAsync(queue, 0, 3, copy: false, ct);
            foreach (var queue in queues) Assert.Equal(3, await target.CycleAsync(queue, "w", 100, ct));

            var masters = admin.GetServers().Where(s => s.IsConnected && !s.IsReplica).ToList();
            Assert.Equal(3, masters.Count);
            var held = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var master in masters)
            {
                var keys = 0;
                await foreach (var _ in master.KeysAsync(pattern: pattern, pageSize: 1000)) keys++;
                held[master.EndPoint!.ToString()!] = keys;
            }
            // Every queue's stream is one key on one master (XDEL leaves the emptied stream and its group in place).
            Assert.Equal(queues.Length, held.Values.Sum());
            Assert.All(held, m => Assert.True(m.Value > 0, $"master {m.Key} holds none of the 32 queues' streams ({string.Join(", ", held)})"));

            // The reset deletes across slots, one key per DEL (a multi-key DEL would fail with CROSSSLOT).
            await target.ResetAsync(ct);
            foreach (var master in masters)
                await foreach (var key in master.KeysAsync(pattern: pattern, pageSize: 1000)) Assert.Fail($"{key} survived the reset on {master.EndPoint}");
        }
        finally
        {
            await target.DisposeAsync();
        }
    }

    [Fact]
    public async Task Every_BenchmarkDotNet_method_runs_once()
    {
        var targets = TargetByName.Available().ToList();
        await Server.WaitAsync(TestContext.Current.CancellationToken);
        try
        {
            foreach (var target in targets)
            {
                var enqueue = new EnqueueBenchmarks { Target = target };
                await enqueue.SetupAsync();
                await enqueue.EnqueueSingle();
                await enqueue.EnqueueBatch100();
                await enqueue.CleanupAsync();

                var cycle = new CycleBenchmarks { Target = target, Workers = 4, Prefill = 1_700 };
                await cycle.SetupAsync();
                await cycle.Cycle1();
                await cycle.Cycle100();
                await cycle.CleanupAsync();
            }
            if (HasPostgres)
            {
                var copy = new CopyBenchmarks();
                await copy.SetupAsync();
                await copy.RawCopy100();
                await copy.CleanupAsync();
            }
        }
        finally
        {
            Server.Release();
        }
    }

    [Fact]
    public async Task Compose_file_parses_with_docker_compose_config()
    {
        var binary = FindOnPath("docker-compose");
        Assert.SkipWhen(binary is null, "docker-compose is not installed (scripts/services.sh up installs it through scripts/services.d/tools.sh)");
        var root = RepoRoot();
        var psi = new ProcessStartInfo(binary!, ["-f", Path.Combine(root, "docker-compose.bench.yml"), "config", "-q"])
        {
            WorkingDirectory = root,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        using var process = Process.Start(psi)!;
        var stderr = await process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        Assert.True(process.ExitCode == 0, $"docker-compose config failed ({process.ExitCode}): {stderr}");
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(dir => Path.Combine(dir, name)).FirstOrDefault(File.Exists);

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Konduit.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException("Konduit.sln not found above " + AppContext.BaseDirectory);
    }
}
