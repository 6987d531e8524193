// Konduit benchmarks: see Usage below (or run with --help). scripts/bench.sh is the usual way in.
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Konduit.Benchmarks;

const string Usage = """
    Konduit benchmarks: two modes of one executable.

      load  (default)  every scenario × target with fixed time budgets; writes artifacts/bench/report-<profile>-<time>.md
                       and its charts (.svg and .png) and prints their paths (the report last).
          --quick (default) | --full | --profile quick|full|smoke
          --scenarios enqueue,batch,cycle,burndown,heartbeat,events,steady,churn,horizon
          --targets raw-sql,raw-redis,raw-redis-cluster,postgres,inmemory,redis,redis-cluster,postgresredis,cassandra   (event logs share the names)
          --out <dir>      report folder (default artifacts/bench)
          --bdn <dir>      fold BenchmarkDotNet's tables from <dir>/results into the report
      bdn              BenchmarkDotNet per-operation figures (MemoryDiagnoser); --quick = a short in-process job;
                       other arguments go to BenchmarkDotNet (e.g. --filter '*Enqueue*').

    Services come from KONDUIT_BENCH_POSTGRES / _REDIS / _REDIS_CLUSTER / _CASSANDRA (else KONDUIT_TEST_* from .services/env);
    targets without a configured server are listed in the report as not measured. The heartbeat table's Kafka row
    uses KONDUIT_BENCH_KAFKA (else KONDUIT_TEST_KAFKA, else librdkafka's mock cluster in process).
    """;

if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(Usage);
    return 0;
}

var mode = args.Length > 0 && !args[0].StartsWith('-') ? args[0] : "load";
var rest = args.Length > 0 && !args[0].StartsWith('-') ? args[1..] : args;

if (mode == "bdn")
{
    var quick = rest.Contains("--quick");
    var bdnArgs = rest.Where(a => a != "--quick").ToArray();
    var config = DefaultConfig.Instance
        .WithArtifactsPath(Path.GetFullPath(Path.Combine("artifacts", "bench", "bdn")))
        .WithOptions(ConfigOptions.JoinSummary);
    if (quick)
    {
        // In process (no generated project to build: that alone took most of a minute on 2 cores), one warm-up and
        // three 100 ms iterations, no overhead evaluation: per-operation figures and allocations in seconds.
        config = config.AddJob(Job.Default
            .WithToolchain(InProcessEmitToolchain.Instance)
            .WithLaunchCount(1).WithWarmupCount(1).WithIterationCount(3)
            .WithIterationTime(Perfolizer.Horology.TimeInterval.FromMilliseconds(100))
            .WithEvaluateOverhead(false)
            .WithId("quick"));
    }
    BenchmarkSwitcher.FromAssembly(typeof(EnqueueBenchmarks).Assembly).Run(bdnArgs.Length == 0 ? ["--filter", "*"] : bdnArgs, config);
    return 0;
}
if (mode != "load")
{
    Console.Error.WriteLine($"unknown mode '{mode}'.\n{Usage}");
    return 2;
}

string? Option(string name)
{
    var i = Array.IndexOf(rest, name);
    return i >= 0 && i + 1 < rest.Length ? rest[i + 1] : null;
}
var known = new HashSet<string>(StringComparer.Ordinal) { "--quick", "--full", "--profile", "--scenarios", "--targets", "--out", "--bdn" };
var unknown = rest.Where(a => a.StartsWith("--", StringComparison.Ordinal) && !known.Contains(a)).ToList();
if (unknown.Count > 0)
{
    Console.Error.WriteLine($"unknown option {string.Join(", ", unknown)}.\n{Usage}");
    return 2;
}
var profile = rest.Contains("--full") ? Profile.Full : Profile.Parse(Option("--profile") ?? "quick");
var scenarios = Option("--scenarios")?.Split(',', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
if (scenarios?.Except(LoadRunner.ScenarioNames).ToList() is { Count: > 0 } badScenarios)
{
    Console.Error.WriteLine($"unknown scenario {string.Join(", ", badScenarios)} (known: {string.Join(", ", LoadRunner.ScenarioNames)})");
    return 2;
}
var wanted = Option("--targets")?.Split(',', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
var outDir = Path.GetFullPath(Option("--out") ?? Path.Combine("artifacts", "bench"));

using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
var run = await BenchRun.RunAsync(profile, BenchEnvironment.FromEnvironment(), scenarios, wanted, outDir, Option("--bdn"), Console.Out, cts.Token);
Console.WriteLine();
foreach (var chart in run.Charts) Console.WriteLine($"chart:  {chart.Svg} (and .png)");
Console.WriteLine($"report: {run.Markdown}");
return 0;
