using System.Globalization;
using System.Net;
using System.Text;

namespace Konduit.Benchmarks;

/// <summary>Writes the Markdown report and the SVG chart (hand-made: bars, log scale, no chart library).</summary>
public static class Report
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>What ran, where, and against what.</summary>
    /// <param name="TargetNames">Targets in report order (raw baselines first).</param>
    /// <param name="Baselines">Target → the raw target it is a ratio of (postgres → raw-sql, redis → raw-redis).</param>
    /// <param name="EventLogNames">Event logs measured by the append scenario.</param>
    /// <param name="Where">Per target and event log: server, version, database, this run's schema / key prefix / keyspace.</param>
    /// <param name="Unavailable">Targets not measured, with the reason.</param>
    /// <param name="Kafka">Kafka bootstrap address when one is configured (the heartbeat table's Kafka row; the in-process mock otherwise).</param>
    /// <param name="Wall">Wall time of the load runner.</param>
    public sealed record RunInfo(IReadOnlyList<string> TargetNames, IReadOnlyDictionary<string, string> Baselines, IReadOnlyList<string> EventLogNames,
        IReadOnlyList<(string Name, string Where)> Where, IReadOnlyList<string> Unavailable, string? Kafka, TimeSpan Wall)
    ;

    /// <summary>One row of the Targets table. Margin ≥ 1 means met (measured ÷ goal for floors, limit ÷ measured for ceilings).</summary>
    public sealed record Target(string Name, string Goal, string Measured, bool? Met, double? Margin, double? AllocBytesPerTask, string Note);

    public static (string Markdown, string Svg) Write(string directory, Profile profile, RunInfo run, LoadResults results, string? bdnSummary = null)
    {
        Directory.CreateDirectory(directory);
        var stamp = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", Inv);
        var md = Path.Combine(directory, $"report-{profile.Name}-{stamp}.md");
        var svg = Path.Combine(directory, $"report-{profile.Name}-{stamp}.svg");
        File.WriteAllText(svg, Chart(run, results));
        File.WriteAllText(md, Markdown(profile, run, results, Path.GetFileName(svg), bdnSummary));
        // Stable names for "the latest run" (what the README points at).
        File.Copy(md, Path.Combine(directory, $"latest-{profile.Name}.md"), overwrite: true);
        File.Copy(svg, Path.Combine(directory, $"latest-{profile.Name}.svg"), overwrite: true);
        return (md, svg);
    }

    public static string Markdown(Profile profile, RunInfo run, LoadResults r, string svgName, string? bdnSummary)
    {
        var sb = new StringBuilder();
        sb.AppendLine(Inv, $"# Konduit benchmark report ({profile.Name})");
        sb.AppendLine();
        sb.AppendLine(Inv, $"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC · {Environment.ProcessorCount} cores · .NET {Environment.Version} · {System.Runtime.InteropServices.RuntimeInformation.OSDescription} · clients, workers and servers on one box (loopback)");
        sb.AppendLine();
        if (r.Timings.Count > 0)
            sb.AppendLine(Inv, $"Load runner {run.Wall.TotalSeconds:0} s: {string.Join(", ", r.Timings.Select(t => $"{t.Scenario} {t.Elapsed.TotalSeconds:0} s"))}.");
        sb.AppendLine();
        foreach (var (name, where) in run.Where) sb.AppendLine(Inv, $"- `{name}`: {where}");
        if (run.Where.Count > 0)
            sb.AppendLine("\nEvery schema, key prefix and keyspace above is this run's own (random suffix) and is dropped at the end.");
        foreach (var u in run.Unavailable) sb.AppendLine(Inv, $"\n> not measured: {u}");
        sb.AppendLine();
        sb.AppendLine("Baselines, measured in this same run with no library code: `raw-sql` = the seed's golden-path statements through Npgsql, prepared, on the seed's own table (INSERT … ON CONFLICT; unnest batch; binary COPY; SKIP LOCKED lease of 1 / 100 + complete by id / `= ANY`; the seed's heartbeat UPDATE). `raw-redis` = a stream per queue and one consumer group through StackExchange.Redis: XADD (a batch = 100 pipelined XADDs), XREADGROUP COUNT 1 / 100 + XACK and XDEL pipelined, heartbeat = XCLAIM … 0 JUSTID; no idempotency key, fencing token or retry state. Ratios: `postgres` and `postgresredis` ÷ `raw-sql`, `redis` ÷ `raw-redis`, same scenario (the runtime burn-down ÷ the raw lease-100 loops).");
        sb.AppendLine();

        if (r.Throughput.Count > 0)
        {
            sb.AppendLine("## Main table: tasks/s");
            sb.AppendLine();
            MainTable(sb, run, r.Throughput);
            sb.AppendLine();
            if (r.Throughput.Any(x => x.Target == "raw-sql" && x.Scenario.StartsWith("cycle lease 1 ", StringComparison.Ordinal)))
                sb.AppendLine("`raw-sql` lease 1 is the seed's statement as written: its pending index (queue, status, scheduled_at, priority DESC) does not match its ORDER BY priority DESC, scheduled_at, so every lease sorts the whole pending backlog. A ratio above 1 there says the seed's query is slow, not that the store beats the ceiling.\n");
            sb.AppendLine(Inv, $"![operations/s by scenario and target]({svgName})");
            sb.AppendLine();
        }

        var targets = Targets(run, r).ToList();
        if (targets.Count > 0)
        {
            sb.AppendLine("## Targets (issue 7)");
            sb.AppendLine();
            sb.AppendLine("Margin = how far the measurement is past the goal: measured ÷ goal for floors, limit ÷ measured for latency ceilings; ≥ 1.00× is met. Alloc = bytes allocated in the process per task of that measurement.");
            sb.AppendLine();
            sb.AppendLine("| target | goal | measured | met | margin | alloc B/task | note |");
            sb.AppendLine("|---|---|---|---|---:|---:|---|");
            foreach (var t in targets)
            {
                var met = t.Met is null ? "n/a" : t.Met.Value ? "met" : "**missed**";
                var margin = t.Margin is { } m ? (m >= 1 ? $"{m:0.00}×" : $"**{m:0.00}×**") : "–";
                sb.AppendLine(Inv, $"| {t.Name} | {t.Goal} | {t.Measured} | {met} | {margin} | {Bytes(t.AllocBytesPerTask)} | {t.Note} |");
            }
            sb.AppendLine();
        }

        if (r.Heartbeats.Count > 0)
        {
            sb.AppendLine("## Heartbeats: heartbeats/s and cost per heartbeat");
            sb.AppendLine();
            sb.AppendLine("Each caller extends its own held leases in turn (store `HeartbeatAsync`: one row UPDATE on Postgres, one script on Redis). WAL B/heartbeat is the PostgreSQL server's WAL growth over the loop ÷ heartbeats (server-wide: another session writing at the same time adds to it).");
            sb.AppendLine();
            sb.AppendLine("| target | callers | heartbeats/s | ÷ raw | call p50 ms | call p99 ms | alloc B/heartbeat | WAL B/heartbeat (server-wide) |");
            sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var h in r.Heartbeats)
            {
                var raw = run.Baselines.TryGetValue(h.Target, out var b) ? r.Heartbeats.FirstOrDefault(x => x.Target == b && x.Scenario == h.Scenario) : null;
                sb.AppendLine(Inv, $"| {h.Target} | {Callers(h.Scenario)} | {h.TasksPerSecond:N0} | {RatioText(h, raw)} | {Ms(h.CallP50Ms)} | {Ms(h.CallP99Ms)} | {Bytes(h.AllocBytesPerTask)} | {Bytes(h.WalBytesPerTask)} |");
            }
            KafkaHeartbeatRow.AppendTo(sb, r.KafkaHeartbeats, run.Kafka);
        }

        if (r.Events.Count > 0)
        {
            sb.AppendLine("## Event append: events/s");
            sb.AppendLine();
            sb.AppendLine("`ITaskEventLog.AppendAsync`, ten events per task. Postgres: one multi-row INSERT … ON CONFLICT DO NOTHING into `task_events` (3 indexes) per call. Cassandra: two rows per event (by task; by queue, 5-min bucket and shard), UNLOGGED single-partition batches of ≤ 4 KB, written concurrently; `cassandra-1shard` is the same with one shard per bucket, `cassandra-ring` the two-node ring at RF 2. In-memory: the reference log, for scale.");
            sb.AppendLine();
            var logs = run.EventLogNames.Count > 0 ? run.EventLogNames : r.Events.Select(e => e.Target).Distinct().ToList();
            var pair = logs.Contains("cassandra") && logs.Contains("postgres");
            sb.Append("| mode |");
            foreach (var l in logs) sb.Append(Inv, $" {l} |");
            if (pair) sb.Append(" cassandra ÷ postgres |");
            sb.AppendLine();
            sb.Append("|---|");
            foreach (var _ in logs) sb.Append("---:|");
            if (pair) sb.Append("---:|");
            sb.AppendLine();
            foreach (var mode in r.Events.Select(e => e.Scenario).Distinct())
            {
                sb.Append(Inv, $"| {mode} |");
                foreach (var l in logs) sb.Append(Inv, $" {Rate(r.Events.FirstOrDefault(e => e.Scenario == mode && e.Target == l))} |");
                if (pair)
                    sb.Append(Inv, $" {RatioText(r.Events.FirstOrDefault(e => e.Scenario == mode && e.Target == "cassandra"), r.Events.FirstOrDefault(e => e.Scenario == mode && e.Target == "postgres"))} |");
                sb.AppendLine();
            }
            sb.AppendLine();
            sb.AppendLine("| mode | log | events | s | call p50 ms | call p99 ms | alloc B/event | WAL B/event |");
            sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|");
            foreach (var e in r.Events)
                sb.AppendLine(Inv, $"| {e.Scenario} | {e.Target} | {e.Tasks} | {e.Elapsed.TotalSeconds:0.0} | {Ms(e.CallP50Ms)} | {Ms(e.CallP99Ms)} | {Bytes(e.AllocBytesPerTask)} | {Bytes(e.WalBytesPerTask)} |");
            sb.AppendLine();
        }

        if (r.Throughput.Count > 0)
        {
            sb.AppendLine("## Per-call latency and allocations (the main table's rows)");
            sb.AppendLine();
            sb.AppendLine("Call latency = one store call (or the lease + complete pair); allocations are process-wide bytes allocated per task during the loop (GC.GetTotalAllocatedBytes), so they include Npgsql / StackExchange.Redis and the runtime. WAL = server-wide WAL bytes per task (Postgres targets).");
            sb.AppendLine();
            sb.AppendLine("| scenario | target | tasks | s | tasks/s | call p50 ms | call p99 ms | alloc B/task | WAL B/task | note |");
            sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
            foreach (var row in r.Throughput)
                sb.AppendLine(Inv, $"| {row.Scenario} | {row.Target} | {row.Tasks} | {row.Elapsed.TotalSeconds:0.0} | {row.TasksPerSecond:N0} | {Ms(row.CallP50Ms)} | {Ms(row.CallP99Ms)} | {Bytes(row.AllocBytesPerTask)} | {Bytes(row.WalBytesPerTask)} | {row.Note} |");
            sb.AppendLine();
        }

        if (r.Steady.Count > 0)
        {
            sb.AppendLine("## Steady state: enqueue → handler start through the worker runtime");
            sb.AppendLine();
            sb.AppendLine("Producers call the store directly (as another process would: no in-process wake-up), at a fixed rate; latency runs from just before the enqueue call to the no-op handler's start. `idle` = a low rate on an otherwise idle system (the pickup-latency target); `loaded` = the steady rate. Push off = the store's wake-up hidden, workers poll (50 ms doubling to 2 s, the defaults). Backlog = produced − started, sampled every 100 ms (first/last third averages); flat = last ≤ first + max(10, rate/20).");
            sb.AppendLine();
            sb.AppendLine("| target | load | push | rate/s | achieved/s | p50 ms | p95 ms | p99 ms | max ms | backlog first → last (max) | flat |");
            sb.AppendLine("|---|---|---|---:|---:|---:|---:|---:|---:|---|---|");
            foreach (var s in r.Steady)
                sb.AppendLine(Inv, $"| {s.Target} | {s.Load} | {(s.Push ? "on" : "off")} | {s.Rate} | {s.AchievedRate:N0} | {Ms(s.P50Ms)} | {Ms(s.P95Ms)} | {Ms(s.P99Ms)} | {Ms(s.MaxMs)} | {s.BacklogFirst} → {s.BacklogLast} ({s.BacklogMax}) | {(s.Flat ? "yes" : "**no**")} |");
            sb.AppendLine();
        }

        if (r.Churn.Count > 0)
        {
            sb.AppendLine(Inv, $"## Churn: {Duration(profile.ChurnBudget)} of enqueue + drain through the runtime");
            sb.AppendLine();
            sb.AppendLine("Closed-loop producers keep a backlog (capped) while the runtime drains it; per interval: tasks completed, the rate per minute, and pg_total_relation_size of the task table(s) (heap + indexes + TOAST). The runtime purges finished rows once they are 5 s old (`Konduit:PurgeFinishedAfter`, sweeper every 1 s), as a deployment keeping only recent history would; with bloat under control the size levels off and tasks/min stays flat, and decay shows as falling tasks/min. Run on the Postgres-backed stores, where bloat is the question.");
            sb.AppendLine();
            sb.AppendLine("| target | interval | ends at s | completed | tasks/min | table+index MB |");
            sb.AppendLine("|---|---:|---:|---:|---:|---:|");
            foreach (var c in r.Churn)
                sb.AppendLine(Inv, $"| {c.Target} | {c.Interval} | {c.End.TotalSeconds:0} | {c.Completed} | {c.TasksPerMinute:N0} | {(c.RelationBytes is { } b ? (b / 1048576.0).ToString("0.0", Inv) : "–")} |");
            sb.AppendLine();
            sb.AppendLine("### How bloat is handled today");
            sb.AppendLine();
            sb.AppendLine("- Schema version 2: `tasks` at `fillfactor = 80` and no index on `lease_expires_at`, so heartbeats (which change only that column) are HOT updates; lease (0→1) and complete (1→2) change `state`, which the partial indexes key on, so they are not HOT and each writes index entries.");
            sb.AppendLine("- Per-table autovacuum on `tasks`: vacuum after 1 % + 1,000 dead rows (server default 20 %), analyze after 2 % + 1,000, cost limit 1000 / delay 1 ms; `autovacuum_naptime` (1 min by default) still caps how often it runs.");
            sb.AppendLine("- Finished rows leave the hot table through `Konduit:PurgeFinishedAfter`: every node's sweeper purges finished tasks older than that in 500-row `FOR UPDATE SKIP LOCKED` batches (5 s in this run). No partitioning yet (the id-only PK keeps it possible).");
            sb.AppendLine("- What the design would need if churn decays: finished rows leaving the hot table (partition by id range and drop/detach, or move on complete), per-table autovacuum settings (`autovacuum_vacuum_scale_factor` low), and fewer indexed columns touched per transition.");
            sb.AppendLine();
        }
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

    /// <summary>Store × scenario in tasks/s; each store with a baseline is followed by its ratio column.</summary>
    public static void MainTable(StringBuilder sb, RunInfo run, IReadOnlyList<ThroughputRow> rows)
    {
        var names = run.TargetNames.Count > 0 ? run.TargetNames : rows.Select(x => x.Target).Distinct().ToList();
        sb.Append("| scenario |");
        foreach (var n in names) sb.Append(Inv, $" {n} |{(run.Baselines.TryGetValue(n, out var b) ? $" {n} ÷ {b} |" : "")}");
        sb.AppendLine();
        sb.Append("|---|");
        foreach (var n in names) sb.Append(run.Baselines.ContainsKey(n) ? "---:|---:|" : "---:|");
        sb.AppendLine();
        foreach (var scenario in rows.Select(x => x.Scenario).Distinct())
        {
            sb.Append(Inv, $"| {scenario} |");
            foreach (var n in names)
            {
                var row = Find(rows, scenario, n);
                sb.Append(Inv, $" {Rate(row)} |");
                if (run.Baselines.TryGetValue(n, out var b)) sb.Append(Inv, $" {RatioText(row, Baseline(rows, scenario, b))} |");
            }
            sb.AppendLine();
        }
    }

    /// <summary>The raw figure a scenario is compared with: the raw target's own row, or its lease-100 loops for the runtime burn-down.</summary>
    private static ThroughputRow? Baseline(IReadOnlyList<ThroughputRow> rows, string scenario, string raw) =>
        Find(rows, scenario, raw) ?? (scenario == LoadRunner.BurnDownRuntime ? Find(rows, LoadRunner.BurnDownLoops, raw) : null);

    private static ThroughputRow? Find(IReadOnlyList<ThroughputRow> rows, string scenario, string target) =>
        rows.FirstOrDefault(x => x.Scenario == scenario && x.Target == target);

    /// <summary>Every target of issue 7, in its order, with the measurement that answers it.</summary>
    public static IEnumerable<Target> Targets(RunInfo run, LoadResults r)
    {
        const string pg = "postgres";
        var rows = r.Throughput;
        string Tps(ThroughputRow row) => $"{row.TasksPerSecond:N0} tasks/s";

        Target Floor(string name, ThroughputRow? row, double goal, string why, string? notRun = null)
        {
            var goalText = $"≥ {goal:N0} tasks/s";
            if (row is null) return new(name, goalText, "not run", null, null, null, notRun ?? "");
            var margin = row.TasksPerSecond / goal;
            return new(name, goalText, Tps(row) + (row.Note is { Length: > 0 } n ? $" ({n})" : ""), margin >= 1, margin, row.AllocBytesPerTask,
                margin >= 1 ? "" : $"missed by {goal - row.TasksPerSecond:N0} tasks/s. {why}");
        }

        Target RatioTarget(string name, ThroughputRow? row, ThroughputRow? raw, double goal, string why)
        {
            var goalText = $"≥ {goal:P0} of {raw?.Target ?? "raw"}";
            if (row is null || raw is null || raw.TasksPerSecond == 0) return new(name, goalText, "not run", null, null, row?.AllocBytesPerTask, "");
            var ratio = row.TasksPerSecond / raw.TasksPerSecond;
            return new(name, goalText, $"{ratio:P0} ({row.TasksPerSecond:N0} vs {raw.TasksPerSecond:N0} tasks/s)", ratio >= goal, ratio / goal, row.AllocBytesPerTask,
                ratio >= goal ? "" : $"short by {(goal - ratio) * 100:0} points. {why}");
        }

        yield return Floor("batched burn-down through the worker runtime, no-op handler (postgres)", Find(rows, LoadRunner.BurnDownRuntime, pg), 50_000,
            "Per task the runtime does Task.Run + DI scope + heartbeat timer + completion channel; per 100 tasks one lease and one complete-many round trip.");
        yield return Floor("unbatched full cycle, one task per lease, 16 workers (postgres)", Find(rows, LoadRunner.Cycle1(16), pg), 5_000,
            "Two round trips and two commits (fsync) per task; group commit on 2 cores caps it. Complete-and-lease-next in one statement would halve the round trips.");
        var rawArrays = Find(rows, LoadRunner.EnqueueBatchArrays, "raw-sql");
        var rawCopy = Find(rows, LoadRunner.EnqueueBatchCopy, "raw-sql");
        var ceiling = $"Raw ceiling in this run: arrays {(rawArrays is null ? "not run" : Tps(rawArrays))}, binary COPY {(rawCopy is null ? "not run" : Tps(rawCopy))}.";
        yield return Floor("bulk enqueue, array parameters (postgres, batches of 100)", Find(rows, LoadRunner.EnqueueBatchArrays, pg), 100_000, ceiling);
        yield return Floor("bulk enqueue, binary COPY (postgres, batches of 100)", Find(rows, LoadRunner.EnqueueBatchCopy, pg), 100_000, ceiling,
            notRun: $"Konduit.Postgres has no binary COPY enqueue in this build. {ceiling}");
        yield return RatioTarget("single enqueue at 16 callers (postgres ÷ raw-sql)", Find(rows, LoadRunner.EnqueueSingle16, pg), Find(rows, LoadRunner.EnqueueSingle16, "raw-sql"), 0.9,
            "Each enqueue also writes the idempotency key's own row (task_keys) and wakes workers after commit.");

        foreach (var idle in r.Steady.Where(s => s.Load == "idle" && s.Push))
        {
            var met = idle.P50Ms < 2 && idle.P99Ms < 10;
            var margin = Math.Min(2 / idle.P50Ms, 10 / idle.P99Ms);
            var over = new[] { (P: "p50", V: idle.P50Ms, Limit: 2.0), (P: "p99", V: idle.P99Ms, Limit: 10.0) }.Where(x => x.V >= x.Limit).Select(x => $"{x.P} by {x.V - x.Limit:0.00} ms");
            yield return new($"pickup latency on an idle system, push wake-up ({idle.Target})", "p50 < 2 ms, p99 < 10 ms", $"p50 {Ms(idle.P50Ms)} ms, p99 {Ms(idle.P99Ms)} ms ({idle.Produced} tasks)",
                met, double.IsFinite(margin) ? margin : null, null,
                (met ? "" : $"over: {string.Join(", ", over)}. ") + "Measured from just before the enqueue call (its commit included) through the wake-up and the lease to the handler's start.");
        }

        // Every Konduit.Postgres operation that has a raw-sql twin: the main table's loops and the heartbeat.
        var ops = rows.Concat(r.Heartbeats)
            .Where(x => x.Target == pg && x.Scenario != LoadRunner.BurnDownRuntime)
            .Select(x => (Row: x, Raw: Baseline(x.Scenario.StartsWith("heartbeat", StringComparison.Ordinal) ? r.Heartbeats : rows, x.Scenario, "raw-sql")))
            .Where(x => x.Raw is { TasksPerSecond: > 0 })
            .Select(x => (x.Row, Ratio: x.Row.TasksPerSecond / x.Raw!.TasksPerSecond)).ToList();
        if (ops.Count > 0)
        {
            var worst = ops.MinBy(o => o.Ratio);
            var below = ops.Where(o => o.Ratio < 0.9).ToList();
            yield return new("every Konduit.Postgres operation vs raw-sql, same process", "≥ 90 % each",
                $"worst {worst.Ratio:P0} ({worst.Row.Scenario}); {below.Count} of {ops.Count} below", below.Count == 0, worst.Ratio / 0.9, worst.Row.AllocBytesPerTask,
                below.Count == 0 ? "" : "below: " + string.Join("; ", below.Select(o => $"{o.Row.Scenario} {o.Ratio:P0}")));
        }
        else
        {
            yield return new("every Konduit.Postgres operation vs raw-sql, same process", "≥ 90 % each", "not run", null, null, null, "");
        }

        var redisCycles = run.Baselines.TryGetValue("redis", out var rawRedis)
            ? rows.Where(x => x.Target == "redis" && x.Scenario.StartsWith("cycle lease 100", StringComparison.Ordinal))
                .Select(x => (Row: x, Raw: Find(rows, x.Scenario, rawRedis))).Where(x => x.Raw is { TasksPerSecond: > 0 })
                .Select(x => (x.Row, x.Raw, Ratio: x.Row.TasksPerSecond / x.Raw!.TasksPerSecond)).ToList()
            : [];
        if (redisCycles.Count > 0)
        {
            var worst = redisCycles.MinBy(c => c.Ratio);
            yield return new("Redis store batched cycle vs raw XREADGROUP+XACK (COUNT 100)", "≥ 50 % of raw-redis",
                $"worst {worst.Ratio:P0} ({worst.Row.Scenario}: {worst.Row.TasksPerSecond:N0} vs {worst.Raw!.TasksPerSecond:N0} tasks/s)", worst.Ratio >= 0.5, worst.Ratio / 0.5, worst.Row.AllocBytesPerTask,
                string.Join("; ", redisCycles.Select(c => $"{c.Row.Scenario[(c.Row.Scenario.LastIndexOf(',') + 2)..]}: {c.Ratio:P0}")) +
                (worst.Ratio >= 0.5 ? "" : ". The store runs a Lua script per lease and per complete-many (ordering index, fencing token, retry state) where raw streams do XREADGROUP and XACK+XDEL."));
        }
        else
        {
            yield return new("Redis store batched cycle vs raw XREADGROUP+XACK (COUNT 100)", "≥ 50 % of raw-redis", "not run", null, null, null, "needs the redis and raw-redis targets");
        }

        // Allocations per enqueue → lease → complete, unbatched and batched, against the same sum for raw-sql.
        double? Cycle(string target, string enqueue, string cycle) =>
            Find(rows, enqueue, target)?.AllocBytesPerTask is { } e && Find(rows, cycle, target)?.AllocBytesPerTask is { } c ? e + c : null;
        const int w1 = 1; // every profile's worker counts start at 1
        var single = Cycle(pg, LoadRunner.EnqueueSingle1, LoadRunner.Cycle1(w1));
        var batched = Cycle(pg, LoadRunner.EnqueueBatchArrays, LoadRunner.Cycle100(w1));
        var rawSingle = Cycle("raw-sql", LoadRunner.EnqueueSingle1, LoadRunner.Cycle1(w1));
        var rawBatched = Cycle("raw-sql", LoadRunner.EnqueueBatchArrays, LoadRunner.Cycle100(w1));
        yield return new("allocations per enqueue → lease → complete (postgres)", "reported, kept small",
            single is null ? "not run" : $"unbatched {Bytes(single)} B/task, batched {Bytes(batched)} B/task", null,
            null, single,
            single is null ? "" : $"raw-sql: unbatched {Bytes(rawSingle)} B, batched {Bytes(rawBatched)} B (postgres = {Times(single, rawSingle)} / {Times(batched, rawBatched)} of raw). Process-wide, 1 worker; BenchmarkDotNet's MemoryDiagnoser figures are below.");

        foreach (var target in r.Churn.Select(c => c.Target).Distinct())
        {
            var churn = r.Churn.Where(c => c.Target == target).ToList();
            if (churn.Count < 2) continue;
            var best = churn[..^1].Max(c => c.TasksPerMinute);
            var last = churn[^1];
            var ratio = best > 0 ? last.TasksPerMinute / best : 0;
            yield return new($"no throughput decay over the churn run ({target})", "last interval ≥ 90 % of the best earlier one",
                $"{last.TasksPerMinute:N0} vs {best:N0} tasks/min ({ratio:P0}); table {(last.RelationBytes ?? 0) / 1048576.0:0} MB", ratio >= 0.9, ratio / 0.9, null,
                ratio >= 0.9 ? "see How bloat is handled today" : $"decayed {1 - ratio:P0}; see How bloat is handled today");
        }
    }

    private static string Rate(ThroughputRow? row) => row is null ? "–" : row.TasksPerSecond.ToString("N0", Inv);

    private static string RatioText(ThroughputRow? row, ThroughputRow? raw) =>
        row is null || raw is null || raw.TasksPerSecond == 0 ? "–" : (row.TasksPerSecond / raw.TasksPerSecond).ToString("0.00", Inv);

    private static string Times(double? a, double? b) => a is { } x && b is { } y && y > 0 ? (x / y).ToString("0.0", Inv) + "×" : "–";

    private static string Callers(string scenario) => scenario.Split(' ').FirstOrDefault(p => int.TryParse(p.TrimEnd(','), out _))?.TrimEnd(',') ?? "";

    private static string Ms(double v) => double.IsNaN(v) ? "–" : v.ToString(v < 10 ? "0.00" : "0", Inv);

    private static string Bytes(double? v) => v is { } b && double.IsFinite(b) ? b.ToString("N0", Inv) : "–";

    private static string Duration(TimeSpan t) => t.TotalMinutes >= 1 ? $"{t.TotalMinutes:0.#} minutes" : $"{t.TotalSeconds:0.#} seconds";

    /// <summary>Grouped horizontal bars per scenario (tasks, heartbeats and events), one colour per target, log10 scale.</summary>
    public static string Chart(RunInfo run, LoadResults r)
    {
        string[] palette = ["#555555", "#8c564b", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e", "#17becf"];
        var all = r.Throughput.Concat(r.Heartbeats).Concat(r.Events).ToList();
        var series = run.TargetNames.Concat(run.EventLogNames).Concat(all.Select(x => x.Target)).Distinct().ToList();
        var scenarios = all.Select(x => x.Scenario).Distinct().ToList();
        const int labelW = 360, plotW = 560, barH = 12, gap = 10, top = 40;
        var rows = scenarios.Sum(s => Math.Max(1, all.Count(x => x.Scenario == s)));
        var height = top + rows * barH + scenarios.Count * gap + 50;
        var max = Math.Max(10, all.Select(x => x.TasksPerSecond).DefaultIfEmpty(10).Max());
        var decades = Math.Max(2, Math.Ceiling(Math.Log10(max)));
        const double minDecade = 1; // 10/s at the left edge
        double X(double v) => labelW + plotW * Math.Clamp((Math.Log10(Math.Max(v, 10)) - minDecade) / (decades - minDecade), 0, 1);

        var sb = new StringBuilder();
        sb.AppendLine(Inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{labelW + plotW + 120}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">");
        sb.AppendLine("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
        sb.AppendLine(Inv, $"<text x=\"10\" y=\"18\" font-size=\"14\" font-weight=\"bold\">Konduit: operations/s by scenario (tasks, heartbeats or events; log scale)</text>");
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
            foreach (var (t, i) in series.Select((t, i) => (t, i)))
            {
                if (all.FirstOrDefault(x => x.Scenario == s && x.Target == t) is not { } row) continue;
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
        foreach (var (t, i) in series.Select((t, i) => (t, i)))
        {
            sb.AppendLine(Inv, $"<rect x=\"{lx}\" y=\"{height - 16}\" width=\"10\" height=\"10\" fill=\"{palette[i % palette.Length]}\"/>");
            sb.AppendLine(Inv, $"<text x=\"{lx + 14}\" y=\"{height - 7}\">{WebUtility.HtmlEncode(t)}</text>");
            lx += 30 + t.Length * 7;
        }
        sb.AppendLine("</svg>");
        return sb.ToString();
    }
}
