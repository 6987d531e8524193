using System.Text.RegularExpressions;
using Xunit;

namespace Konduit.Benchmarks.Tests;

/// <summary>
/// The report as a user reads it, from hand-made results (no servers): which store for which need first, conditions
/// above every table, no project-internal labels, and charts that ScottPlot really drew (its SkiaSharp native library
/// loads on this machine).
/// </summary>
public sealed partial class ReportTests
{
    private static readonly LatencyPercentiles Call = new(1.1, 2.2, 3.3, 4.4, 5.5, 1000);

    private static (Report.RunInfo Run, LoadResults Results) Sample()
    {
        var run = new Report.RunInfo(
            ["raw-sql", "raw-redis", "postgres", "inmemory", "redis", "postgresredis"],
            new Dictionary<string, string> { ["postgres"] = "raw-sql", ["redis"] = "raw-redis", ["postgresredis"] = "raw-sql" },
            ["inmemory", "postgres", "cassandra"],
            [("postgres", "PostgreSQL 15 at 127.0.0.1:25432")], [], null, TimeSpan.FromSeconds(90),
            new BenchConditions("2 cores, 24 GiB, Debian 12, .NET 10", "PostgreSQL 15.4", "fsync on, synchronous_commit on", "Redis 7.0.15", "appendonly no", "Cassandra at 127.0.0.1:29042"));
        var r = new LoadResults();
        var second = TimeSpan.FromSeconds(1);
        foreach (var (target, factor) in new[] { ("raw-sql", 10.0), ("raw-redis", 40.0), ("postgres", 8.0), ("inmemory", 100.0), ("redis", 30.0), ("postgresredis", 7.0) })
        {
            foreach (var scenario in new[] { LoadRunner.EnqueueSingle1, LoadRunner.EnqueueSingle16, LoadRunner.EnqueueBatchArrays, LoadRunner.Cycle1(16), LoadRunner.Cycle100(16), LoadRunner.BurnDownLoops })
                r.Throughput.Add(new ThroughputRow(scenario, target, (long)(factor * 100), second, 1234, Call, WalBytesPerTask: 321));
            if (!target.StartsWith("raw-", StringComparison.Ordinal))
                r.Throughput.Add(new ThroughputRow(LoadRunner.BurnDownRuntime, target, (long)(factor * 90), second, 2345, LatencyPercentiles.None, "15000 drained"));
            r.Heartbeats.Add(new ThroughputRow(LoadRunner.Heartbeat(16), target, (long)(factor * 50), second, 100, Call));
        }
        r.Throughput.Add(new ThroughputRow(LoadRunner.EnqueueBatchCopy, "raw-sql", 5000, second, 10, Call));
        r.Throughput.Add(new ThroughputRow(LoadRunner.EnqueueBatchCopy, "postgres", 4000, second, 10, Call));
        foreach (var log in new[] { "inmemory", "postgres", "cassandra" })
            r.Events.Add(new ThroughputRow(LoadRunner.AppendBatch(Profile.Quick.BatchCallers), log, 10_000, second, 50, Call));
        var histogram = new LatencyHistogram();
        for (var us = 500; us <= 5_000; us += 10) histogram.RecordMicroseconds(us);
        foreach (var target in new[] { "postgres", "redis", "postgresredis", "inmemory" })
        {
            foreach (var push in new[] { true, false })
            {
                r.Steady.Add(new SteadyRow(target, "idle", push, 50, 50, 60, 60, histogram.Percentiles(), histogram.Curve(), 0, 0, 1, true));
                r.Steady.Add(new SteadyRow(target, "loaded", push, 1000, 990, 2000, 2000, histogram.Percentiles(), histogram.Curve(), 3, 4, 9, true));
            }
        }
        r.Churn.Add(new ChurnRow("postgres", 1, TimeSpan.FromSeconds(3), 9000, 180_000, 4 << 20));
        r.Churn.Add(new ChurnRow("postgres", 2, TimeSpan.FromSeconds(6), 9100, 182_000, 4 << 20));
        return (run, r);
    }

    [Fact]
    public void The_report_opens_with_which_store_for_which_need_and_states_its_conditions()
    {
        var (run, r) = Sample();
        var md = Report.Markdown(Profile.Quick, run, r, [], null);

        var sections = SectionPattern().Matches(md).Select(m => m.Groups[1].Value).ToList();
        Assert.Equal("Which store for which need", sections[0]);
        // The header states the machine and what a commit waits for, before any figure.
        var header = md[..md.IndexOf("## ", StringComparison.Ordinal)];
        Assert.Contains("2 cores, 24 GiB", header, StringComparison.Ordinal);
        Assert.Contains("fsync on, synchronous_commit on", header, StringComparison.Ordinal);
        Assert.Contains("appendonly no", header, StringComparison.Ordinal);
        Assert.Contains("payload", header, StringComparison.Ordinal);

        // Every store has a row in the need table, with a measured figure and its conditions.
        var needs = Report.Needs(Profile.Quick, run, r).ToList();
        foreach (var store in new[] { "`Postgres`", "`Redis`", "`PostgresRedis`", "`InMemory`", "Cassandra event log" })
            Assert.Contains(needs, n => n.Store.StartsWith(store, StringComparison.Ordinal) || n.Store.Contains(store, StringComparison.Ordinal));
        Assert.All(needs, n => Assert.DoesNotContain("not measured", n.Figure, StringComparison.Ordinal));
        Assert.All(needs, n => Assert.False(string.IsNullOrWhiteSpace(n.Conditions), n.What));
        Assert.Contains(needs, n => n.Figure.Contains("0.80 × raw SQL", StringComparison.Ordinal)); // postgres ÷ raw-sql, 8 ÷ 10

        // Every section with figures after the need table says its conditions in one line above its first table.
        foreach (var section in Regex.Split(md, "^## ", RegexOptions.Multiline).Skip(2))
        {
            var title = section[..section.IndexOf('\n', StringComparison.Ordinal)];
            if (!section.Contains("\n|", StringComparison.Ordinal)) continue;
            var firstTable = section.IndexOf("\n|", StringComparison.Ordinal);
            Assert.True(section[..firstTable].Contains("Conditions: ", StringComparison.Ordinal), $"section '{title}' has a table with no conditions line above it");
        }
    }

    /// <summary>A full-profile horizon run by hand: 1,000 tasks/s before, 400/s at worst while pinned, 600, 800, 950 and then 1,000/s after.</summary>
    private static (HorizonRun Run, List<HorizonRow> Rows) HorizonSample()
    {
        var rows = new List<HorizonRow>();
        var interval = Profile.Full.HorizonInterval;
        var end = TimeSpan.Zero;
        long dead = 0;
        void Add(string phase, long perSecond, long deadDelta)
        {
            end += interval;
            dead = Math.Max(0, dead + deadDelta);
            var storage = new StorageSnapshot(DateTimeOffset.UnixEpoch + end, [
                new RelationSize("tasks", null, 8 << 20, 20_000, dead, rows.Count / 20, DateTimeOffset.UnixEpoch + end),
                new RelationSize("tasks_pkey", "tasks", 1 << 20)]);
            rows.Add(new HorizonRow("postgres", phase, rows.Count + 1, end, interval, perSecond * (long)interval.TotalSeconds, storage));
        }
        for (var i = 0; i < 12; i++) Add(HorizonRow.Before, 1_000, 0);
        for (var i = 0; i < 24; i++) Add(HorizonRow.Pinned, i == 23 ? 400 : 700, 10_000);
        var release = end;
        foreach (var rate in new long[] { 600, 800, 950 }) Add(HorizonRow.After, rate, -50_000);
        for (var i = 0; i < 15; i++) Add(HorizonRow.After, 1_000, -50_000);
        return (new HorizonRun("postgres", 4242, TimeSpan.FromSeconds(60), release, 1_234_567, "worker runtime"), rows);
    }

    [Fact]
    public void The_horizon_summary_gives_the_recovery_as_ratios_to_the_baseline()
    {
        var (run, rows) = HorizonSample();
        var h = HorizonSummary.Of(run, rows, Profile.Full.HorizonRecoveryWindow);

        Assert.Equal(1_000, h.Baseline, 1e-9);
        Assert.Equal(0.4, h.LowestRatio, 1e-9);
        // The minute after the release: 12 intervals of 5 s, 600 + 800 + 950 + 9 × 1,000 tasks/s.
        Assert.Equal(11_350 / 12.0 / 1_000, h.AfterRatio, 1e-9);
        Assert.Equal(TimeSpan.FromSeconds(15), h.RecoveredAfter); // the third interval, 950/s, is the first ≥ 90 %
        Assert.True(h.RecoveredInWindow);
        Assert.Equal(240_000, h.AtRelease!.DeadTuples);
        Assert.Equal(h.AtRelease, h.Peak);
        Assert.Equal(0, h.AtPin!.DeadTuples);
        Assert.Equal(0, h.WindowAfter!.DeadTuples); // 60 s after the release: vacuumed

        // Never back: the summary says so rather than counting the last interval.
        var never = rows.Select(x => x.Phase == HorizonRow.After ? x with { Completed = x.Completed / 2 } : x).ToList();
        var slow = HorizonSummary.Of(run, never, Profile.Full.HorizonRecoveryWindow);
        Assert.Null(slow.RecoveredAfter);
        Assert.False(slow.RecoveredInWindow);
    }

    [Fact]
    public void The_report_gives_the_horizon_recovery_and_the_churn_decay_as_ratios()
    {
        var (run, r) = Sample();
        var (pin, rows) = HorizonSample();
        r.HorizonRuns.Add(pin);
        r.Horizon.AddRange(rows);
        var md = Report.Markdown(Profile.Full, run, r, [], null);

        var section = md[md.IndexOf("## Pinned xmin horizon", StringComparison.Ordinal)..];
        section = section[..section.IndexOf("\n## ", StringComparison.Ordinal)];
        var summary = section.Split('\n').Single(l => l.StartsWith("| postgres | worker runtime |", StringComparison.Ordinal));
        Assert.Contains("| **0.40** | **0.95** | 15 s | yes |", summary, StringComparison.Ordinal);
        Assert.Contains("0 → 240,000 → 0", summary, StringComparison.Ordinal);
        Assert.Contains("1,234,567 xids old", section, StringComparison.Ordinal);
        // One row per measured interval, and one per relation in the breakdown.
        Assert.Equal(rows.Count, section.Split('\n').Count(l => l.StartsWith("| before |", StringComparison.Ordinal) || l.StartsWith("| pinned |", StringComparison.Ordinal) || l.StartsWith("| after |", StringComparison.Ordinal)));
        Assert.Contains("| tasks_pkey | tasks |", section, StringComparison.Ordinal);

        // The churn: last interval ÷ first (182,000 ÷ 180,000 tasks/min) and the size growth.
        Assert.Contains("**1.01 × the first** and 1.01 × the best earlier one (no lasting decay); task tables 4.0 → 4.0 MB (1.00 ×)", md, StringComparison.Ordinal);
    }

    [Fact]
    public void The_event_log_row_names_the_log_this_run_measured_ahead()
    {
        var (run, r) = Sample();
        var slower = r.Events.Single(e => e.Target == "cassandra");
        r.Events[r.Events.IndexOf(slower)] = slower with { Tasks = 1_000 }; // a tenth of the PostgreSQL table's
        var row = Report.Needs(Profile.Quick, run, r).Single(n => n.What.Contains("history", StringComparison.Ordinal));
        Assert.StartsWith("PostgreSQL event log on one node", row.Store, StringComparison.Ordinal);
        Assert.Contains("0.10 × the PostgreSQL table", row.Figure, StringComparison.Ordinal);
    }

    [Fact]
    public void The_report_has_no_project_internal_labels()
    {
        var (run, r) = Sample();
        var md = Report.Markdown(Profile.Quick, run, r, [], null);
        foreach (var label in new[] { "issue", "seed", "golden", "Targets (", "ADR" })
            Assert.DoesNotContain(label, md, StringComparison.OrdinalIgnoreCase);
        // The raw baselines stay, said in a user's words.
        Assert.Contains("raw SQL with no library, the ceiling", md, StringComparison.Ordinal);
    }

    [Fact]
    public void The_heartbeat_table_has_one_row_per_target_and_the_kafka_row()
    {
        var (run, r) = Sample();
        var md = Report.Markdown(Profile.Quick, run, r, [], null);
        var section = md[md.IndexOf("## Heartbeats", StringComparison.Ordinal)..];
        section = section[..section.IndexOf("\n## ", StringComparison.Ordinal)];
        var rows = section.Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal)).Skip(1).ToList(); // after the header row
        Assert.Equal([.. run.TargetNames, "kafka (heartbeat channel)"], rows.Select(l => l.Split('|')[1].Trim()));
        Assert.All(rows, l => Assert.Equal(rows[0].Count(ch => ch == '|'), l.Count(ch => ch == '|')));
    }

    [Fact]
    public void Charts_are_drawn_as_svg_and_png()
    {
        // SkiaSharp's bundled native library finds fonts under /usr/share/fonts only; without them every label is blank.
        Assert.True(SkiaSharp.SKFontManager.Default.FontFamilies.Contains("DejaVu Sans"),
            "SkiaSharp finds no DejaVu Sans font: run scripts/services.sh up (as root it installs fonts-dejavu-core) or apt-get install fonts-dejavu-core");
        var (run, r) = Sample();
        var dir = Path.Combine(Path.GetTempPath(), "konduit-report-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var written = Report.Write(dir, Profile.Quick, run, r);
            Assert.Equal(["ratios", "throughput", "latency"], written.Charts.Select(c => c.Svg[(c.Svg.LastIndexOf('-') + 1)..^4]));
            foreach (var chart in written.Charts)
            {
                var svg = File.ReadAllText(Path.Combine(dir, chart.Svg));
                Assert.Contains("<svg", svg, StringComparison.Ordinal);
                var png = File.ReadAllBytes(Path.Combine(dir, chart.Png));
                Assert.True(png.Length > 10_000, $"{chart.Png}: {png.Length} bytes");
                Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);
            }
            var md = File.ReadAllText(written.Markdown);
            Assert.All(written.Charts, c => Assert.Contains($"]({c.Svg})", md, StringComparison.Ordinal));
            Assert.Equal(md, File.ReadAllText(Path.Combine(dir, "latest-quick.md")));
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Idle_pickup_is_reported_as_a_ratio_to_the_raw_floor_measured_in_the_same_run()
    {
        var (run, r) = Sample();
        var floor = new LatencyHistogram();
        for (var us = 250; us <= 2_500; us += 5) floor.RecordMicroseconds(us); // p50 half of the stores' sample (500–5,000 µs)
        r.Steady.Insert(0, new SteadyRow("raw-sql", "idle", true, 50, 50, 60, 60, floor.Percentiles(), floor.Curve(), 0, 0, 1, true));

        var md = Report.Markdown(Profile.Quick, run, r, [], null);
        var needs = Report.Needs(Profile.Quick, run, r).ToList();

        Assert.Contains("| raw-sql | idle | on |", md, StringComparison.Ordinal);
        var ratios = md[md.IndexOf("Idle pickup p50 ÷ the floor's, this run:", StringComparison.Ordinal)..];
        ratios = ratios[..ratios.IndexOf('\n')];
        foreach (var store in new[] { "`Postgres` 2.00×", "`PostgresRedis` 2.00×" })
            Assert.Contains(store, ratios, StringComparison.Ordinal);
        // Only stores whose raw baseline is the floor's server: the SQL floor says nothing of Redis or memory.
        Assert.DoesNotContain("Redis`", ratios.Replace("`PostgresRedis`", "", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.DoesNotContain("InMemory", ratios, StringComparison.Ordinal);
        // The floor is a baseline, never a candidate store for the need; each store's figure carries its ratio.
        var pickup = Assert.Single(needs, n => n.What.StartsWith("Start a task within milliseconds", StringComparison.Ordinal));
        Assert.DoesNotContain("raw-sql", pickup.Store + pickup.Figure, StringComparison.Ordinal);
        Assert.Contains("`Postgres` p50 2.75 ms (2.00× the raw floor's", pickup.Figure, StringComparison.Ordinal);
        Assert.Contains("`Redis` p50 2.75 ms, p99", pickup.Figure, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_a_raw_floor_the_pickup_has_no_ratio()
    {
        var (run, r) = Sample();
        var md = Report.Markdown(Profile.Quick, run, r, [], null);
        Assert.DoesNotContain("÷ the floor's", md, StringComparison.Ordinal);
        Assert.DoesNotContain("the raw floor's", md, StringComparison.Ordinal);
    }

    [GeneratedRegex("^## (.+)$", RegexOptions.Multiline)]
    private static partial Regex SectionPattern();
}
