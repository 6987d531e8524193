using System.Globalization;
using System.Net;
using System.Text;

namespace Konduit.Benchmarks;

/// <summary>Writes the Markdown report and the SVG chart (hand-made: bars, log scale, no chart library).</summary>
public static class Report
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public sealed record Target(string Goal, string Actual, bool? Met, string Note);

    public static (string Markdown, string Svg) Write(string directory, Profile profile, IReadOnlyList<string> targetNames, LoadResults results, IReadOnlyList<string> unavailable, string? bdnSummary = null)
    {
        Directory.CreateDirectory(directory);
        var stamp = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", Inv);
        var md = Path.Combine(directory, $"report-{profile.Name}-{stamp}.md");
        var svg = Path.Combine(directory, $"report-{profile.Name}-{stamp}.svg");
        File.WriteAllText(svg, Chart(targetNames, results));
        File.WriteAllText(md, Markdown(profile, targetNames, results, unavailable, Path.GetFileName(svg), bdnSummary));
        // Stable names for "the latest run" (what scripts/bench.sh prints and the README points at).
        File.Copy(md, Path.Combine(directory, $"latest-{profile.Name}.md"), overwrite: true);
        File.Copy(svg, Path.Combine(directory, $"latest-{profile.Name}.svg"), overwrite: true);
        return (md, svg);
    }

    public static string Markdown(Profile profile, IReadOnlyList<string> targetNames, LoadResults r, IReadOnlyList<string> unavailable, string svgName, string? bdnSummary)
    {
        var sb = new StringBuilder();
        sb.AppendLine(Inv, $"# Konduit benchmark report ({profile.Name})");
        sb.AppendLine();
        sb.AppendLine(Inv, $"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC · {Environment.ProcessorCount} cores · .NET {Environment.Version} · {System.Runtime.InteropServices.RuntimeInformation.OSDescription} · clients, workers and servers on one box (loopback)");
        sb.AppendLine();
        sb.AppendLine("Baseline `raw-sql` = the seed's golden-path statements through Npgsql, prepared, no library code, on the seed's own table (schema `konduit_bench_raw`), measured in this same run. Ratios are target ÷ raw-sql for the same scenario (burn-down through the runtime is compared with the raw lease-100/complete loops).");
        foreach (var u in unavailable) sb.AppendLine(Inv, $"\n> not measured: {u}");
        sb.AppendLine();
        sb.AppendLine("## Main table: tasks/s");
        sb.AppendLine();
        MainTable(sb, targetNames, r);
        sb.AppendLine();
        sb.AppendLine(Inv, $"![tasks/s by scenario and store]({svgName})");
        sb.AppendLine();

        sb.AppendLine("## Targets (issue 7)");
        sb.AppendLine();
        sb.AppendLine("| target | goal | measured | met | note |");
        sb.AppendLine("|---|---|---|---|---|");
        foreach (var (name, t) in Targets(r))
            sb.AppendLine(Inv, $"| {name} | {t.Goal} | {t.Actual} | {(t.Met is null ? "n/a" : t.Met.Value ? "yes" : "**no**")} | {t.Note} |");
        sb.AppendLine();

        sb.AppendLine("## Per-call latency and allocations");
        sb.AppendLine();
        sb.AppendLine("Call latency = one store call (or the lease + complete pair); allocations are process-wide bytes allocated per task during the loop (GC.GetTotalAllocatedBytes), so they include Npgsql and the runtime.");
        sb.AppendLine();
        sb.AppendLine("| scenario | target | tasks | s | tasks/s | call p50 ms | call p99 ms | alloc B/task | note |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---|");
        foreach (var row in r.Throughput)
            sb.AppendLine(Inv, $"| {row.Scenario} | {row.Target} | {row.Tasks} | {row.Elapsed.TotalSeconds:0.0} | {row.TasksPerSecond:N0} | {Ms(row.CallP50Ms)} | {Ms(row.CallP99Ms)} | {(row.AllocBytesPerTask is { } a ? a.ToString("N0", Inv) : "–")} | {row.Note} |");
        sb.AppendLine();

        if (r.Steady.Count > 0)
        {
            sb.AppendLine("## Steady state: enqueue → handler start through the worker runtime");
            sb.AppendLine();
            sb.AppendLine("Producers call the store directly (as another process would: no in-process wake-up), at a fixed rate; latency runs from just before the enqueue call to the no-op handler's start. Push off = the store's wake-up hidden, workers poll (50 ms doubling to 2 s, the defaults). Backlog = produced − started, sampled every 100 ms (first/last third averages); flat = last ≤ first + max(10, rate/20).");
            sb.AppendLine();
            sb.AppendLine("| target | load | push | rate/s | achieved/s | p50 ms | p95 ms | p99 ms | max ms | backlog first → last (max) | flat |");
            sb.AppendLine("|---|---|---|---:|---:|---:|---:|---:|---:|---|---|");
            foreach (var s in r.Steady)
                sb.AppendLine(Inv, $"| {s.Target} | {s.Load} | {(s.Push ? "on" : "off")} | {s.Rate} | {s.AchievedRate:N0} | {Ms(s.P50Ms)} | {Ms(s.P95Ms)} | {Ms(s.P99Ms)} | {Ms(s.MaxMs)} | {s.BacklogFirst} → {s.BacklogLast} ({s.BacklogMax}) | {(s.Flat ? "yes" : "**no**")} |");
            sb.AppendLine();
        }

        if (r.Churn.Count > 0)
        {
            sb.AppendLine(Inv, $"## Churn: {profile.ChurnBudget.TotalMinutes:0.##} minutes of enqueue + drain through the runtime");
            sb.AppendLine();
            sb.AppendLine("Size = pg_total_relation_size of the task table(s) (heap + indexes + TOAST). Finished rows stay in the table (nothing purges them during the run), so the size grows with the finished count; decay shows as falling tasks/min.");
            sb.AppendLine();
            sb.AppendLine("| target | interval | ends at s | completed | tasks/min | table+index MB |");
            sb.AppendLine("|---|---:|---:|---:|---:|---:|");
            foreach (var c in r.Churn)
                sb.AppendLine(Inv, $"| {c.Target} | {c.Interval} | {c.End.TotalSeconds:0} | {c.Completed} | {c.TasksPerMinute:N0} | {(c.RelationBytes is { } b ? (b / 1048576.0).ToString("0.0", Inv) : "–")} |");
            sb.AppendLine();
        }

        sb.AppendLine("## How bloat is handled today");
        sb.AppendLine();
        sb.AppendLine("- `tasks` is created `WITH (fillfactor = 85)` so the lease and complete updates can be HOT when no indexed column changes; but `state` is in the partial-index predicates and `tasks_queue_state_id_idx`, so lease (0→1) and complete (1→2) are **not** HOT: each writes new index entries.");
        sb.AppendLine("- Finished rows stay in the hot table until `PurgeAsync` deletes them (nothing schedules it); autovacuum runs with server defaults. No partitioning yet (the id-only PK keeps it possible).");
        sb.AppendLine("- What the design would need if churn decays: finished rows leaving the hot table (partition by id range and drop/detach, or move on complete), per-table autovacuum settings (`autovacuum_vacuum_scale_factor` low), and fewer indexed columns touched per transition.");
        sb.AppendLine();
        foreach (var note in r.Notes) sb.AppendLine(Inv, $"- {note}");
        if (bdnSummary is not null)
        {
            sb.AppendLine();
            sb.AppendLine("## BenchmarkDotNet (per operation, MemoryDiagnoser)");
            sb.AppendLine();
            sb.AppendLine(bdnSummary);
        }
        return sb.ToString();
    }

    public static void MainTable(StringBuilder sb, IReadOnlyList<string> targetNames, LoadResults r)
    {
        var others = targetNames.Where(n => n != "raw-sql").ToList();
        var pgBacked = others.Where(n => n == "postgres" || n.StartsWith("postgres", StringComparison.Ordinal)).ToList();
        sb.Append("| scenario | raw-sql |");
        foreach (var n in others) sb.Append(Inv, $" {n} |{(pgBacked.Contains(n) ? $" {n} ÷ raw |" : "")}");
        sb.AppendLine();
        sb.Append("|---|---:|");
        foreach (var n in others) sb.Append(pgBacked.Contains(n) ? "---:|---:|" : "---:|");
        sb.AppendLine();
        foreach (var scenario in r.Throughput.Select(x => x.Scenario).Distinct())
        {
            var raw = Baseline(r, scenario);
            var rawHere = Find(r, scenario, "raw-sql");
            sb.Append(Inv, $"| {scenario} | {(rawHere is null ? "–" : rawHere.TasksPerSecond.ToString("N0", Inv))} |");
            foreach (var n in others)
            {
                var row = Find(r, scenario, n);
                sb.Append(Inv, $" {(row is null ? "–" : row.TasksPerSecond.ToString("N0", Inv))} |");
                if (pgBacked.Contains(n))
                    sb.Append(Inv, $" {(row is null || raw is null || raw.TasksPerSecond == 0 ? "–" : (row.TasksPerSecond / raw.TasksPerSecond).ToString("0.00", Inv))} |");
            }
            sb.AppendLine();
        }
    }

    /// <summary>The raw figure a scenario is compared with: its own raw row, or the raw loops for the runtime burn-down.</summary>
    private static ThroughputRow? Baseline(LoadResults r, string scenario) =>
        Find(r, scenario, "raw-sql") ?? (scenario == LoadRunner.BurnDownRuntime ? Find(r, LoadRunner.BurnDownLoops, "raw-sql") : null);

    private static ThroughputRow? Find(LoadResults r, string scenario, string target) =>
        r.Throughput.FirstOrDefault(x => x.Scenario == scenario && x.Target == target);

    public static IEnumerable<(string Name, Target Target)> Targets(LoadResults r)
    {
        const string pg = "postgres";
        string Tps(ThroughputRow? row) => row is null ? "not run" : row.TasksPerSecond.ToString("N0", Inv) + " tasks/s";
        Target Floor(ThroughputRow? row, double goal, string goalText, string why)
        {
            if (row is null) return new(goalText, "not run", null, "");
            var met = row.TasksPerSecond >= goal;
            return new(goalText, Tps(row), met, met ? "" : $"missed by {goal - row.TasksPerSecond:N0} tasks/s ({row.TasksPerSecond / goal:P0} of goal). {why}");
        }

        var burn = Find(r, LoadRunner.BurnDownRuntime, pg);
        yield return ("batched burn-down, worker runtime, no-op handler", Floor(burn, 50_000, "≥ 50,000 tasks/s",
            "Per task the runtime does Task.Run + DI scope + heartbeat timer + completion channel; per 100 tasks one lease and one complete-many round trip."));
        var cycle16 = Find(r, LoadRunner.Cycle1(16), pg);
        yield return ("unbatched full cycle, 16 workers", Floor(cycle16, 5_000, "≥ 5,000 tasks/s",
            "Two round trips and two commits (fsync) per task; group commit on 2 cores caps it. Complete-and-lease-next in one statement would halve the round trips."));
        var bulk = Find(r, LoadRunner.EnqueueBatchArrays, pg);
        var rawCopy = Find(r, LoadRunner.EnqueueBatchCopy, "raw-sql");
        var rawArrays = Find(r, LoadRunner.EnqueueBatchArrays, "raw-sql");
        var bulkT = Floor(bulk, 100_000, "≥ 100,000 tasks/s", $"Raw ceiling in this run: arrays {Tps(rawArrays)}, binary COPY {Tps(rawCopy)}; Konduit has no COPY path yet.");
        yield return ("bulk enqueue (batches of 100)", bulkT);

        Target Ratio(string scenario, double goal)
        {
            var row = Find(r, scenario, pg);
            var raw = Baseline(r, scenario);
            if (row is null || raw is null || raw.TasksPerSecond == 0) return new($"≥ {goal:P0} of raw", "not run", null, "");
            var ratio = row.TasksPerSecond / raw.TasksPerSecond;
            return new($"≥ {goal:P0} of raw", $"{ratio:P0} ({row.TasksPerSecond:N0} vs {raw.TasksPerSecond:N0})", ratio >= goal,
                ratio >= goal ? "" : $"short by {(goal - ratio) * 100:0} points");
        }
        yield return ("single enqueue at 16 callers", Ratio(LoadRunner.EnqueueSingle16, 0.9));

        var idle = r.Steady.FirstOrDefault(s => s.Target == pg && s.Load == "idle" && s.Push);
        yield return ("pickup latency, idle, push wake-up", idle is null ? new("p50 < 2 ms, p99 < 10 ms", "not run", null, "")
            : new("p50 < 2 ms, p99 < 10 ms", $"p50 {idle.P50Ms:0.00} ms, p99 {idle.P99Ms:0.00} ms", idle.P50Ms < 2 && idle.P99Ms < 10,
                idle.P50Ms < 2 && idle.P99Ms < 10 ? "includes the enqueue's own commit" : $"latency includes the enqueue's commit (fsync) and the NOTIFY → LISTEN → lease round trip; over by p50 {Math.Max(0, idle.P50Ms - 2):0.00} ms, p99 {Math.Max(0, idle.P99Ms - 10):0.00} ms"));

        var ops = r.Throughput.Where(x => x.Target == pg && x.Scenario != LoadRunner.BurnDownRuntime && Baseline(r, x.Scenario) is { TasksPerSecond: > 0 })
            .Select(x => (x.Scenario, Ratio: x.TasksPerSecond / Baseline(r, x.Scenario)!.TasksPerSecond)).ToList();
        if (ops.Count > 0)
        {
            var worst = ops.MinBy(o => o.Ratio);
            var below = ops.Where(o => o.Ratio < 0.9).Select(o => $"{o.Scenario} {o.Ratio:P0}");
            yield return ("every Konduit.Postgres operation vs raw", new("≥ 90 % each", $"worst {worst.Ratio:P0} ({worst.Scenario})", worst.Ratio >= 0.9,
                worst.Ratio >= 0.9 ? "" : "below: " + string.Join("; ", below)));
        }
        var redis = Find(r, LoadRunner.BurnDownLoops, "redis");
        yield return ("Redis batched cycle vs raw XREADGROUP+XACK", new("≥ 50 %", redis is null ? "not measured" : $"redis store {Tps(redis)} (lease 100 + complete loops); raw XREADGROUP+XACK not measured", null,
            "the raw Redis Streams baseline is not in the harness yet: no ratio"));

        var allocs = r.Throughput.Where(x => x.Target == pg && x.AllocBytesPerTask is not null && x.Tasks > 0)
            .Select(x => $"{x.Scenario}: {x.AllocBytesPerTask:N0} B").ToList();
        yield return ("allocations per task (postgres)", new("reported, small", allocs.Count == 0 ? "not run" : string.Join("; ", allocs), null, "process-wide, includes Npgsql"));

        var churn = r.Churn.Where(c => c.Target == pg).ToList();
        if (churn.Count >= 2)
        {
            var first = churn[0].TasksPerMinute;
            var last = churn[^1].TasksPerMinute;
            var decay = first > 0 ? 1 - last / first : 0;
            yield return ("no decay over the churn run", new("last interval ≥ 90 % of first", $"{last:N0} vs {first:N0} tasks/min ({-decay:+0%;-0%;0%})", decay <= 0.1,
                decay <= 0.1 ? "" : $"decayed {decay:P0}; table grew to {(churn[^1].RelationBytes ?? 0) / 1048576.0:0} MB"));
        }
    }

    private static string Ms(double v) => double.IsNaN(v) ? "–" : v.ToString(v < 10 ? "0.00" : "0", Inv);

    /// <summary>Grouped horizontal bars per scenario, one colour per target, log10 scale of tasks/s.</summary>
    public static string Chart(IReadOnlyList<string> targetNames, LoadResults r)
    {
        string[] palette = ["#555555", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e"];
        var scenarios = r.Throughput.Select(x => x.Scenario).Distinct().ToList();
        const int labelW = 330, plotW = 560, barH = 12, gap = 10, top = 40;
        var rows = scenarios.Sum(s => Math.Max(1, targetNames.Count(t => Find(r, s, t) is not null)));
        var height = top + rows * barH + scenarios.Count * gap + 50;
        var max = Math.Max(10, r.Throughput.Select(x => x.TasksPerSecond).DefaultIfEmpty(10).Max());
        var decades = Math.Ceiling(Math.Log10(max));
        const double minDecade = 1; // 10 tasks/s at the left edge
        double X(double v) => labelW + plotW * Math.Clamp((Math.Log10(Math.Max(v, 10)) - minDecade) / (decades - minDecade), 0, 1);

        var sb = new StringBuilder();
        sb.AppendLine(Inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{labelW + plotW + 120}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">");
        sb.AppendLine("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
        sb.AppendLine(Inv, $"<text x=\"10\" y=\"18\" font-size=\"14\" font-weight=\"bold\">Konduit: tasks/s by scenario (log scale)</text>");
        for (var d = minDecade; d <= decades; d++)
        {
            var x = X(Math.Pow(10, d));
            sb.AppendLine(Inv, $"<line x1=\"{x:0.#}\" y1=\"{top - 5}\" x2=\"{x:0.#}\" y2=\"{height - 40}\" stroke=\"#ddd\"/>");
            sb.AppendLine(Inv, $"<text x=\"{x:0.#}\" y=\"{height - 28}\" text-anchor=\"middle\" fill=\"#666\">{Math.Pow(10, d):N0}</text>");
        }
        var y = top;
        foreach (var s in scenarios)
        {
            var groupTop = y;
            foreach (var (t, i) in targetNames.Select((t, i) => (t, i)))
            {
                if (Find(r, s, t) is not { } row) continue;
                var w = X(row.TasksPerSecond) - labelW;
                sb.AppendLine(Inv, $"<rect x=\"{labelW}\" y=\"{y}\" width=\"{Math.Max(1, w):0.#}\" height=\"{barH - 2}\" fill=\"{palette[i % palette.Length]}\"/>");
                sb.AppendLine(Inv, $"<text x=\"{labelW + w + 4:0.#}\" y=\"{y + barH - 3}\" fill=\"#333\">{row.TasksPerSecond:N0}</text>");
                y += barH;
            }
            if (y == groupTop) y += barH;
            sb.AppendLine(Inv, $"<text x=\"{labelW - 6}\" y=\"{(groupTop + y) / 2 + 4}\" text-anchor=\"end\">{WebUtility.HtmlEncode(s)}</text>");
            y += gap;
        }
        var lx = 10;
        foreach (var (t, i) in targetNames.Select((t, i) => (t, i)))
        {
            sb.AppendLine(Inv, $"<rect x=\"{lx}\" y=\"{height - 16}\" width=\"10\" height=\"10\" fill=\"{palette[i % palette.Length]}\"/>");
            sb.AppendLine(Inv, $"<text x=\"{lx + 14}\" y=\"{height - 7}\">{WebUtility.HtmlEncode(t)}</text>");
            lx += 30 + t.Length * 7;
        }
        sb.AppendLine("</svg>");
        return sb.ToString();
    }
}
