// Konduit benchmarks. Two modes of one executable:
//
//   load  (default)  burn-down, steady state, churn and per-operation loops with fixed time budgets; writes
//                    artifacts/bench/report-<profile>-<time>.md + .svg and prints their paths.
//                    --quick (default) | --full | --profile smoke; --scenarios enqueue,batch,cycle,burndown,steady,churn;
//                    --targets raw-sql,postgres,inmemory; --out <dir>; --bdn <dir> (fold BenchmarkDotNet's tables in)
//   bdn              BenchmarkDotNet per-operation figures (MemoryDiagnoser); --quick = short job; other args go to BDN
//                    (e.g. --filter '*Enqueue*').
//
// Services come from KONDUIT_BENCH_POSTGRES (else KONDUIT_TEST_POSTGRES from .services/env): see scripts/bench.sh.
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using Konduit.Benchmarks;

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
        config = config.AddJob(Job.Default.WithWarmupCount(2).WithIterationCount(5).WithIterationTime(Perfolizer.Horology.TimeInterval.FromMilliseconds(250)).WithId("quick"));
    BenchmarkSwitcher.FromAssembly(typeof(EnqueueBenchmarks).Assembly).Run(bdnArgs.Length == 0 ? ["--filter", "*"] : bdnArgs, config);
    return 0;
}
if (mode != "load")
{
    Console.Error.WriteLine($"unknown mode '{mode}': use load or bdn");
    return 2;
}

string? Option(string name)
{
    var i = Array.IndexOf(rest, name);
    return i >= 0 && i + 1 < rest.Length ? rest[i + 1] : null;
}
var profile = rest.Contains("--full") ? Profile.Full : Profile.Parse(Option("--profile") ?? "quick");
var scenarios = Option("--scenarios")?.Split(',', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
var wanted = Option("--targets")?.Split(',', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
var outDir = Path.GetFullPath(Option("--out") ?? Path.Combine("artifacts", "bench"));

using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
var run = await BenchRun.RunAsync(profile, BenchEnvironment.FromEnvironment(), scenarios, wanted, outDir, Option("--bdn"), Console.Out, cts.Token);
Console.WriteLine();
Console.WriteLine($"report: {run.Markdown}");
Console.WriteLine($"chart:  {run.Svg}");
return 0;
