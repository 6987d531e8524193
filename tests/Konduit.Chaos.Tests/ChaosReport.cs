using System.Globalization;

namespace Konduit.Chaos.Tests;

/// <summary>
/// The scenario × store table of issue 13, one row per run, appended to artifacts/chaos-report.md of the checkout
/// (next to the test log CI keeps) and echoed to the test output.
/// </summary>
internal static class ChaosReport
{
    private static readonly Lock Gate = new();
    private static bool s_headerWritten;

    public const string Header =
        "| scenario | store | tasks | faults (kills) | lost | double-accepted | recovery ratio | recovery time | ran >1× | token reused | back to pending | enqueue errors | run |\n" +
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|";

    public static string Directory
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Konduit.sln"))) dir = dir.Parent;
            var artifacts = Path.Combine(dir?.FullName ?? Path.GetTempPath(), "artifacts");
            System.IO.Directory.CreateDirectory(artifacts);
            return artifacts;
        }
    }

    public static string Row(ChaosResult r)
    {
        var c = r.Counts;
        var ic = CultureInfo.InvariantCulture;
        var ratio = r.Rates.BeforeRate > 0 ? r.Rates.Ratio.ToString("0.00", ic) : "n/a";
        var time = r.Rates.RecoveryTime is { } t ? t.TotalSeconds.ToString("0.0", ic) + " s" : $"> {r.RecoveryDeadline.TotalSeconds:0} s";
        return string.Create(ic,
            $"| {r.Scenario} | {r.Store} | {c.Acknowledged} | {r.Faults} ({r.Kills}) | {c.Lost} | {c.DoubleAccepted?.ToString(ic) ?? "n/a (no server history)"} | " +
            $"{ratio} ({r.Rates.BeforeRate:0}/s before) | {time} | {c.RanMoreThanOnce} | {c.TokenReused} | {c.ReturnedToPending?.ToString(ic) ?? "n/a"} | {r.EnqueueErrors} | {r.Duration.TotalSeconds:0} s |");
    }

    public static void Append(ChaosResult result)
    {
        var path = Path.Combine(Directory, "chaos-report.md");
        lock (Gate)
        {
            if (!s_headerWritten)
            {
                File.WriteAllText(path, $"# Chaos suite ({ChaosProfile.Current.Name} profile, {DateTime.UtcNow:u})\n\n{Header}\n");
                s_headerWritten = true;
            }
            File.AppendAllText(path, Row(result) + "\n");
        }
    }

    /// <summary>A line under the table (an add-on's own figures), kept with the rows in the same file.</summary>
    public static void AppendNote(string line)
    {
        lock (Gate) File.AppendAllText(Path.Combine(Directory, "chaos-report.md"), "\n" + line + "\n");
    }
}
