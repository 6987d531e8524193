using System.Diagnostics;
using System.Text;

namespace Konduit.Benchmarks;

/// <summary>One load-runner run end to end: build the available targets and event logs, run the scenarios, write the report.</summary>
public static class BenchRun
{
    /// <param name="Charts">The charts written next to the report (SVG and PNG each).</param>
    public sealed record Outcome(string Markdown, IReadOnlyList<Charts.Chart> Charts, LoadResults Results);

    /// <param name="wantedTargets">Target names to run (stores, raw baselines and event logs share the names: <c>postgres</c> selects both the store and the Postgres event log); all when null or empty.</param>
    public static async Task<Outcome> RunAsync(Profile profile, BenchEnvironment env, ISet<string>? scenarios, ISet<string>? wantedTargets,
        string outDir, string? bdnDir, TextWriter output, CancellationToken cancellationToken)
    {
        var wall = Stopwatch.StartNew();
        bool Wanted(string name) => wantedTargets is not { Count: > 0 } || wantedTargets.Contains(name);
        bool Runs(string scenario) => scenarios is not { Count: > 0 } || scenarios.Contains(scenario);
        var targets = new List<IBenchTarget>();
        var eventLogs = new List<EventLogTarget>();
        var unavailable = new List<string>();
        try
        {
            foreach (var f in Targets.All(env))
            {
                if (!Wanted(f.Name)) continue;
                if (!f.Available)
                {
                    unavailable.Add($"{f.Name} ({f.Why})");
                    continue;
                }
                targets.Add(await f.Create(cancellationToken));
            }
            if (Runs("events"))
            {
                foreach (var (name, why, create) in EventLogTarget.All(env))
                {
                    if (!Wanted(name)) continue;
                    if (why is not null)
                    {
                        unavailable.Add($"{name} event log ({why})");
                        continue;
                    }
                    eventLogs.Add(await create(cancellationToken));
                }
            }
            output.WriteLine($"konduit bench: profile {profile.Name}, targets {string.Join(", ", targets.Select(t => t.Name))}; event logs {string.Join(", ", eventLogs.Select(l => l.Name))}");
            var results = await new LoadRunner(profile, targets, eventLogs, output, scenarios).RunAsync(cancellationToken);
            var where = targets.Select(t => (t.Name, t.Where)).Concat(eventLogs.Select(l => ($"{l.Name} event log", l.Where))).ToList();
            var conditions = await BenchConditions.ReadAsync(env with
            {
                // Only the servers this run measured: their settings are the conditions of its figures.
                Postgres = targets.Any(t => t.Where.StartsWith("PostgreSQL", StringComparison.Ordinal)) || eventLogs.Any(l => l.Name == "postgres") ? env.Postgres : null,
                Redis = targets.Any(t => t.Where.Contains("Redis ", StringComparison.Ordinal)) ? env.Redis : null,
                Cassandra = eventLogs.Any(l => l.Name.StartsWith("cassandra", StringComparison.Ordinal)) ? env.Cassandra : null,
            }, cancellationToken);
            var written = Report.Write(outDir, profile, new Report.RunInfo(targets.Select(t => t.Name).ToList(), targets.Where(t => t.Baseline is not null).ToDictionary(t => t.Name, t => t.Baseline!),
                eventLogs.Select(l => l.Name).ToList(), where, unavailable, env.Kafka, wall.Elapsed, conditions), results, BdnSummary(bdnDir));
            return new Outcome(written.Markdown, [.. written.Charts.Select(c => c with { Svg = Path.Combine(outDir, c.Svg), Png = Path.Combine(outDir, c.Png) })], results);
        }
        finally
        {
            foreach (var t in targets) await t.DisposeAsync();
            foreach (var l in eventLogs) await l.DisposeAsync();
        }
    }

    /// <summary>BenchmarkDotNet's GitHub-flavoured tables from a results folder, if any.</summary>
    private static string? BdnSummary(string? dir)
    {
        if (dir is null) return null;
        var results = Path.Combine(dir, "results");
        if (!Directory.Exists(results)) return null;
        var sb = new StringBuilder();
        foreach (var file in Directory.GetFiles(results, "*-report-github.md").Order(StringComparer.Ordinal))
            sb.AppendLine(File.ReadAllText(file)).AppendLine();
        return sb.Length == 0 ? null : sb.ToString();
    }
}
