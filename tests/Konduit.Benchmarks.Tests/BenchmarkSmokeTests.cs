using System.Diagnostics;
using Xunit;

namespace Konduit.Benchmarks.Tests;

/// <summary>
/// Keeps the benchmark harness from rotting: every scenario and every BenchmarkDotNet method runs once, tiny. Results
/// are never asserted as times (issue 7); only that each scenario produced its rows and the report was written.
/// PostgreSQL targets run when KONDUIT_TEST_POSTGRES is set (scripts/test.sh sources .services/env); otherwise
/// only the in-memory store runs.
/// </summary>
public sealed class BenchmarkSmokeTests
{
    private static readonly BenchEnvironment Env = BenchEnvironment.FromEnvironment();
    private static bool HasPostgres => Env.Postgres is not null;

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
            Assert.StartsWith("<svg", await File.ReadAllTextAsync(run.Svg, TestContext.Current.CancellationToken), StringComparison.Ordinal);
            var scenarios = run.Results.Throughput.Select(r => r.Scenario).ToHashSet();
            Assert.Contains(LoadRunner.EnqueueSingle16, scenarios);
            Assert.Contains(LoadRunner.EnqueueBatchArrays, scenarios);
            Assert.Contains(LoadRunner.Cycle1(1), scenarios);
            Assert.Contains(LoadRunner.BurnDownLoops, scenarios);
            Assert.Contains(LoadRunner.BurnDownRuntime, scenarios);
            Assert.All(run.Results.Throughput, r => Assert.True(r.Tasks > 0, $"{r.Scenario} [{r.Target}] did no work"));
            Assert.NotEmpty(run.Results.Steady);
            Assert.Contains("## Main table", await File.ReadAllTextAsync(run.Markdown, TestContext.Current.CancellationToken), StringComparison.Ordinal);
            if (HasPostgres)
            {
                Assert.Contains(run.Results.Throughput, r => r.Target == "raw-sql" && r.Scenario == LoadRunner.EnqueueBatchCopy);
                Assert.Contains(run.Results.Throughput, r => r.Target == "postgres" && r.Scenario == LoadRunner.BurnDownRuntime);
                Assert.NotEmpty(run.Results.Churn);
            }
        }
        finally
        {
            Server.Release();
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Every_BenchmarkDotNet_method_runs_once()
    {
        string[] targets = HasPostgres ? ["raw-sql", "postgres", "inmemory"] : ["inmemory"];
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
