using System.Text;

namespace Konduit.Benchmarks;

/// <summary>One load-runner run end to end: build the available targets, run the scenarios, write the report.</summary>
public static class BenchRun
{
    public sealed record Outcome(string Markdown, string Svg, LoadResults Results);

    public static async Task<Outcome> RunAsync(Profile profile, BenchEnvironment env, ISet<string>? scenarios, ISet<string>? wantedTargets,
        string outDir, string? bdnDir, TextWriter output, CancellationToken cancellationToken)
    {
        var targets = new List<IBenchTarget>();
        var unavailable = new List<string>();
        try
        {
            foreach (var f in Targets.All(env))
            {
                if (wantedTargets is { Count: > 0 } && !wantedTargets.Contains(f.Name)) continue;
                if (!f.Available)
                {
                    unavailable.Add($"{f.Name} ({f.Why})");
                    continue;
                }
                targets.Add(await f.Create(cancellationToken));
            }
            output.WriteLine($"konduit bench: profile {profile.Name}, targets {string.Join(", ", targets.Select(t => t.Name))}");
            var results = await new LoadRunner(profile, targets, output, scenarios).RunAsync(cancellationToken);
            var (md, svg) = Report.Write(outDir, profile, targets.Select(t => t.Name).ToList(), results, unavailable, BdnSummary(bdnDir));
            return new Outcome(md, svg, results);
        }
        finally
        {
            foreach (var t in targets) await t.DisposeAsync();
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
