using System.Globalization;
using System.Text;

namespace Konduit.Benchmarks;

/// <summary>
/// Writes the Markdown report for someone choosing a store: which store for which need first, then every figure with
/// the conditions it was measured under in one line above its table. The charts are <see cref="Charts"/>' (ScottPlot).
/// </summary>
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
    /// <param name="Conditions">The machine and the servers' durability settings; this machine alone when null.</param>
    public sealed record RunInfo(IReadOnlyList<string> TargetNames, IReadOnlyDictionary<string, string> Baselines, IReadOnlyList<string> EventLogNames,
        IReadOnlyList<(string Name, string Where)> Where, IReadOnlyList<string> Unavailable, string? Kafka, TimeSpan Wall, BenchConditions? Conditions = null)
    {
        public BenchConditions Machine { get; } = Conditions ?? BenchConditions.ThisMachine();
    }

    /// <summary>One row of "which store for which need": the need, the store that answers it, and the figure that says so.</summary>
    public sealed record Need(string What, string Store, string Figure, string Conditions);

    /// <summary>The report and its charts, as written.</summary>
    public sealed record Written(string Markdown, IReadOnlyList<Charts.Chart> Charts);

    public static Written Write(string directory, Profile profile, RunInfo run, LoadResults results, string? bdnSummary = null)
    {
        Directory.CreateDirectory(directory);
        var stamp = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", Inv);
        var stem = $"report-{profile.Name}-{stamp}";
        var md = Path.Combine(directory, stem + ".md");
        var charts = Charts.Write(directory, stem, run, results);
        File.WriteAllText(md, Markdown(profile, run, results, charts, bdnSummary));
        // A stable name for "the latest run" (what the README points at); it shows the charts of that run.
        File.Copy(md, Path.Combine(directory, $"latest-{profile.Name}.md"), overwrite: true);
        return new Written(md, charts);
    }

    public static string Markdown(Profile profile, RunInfo run, LoadResults r, IReadOnlyList<Charts.Chart> charts, string? bdnSummary)
    {
        var c = run.Machine;
        var sb = new StringBuilder();
        sb.AppendLine("# Konduit benchmark report: which store for which need");
        sb.AppendLine();
        sb.AppendLine(Inv, $"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC with the `{profile.Name}` profile{(profile.Name == "full" ? "" : " (short runs: compare the ratios, not single figures)")}.");
        sb.AppendLine();
        sb.AppendLine(Inv, $"- **Machine**: {c.Machine}. Clients, workers and servers all run on it and talk over loopback, so a server competes with the load for the same cores.");
        if (c.Postgres is not null)
            sb.AppendLine(Inv, $"- **PostgreSQL**: {c.Postgres}, {c.PostgresDurability} ({(c.PostgresDurability == "fsync on, synchronous_commit on" ? "a commit returns once its WAL is on disk" : "a crash can lose commits already acknowledged")}).");
        if (c.Redis is not null) sb.AppendLine(Inv, $"- **Redis**: {c.Redis}, {c.RedisDurability}{(c.RedisDurability == "appendonly no" ? " (a crash loses writes since the last snapshot)" : "")}.");
        if (c.Cassandra is not null) sb.AppendLine(Inv, $"- **Cassandra**: {c.Cassandra}.");
        sb.AppendLine(Inv, $"- **Workload**: {Workload(profile)}.");
        foreach (var u in run.Unavailable) sb.AppendLine(Inv, $"- not measured: {u}");
        sb.AppendLine();

        sb.AppendLine("## Which store for which need");
        sb.AppendLine();
        sb.AppendLine("Ratios compare a store with the raw statements for its server in the same run (1.00 = as fast as hand-written SQL or Redis commands with no library); they move far less between runs than the absolute figures.");
        sb.AppendLine();
        sb.AppendLine("| need | store | measured in this run | conditions |");
        sb.AppendLine("|---|---|---|---|");
        foreach (var n in Needs(profile, run, r))
            sb.AppendLine(Inv, $"| {n.What} | {n.Store} | {n.Figure} | {n.Conditions} |");
        sb.AppendLine();

        sb.AppendLine("## How to read the figures");
        sb.AppendLine();
        sb.AppendLine("- `raw-sql`: raw SQL with no library, the ceiling for the PostgreSQL-backed stores. A plain `task` table (one row per task, a pending index, a lease index) and the usual statements, prepared, through Npgsql: INSERT … ON CONFLICT for one task, INSERT … SELECT unnest(…) or binary COPY for a batch, a `FOR UPDATE SKIP LOCKED` lease of 1 or 100, UPDATE by id or `= ANY` to complete, UPDATE of the lease expiry for a heartbeat. It has none of what a store adds: no fencing token, no retry state, no idempotency-key table, no wake-up.");
        sb.AppendLine("- `raw-redis`: Redis Streams with no library, the ceiling for the Redis store. A stream per queue and one consumer group through StackExchange.Redis: XADD (a batch = 100 pipelined XADDs), XREADGROUP COUNT 1 or 100, then XACK and XDEL pipelined; a heartbeat is XCLAIM … JUSTID. No idempotency key, fencing token or retry state.");
        sb.AppendLine("- `raw-redis-cluster` and `redis-cluster`: the same two on a Redis Cluster (3 masters, 3 replicas): every key of a queue hash-tagged into one slot (`{prefix:queue}`), so the queues spread over the masters. Ratio: `redis-cluster` ÷ `raw-redis-cluster`.");
        sb.AppendLine("- `postgres`, `redis`, `postgresredis`, `inmemory`: the Konduit stores, driven through the same calls an application makes. Ratios: `postgres` and `postgresredis` ÷ `raw-sql`, `redis` ÷ `raw-redis`, in the same scenario (the worker-runtime burn-down ÷ the raw lease-100 loops).");
        sb.AppendLine("- Latency percentiles come from HdrHistogram (microseconds, 3 significant digits: within 0.1 %); a percentile of a short run rests on few samples, so p99.9 and max are a single slow call or two.");
        sb.AppendLine();

        if (r.Throughput.Count > 0)
        {
            sb.AppendLine("## Throughput: tasks/s, and each store ÷ its raw baseline");
            sb.AppendLine();
            sb.AppendLine(Inv, $"Conditions: {Duration(profile.OpBudget)} per cell after one warm-up call · prefill {profile.Prefill:N0} tasks per single cycle, {profile.Prefill * 2:N0} per batched cycle, {profile.BurnDownTasks:N0} for burn-down · batch callers {profile.BatchCallers} · callers and workers as in the scenario name · {Durability(c)}.");
            sb.AppendLine();
            MainTable(sb, run, r.Throughput);
            sb.AppendLine();
            if (r.Throughput.Any(x => x.Target == "raw-sql" && x.Scenario.StartsWith("cycle lease 1 ", StringComparison.Ordinal)))
                sb.AppendLine("The raw SQL lease of one task uses the common index (queue, status, scheduled_at, priority DESC), which does not match its ORDER BY priority DESC, scheduled_at: every lease sorts the whole pending backlog. A ratio above 1 there says that statement is slow, not that the store beats the ceiling.\n");
            foreach (var chart in charts.Where(x => x.Svg.EndsWith("-ratios.svg", StringComparison.Ordinal) || x.Svg.EndsWith("-throughput.svg", StringComparison.Ordinal)))
                sb.AppendLine(Inv, $"![{chart.Title}]({chart.Svg}) ([PNG]({chart.Png}))\n");
        }

        var closeness = Closeness(run, r).ToList();
        if (closeness.Count > 0)
        {
            sb.AppendLine("## How close each store comes to raw");
            sb.AppendLine();
            sb.AppendLine("Conditions: every throughput and heartbeat scenario above that has a raw twin, same run, same conditions.");
            sb.AppendLine();
            sb.AppendLine("| store | ÷ | scenarios | median | worst | best |");
            sb.AppendLine("|---|---|---:|---:|---|---|");
            foreach (var (store, raw, ratios) in closeness)
            {
                var sorted = ratios.OrderBy(x => x.Ratio).ToList();
                var median = sorted[sorted.Count / 2].Ratio;
                var best = sorted[^1];
                var slowRaw = raw == "raw-sql" && best.Scenario.StartsWith("cycle lease 1 ", StringComparison.Ordinal) ? "; the raw lease of one task is slow, see above" : "";
                sb.AppendLine(Inv, $"| {store} | {raw} | {sorted.Count} | {median:0.00} | {sorted[0].Ratio:0.00} ({sorted[0].Scenario}) | {best.Ratio:0.00} ({best.Scenario}{slowRaw}) |");
            }
            sb.AppendLine();
        }

        if (r.Throughput.Count > 0)
        {
            sb.AppendLine("## Latency per call, allocations, WAL");
            sb.AppendLine();
            sb.AppendLine(Inv, $"Conditions: as the throughput table. A call is one store call (a cycle: the lease and its complete). Alloc = bytes allocated by the whole process per task (the store, Npgsql or StackExchange.Redis, the runtime). WAL = the PostgreSQL server's WAL growth per task (server-wide: another session writing at the same time adds to it).");
            sb.AppendLine();
            sb.AppendLine("| scenario | target | tasks/s | calls | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | alloc B/task | WAL B/task | note |");
            sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
            foreach (var row in r.Throughput)
                sb.AppendLine(Inv, $"| {row.Scenario} | {row.Target} | {row.TasksPerSecond:N0} | {(row.Call.Count > 0 ? row.Call.Count.ToString("N0", Inv) : "–")} | {Ms(row.Call.P50)} | {Ms(row.Call.P90)} | {Ms(row.Call.P99)} | {Ms(row.Call.P999)} | {Ms(row.Call.Max)} | {Bytes(row.AllocBytesPerTask)} | {Bytes(row.WalBytesPerTask)} | {row.Note} |");
            sb.AppendLine();
        }

        if (r.Heartbeats.Count > 0)
        {
            sb.AppendLine("## Heartbeats: heartbeats/s and cost per heartbeat");
            sb.AppendLine();
            sb.AppendLine(Inv, $"Conditions: {Duration(profile.OpBudget)} per row · each caller holds {profile.HeartbeatLeases} leases and extends them in turn, one call per heartbeat (one row UPDATE on PostgreSQL, one script on Redis) · {Durability(c)}.");
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
            sb.AppendLine(Inv, $"Conditions: {Duration(profile.OpBudget)} per cell · ten events per task, 1 or 100 events per call, 1 to {Math.Max(profile.EventsInFlight, profile.BatchCallers)} calls in flight{(c.PostgresDurability is { } pd ? $" · PostgreSQL {pd}" : "")} · Cassandra: one node unless the log's name says ring.");
            sb.AppendLine();
            sb.AppendLine("The task history (`ITaskEventLog.AppendAsync`). PostgreSQL: one multi-row INSERT … ON CONFLICT DO NOTHING into `task_events` (3 indexes) per call. Cassandra: two rows per event (by task; by queue, 5-minute bucket and shard), unlogged single-partition batches of ≤ 4 KB written concurrently; `cassandra-1shard` is the same with one shard per bucket, `cassandra-ring` a two-node ring at replication factor 2. In-memory: the reference log, for scale.");
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
            sb.AppendLine("| mode | log | events | s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | alloc B/event | WAL B/event |");
            sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var e in r.Events)
                sb.AppendLine(Inv, $"| {e.Scenario} | {e.Target} | {e.Tasks:N0} | {e.Elapsed.TotalSeconds:0.0} | {Ms(e.Call.P50)} | {Ms(e.Call.P90)} | {Ms(e.Call.P99)} | {Ms(e.Call.P999)} | {Ms(e.Call.Max)} | {Bytes(e.AllocBytesPerTask)} | {Bytes(e.WalBytesPerTask)} |");
            sb.AppendLine();
        }

        if (r.Steady.Count > 0)
        {
            sb.AppendLine("## Pickup latency: enqueue → handler start through the worker runtime");
            sb.AppendLine();
            sb.AppendLine(Inv, $"Conditions: idle = {profile.IdleRate} tasks/s for {Duration(profile.IdleBudget)}, loaded = {profile.SteadyRate:N0} tasks/s for {Duration(profile.SteadyBudget)} · workers: concurrency {Math.Min(64, profile.RuntimeConcurrency)}, lease batch 100, no-op handler · producers call the store directly, as another process would · push off = workers poll (50 ms doubling to 2 s, the defaults) · {Durability(c)}.");
            sb.AppendLine();
            sb.AppendLine("Latency runs from just before the enqueue call (its commit included) to the handler's start. Backlog = enqueued − started, sampled every 100 ms (averages of the first and last third); it keeps up when the last third is ≤ the first + max(10, rate/20). The pickup's two store calls, p50 each: the producer's enqueue call (its commit wakes the worker) and the worker's lease calls that returned tasks.");
            sb.AppendLine();
            sb.AppendLine("| target | load | push | rate/s | achieved/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | backlog first → last (max) | keeps up | enqueue call p50 ms | lease call p50 ms |");
            sb.AppendLine("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|");
            foreach (var s in r.Steady)
                sb.AppendLine(Inv, $"| {s.Target} | {s.Load} | {(s.Push ? "on" : "off")} | {s.Rate:N0} | {s.AchievedRate:N0} | {Ms(s.Pickup.P50)} | {Ms(s.Pickup.P90)} | {Ms(s.Pickup.P99)} | {Ms(s.Pickup.P999)} | {Ms(s.Pickup.Max)} | {s.BacklogFirst} → {s.BacklogLast} ({s.BacklogMax}) | {(s.Flat ? "yes" : "**no**")} | {Ms(s.EnqueueCallP50Ms)} | {Ms(s.LeaseCallP50Ms)} |");
            sb.AppendLine();
            if (PickupFloor(r) is { } floor)
            {
                var stores = r.Steady.Where(s => s.Load == "idle" && s.Push && OnFloor(run, s.Target, floor) && s.Pickup.Count > 0).ToList();
                sb.AppendLine(Inv, $"The `{floor.Target}` row is the floor of an idle pickup on this server, without the library: the same producers send an INSERT and its NOTIFY (its own transaction, as the store's idle enqueue does), one LISTEN connection wakes one consumer, which leases up to 100 with the seed's statement; a task counts as started when that lease call returns (no runtime, no handler). Idle pickup p50 ÷ the floor's, this run: {(stores.Count == 0 ? "no store measured" : string.Join("; ", stores.Select(s => $"`{StoreName(s.Target)}` {Ratio(s.Pickup.P50, floor.Pickup.P50)} ({Ms(s.Pickup.P50)} vs {Ms(floor.Pickup.P50)} ms)")))}.");
                sb.AppendLine();
            }
            foreach (var chart in charts.Where(x => x.Svg.EndsWith("-latency.svg", StringComparison.Ordinal)))
                sb.AppendLine(Inv, $"![{chart.Title}]({chart.Svg}) ([PNG]({chart.Png}))\n");
        }

        if (r.Churn.Count > 0)
        {
            sb.AppendLine(Inv, $"## Churn: {Duration(profile.ChurnBudget)} of enqueue and drain through the runtime");
            sb.AppendLine();
            sb.AppendLine(Inv, $"Conditions: producers keep up to {profile.ChurnBacklogCap:N0} tasks waiting, in batches of 100 · workers: concurrency {profile.RuntimeConcurrency}, lease batch 100 · finished tasks purged once {LoadRunner.ChurnPurgeAfter.TotalSeconds:0} s old (`Konduit:PurgeFinishedAfter`) · PostgreSQL-backed stores only, where table bloat is the question · {Durability(c)}.");
            sb.AppendLine();
            sb.AppendLine("Per interval: tasks completed, the rate per minute, the task tables' size on disk (heap, indexes, TOAST), and across the whole schema: table and index bytes, dead row versions not yet vacuumed (`n_dead_tup`) and autovacuum passes so far. With bloat under control the size levels off and tasks/min stays flat; decay shows as falling tasks/min.");
            sb.AppendLine();
            sb.AppendLine("| target | interval | ends at s | completed | tasks/min | task tables MB | schema tables MB | schema indexes MB | dead tuples | autovacuums |");
            sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var ch in r.Churn)
                sb.AppendLine(Inv, $"| {ch.Target} | {ch.Interval} | {ch.End.TotalSeconds:0} | {ch.Completed:N0} | {ch.TasksPerMinute:N0} | {Mb(ch.RelationBytes)} | {Mb(ch.Storage?.TableBytes)} | {Mb(ch.Storage?.IndexBytes)} | {Count(ch.Storage?.DeadTuples)} | {Count(ch.Storage?.Autovacuums)} |");
            sb.AppendLine();
            foreach (var target in r.Churn.Select(x => x.Target).Distinct())
            {
                var churn = r.Churn.Where(x => x.Target == target).ToList();
                if (churn.Count < 2) continue;
                sb.AppendLine(Inv, $"- `{target}`: {ChurnDecay(churn)}.");
            }
            sb.AppendLine();
            sb.AppendLine("How the PostgreSQL store keeps its table from bloating:");
            sb.AppendLine();
            sb.AppendLine("- `tasks` is created with `fillfactor = 80` and no index on `lease_expires_at`, so heartbeats (which change only that column) are HOT updates; lease and complete change `state`, which the partial indexes key on, so each writes index entries.");
            sb.AppendLine("- Autovacuum settings on `tasks`: vacuum after 1 % + 1,000 dead rows (server default 20 %), analyze after 2 % + 1,000, cost limit 1000 / delay 1 ms; `autovacuum_naptime` (1 minute by default) still caps how often it runs.");
            sb.AppendLine("- Finished tasks leave the table through `Konduit:PurgeFinishedAfter`: every node's sweeper deletes finished tasks older than that in 500-row `FOR UPDATE SKIP LOCKED` batches.");
            sb.AppendLine();
        }
        if (r.HorizonRuns.Count > 0) Horizon(sb, profile, c, r);
        foreach (var note in r.Notes) sb.AppendLine(Inv, $"- {note}");
        if (bdnSummary is not null)
        {
            sb.AppendLine();
            sb.AppendLine("## Per operation in isolation (BenchmarkDotNet)");
            sb.AppendLine();
            sb.AppendLine("Conditions: one caller, in process, BenchmarkDotNet's own warm-up and iterations; Allocated is per operation (MemoryDiagnoser).");
            sb.AppendLine();
            sb.AppendLine(bdnSummary);
        }

        sb.AppendLine("## Where each target ran");
        sb.AppendLine();
        foreach (var (name, where) in run.Where) sb.AppendLine(Inv, $"- `{name}`: {where}");
        if (run.Where.Count > 0)
            sb.AppendLine("\nEvery schema, key prefix and keyspace above belongs to this run alone (a random suffix) and is dropped at the end.");
        if (r.Timings.Count > 0)
            sb.AppendLine(Inv, $"\nLoad runner {run.Wall.TotalSeconds:0} s: {string.Join(", ", r.Timings.Select(t => $"{t.Scenario} {t.Elapsed.TotalSeconds:0} s"))}.");
        return sb.ToString();
    }

    /// <summary>The churn's "no lasting decay" line: the last interval ÷ the first and ÷ the best earlier one, and how the tables grew.</summary>
    public static string ChurnDecay(IReadOnlyList<ChurnRow> churn)
    {
        var first = churn[0];
        var last = churn[^1];
        var best = churn.Take(churn.Count - 1).Max(x => x.TasksPerMinute);
        var vsFirst = first.TasksPerMinute > 0 ? last.TasksPerMinute / first.TasksPerMinute : 0;
        var vsBest = best > 0 ? last.TasksPerMinute / best : 0;
        var sb = new StringBuilder();
        if (first.TasksPerMinute > 0)
            sb.Append(Inv, $"the last interval ran at **{vsFirst:0.00} × the first** and {vsBest:0.00} × the best earlier one{(vsFirst >= 0.9 ? " (no lasting decay)" : " (**decay**)")}");
        else
            sb.Append(Inv, $"the first interval completed nothing (start-up); the last ran at {vsBest:0.00} × the best earlier one");
        if (first.RelationBytes is { } b0 && last.RelationBytes is { } b1 && b0 > 0)
            sb.Append(Inv, $"; task tables {Mb(b0)} → {Mb(b1)} MB ({b1 / (double)b0:0.00} ×)");
        if (first.Storage is { } s0 && last.Storage is { } s1 && s0.TotalBytes > 0)
            sb.Append(Inv, $"; whole schema {Mb(s0.TotalBytes)} → {Mb(s1.TotalBytes)} MB ({s1.TotalBytes / (double)s0.TotalBytes:0.00} ×), dead tuples {Count(s0.DeadTuples)} → {Count(s1.DeadTuples)}, {Count(s1.Autovacuums - s0.Autovacuums)} autovacuum passes in between");
        return sb.ToString();
    }

    private static void Horizon(StringBuilder sb, Profile profile, BenchConditions c, LoadResults r)
    {
        var window = profile.HorizonRecoveryWindow;
        sb.AppendLine(Inv, $"## Pinned xmin horizon: {Duration(profile.HorizonPinned)} of a transaction holding an xid, during churn");
        sb.AppendLine();
        sb.AppendLine(Inv, $"Conditions: churn as above (producers keep up to {profile.ChurnBacklogCap:N0} tasks waiting, in batches of 100), {Duration(profile.HorizonWarmUp)} of warm-up, then {Duration(profile.HorizonBefore)} measured before the pin, {Duration(profile.HorizonPinned)} with another connection in `BEGIN; SELECT pg_current_xact_id();` and {Duration(profile.HorizonAfter)} after its `COMMIT`, in intervals of {Duration(profile.HorizonInterval)} · PostgreSQL-backed targets only · {Durability(c)}.");
        sb.AppendLine();
        sb.AppendLine(Inv, $"While the xid is held no row version deleted after it began can be vacuumed away, on any table of the database: dead tuples and dead index entries pile up, and every lease scan walks past them. Baseline = tasks/s before the pin; the goal is an interval back at ≥ {HorizonSummary.RecoveredShare:0%} of it within {Duration(window)} of the release. Sizes are of the target's own schema: tables with TOAST and maps, indexes each on their own.");
        sb.AppendLine();
        sb.AppendLine(Inv, $"| target | drained by | baseline tasks/s | lowest while pinned | ÷ baseline | {Duration(window)} after release ÷ baseline | back at ≥ {HorizonSummary.RecoveredShare:0%} after | within {Duration(window)} | dead tuples at pin → peak → {Duration(window)} after | schema MB at pin → release → {Duration(window)} after |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---|---|---|");
        var summaries = new List<HorizonSummary>();
        foreach (var run in r.HorizonRuns)
        {
            var h = HorizonSummary.Of(run, r.Horizon.Where(x => x.Target == run.Target).ToList(), window);
            summaries.Add(h);
            sb.AppendLine(Inv, $"| {run.Target} | {run.Driver} | {h.Baseline:N0} | {(h.Lowest is { } low ? low.TasksPerSecond.ToString("N0", Inv) : "–")} | **{h.LowestRatio:0.00}** | **{h.AfterRatio:0.00}** | {(h.RecoveredAfter is { } back ? $"{back.TotalSeconds:0.#} s" : "not in this run")} | {(h.RecoveredInWindow ? "yes" : "**no**")} | {Count(h.AtPin?.DeadTuples)} → {Count(h.Peak?.DeadTuples)} → {Count(h.WindowAfter?.DeadTuples)} | {Mb(h.AtPin?.TotalBytes)} → {Mb(h.AtRelease?.TotalBytes)} → {Mb(h.WindowAfter?.TotalBytes)} |");
        }
        sb.AppendLine();

        foreach (var h in summaries)
        {
            var run = r.HorizonRuns.First(x => x.Target == h.Target);
            var rows = r.Horizon.Where(x => x.Target == h.Target).ToList();
            sb.AppendLine(Inv, $"### `{h.Target}`: every relation at the pin, at the release, at the dead-tuple peak and {Duration(window)} after");
            sb.AppendLine();
            sb.AppendLine(Inv, $"Conditions: as above; xid {run.Xid} held from {run.PinnedAt.TotalSeconds:0.0} s to {run.ReleasedAt.TotalSeconds:0.0} s of the measured run, {run.XidAge:N0} xids old at its release.");
            sb.AppendLine();
            var moments = new (string Label, StorageSnapshot? At)[] { ("at pin", h.AtPin), ("at release", h.AtRelease), ("peak", h.Peak), ($"{Duration(window)} after", h.WindowAfter) };
            sb.AppendLine("| relation | of table | " + string.Join(" | ", moments.Select(m => $"MB {m.Label}")) + " | " + string.Join(" | ", moments.Select(m => $"dead tuples {m.Label}")) + " | autovacuums in the run | last autovacuum, s after release |");
            sb.AppendLine("|---|---|" + string.Concat(Enumerable.Repeat("---:|", moments.Length * 2)) + "---:|---:|");
            var first = rows.FirstOrDefault(x => x.Storage is not null)?.Storage;
            var last = rows.LastOrDefault(x => x.Storage is not null)?.Storage;
            var releasedAt = last is null ? (DateTimeOffset?)null : last.At - (rows[^1].End - run.ReleasedAt);
            foreach (var rel in last?.Relations ?? [])
            {
                var line = new StringBuilder().Append(Inv, $"| {rel.Name} | {rel.Table ?? "–"} |");
                foreach (var (_, at) in moments) line.Append(Inv, $" {Mb(at?.Find(rel.Name)?.Bytes)} |");
                foreach (var (_, at) in moments) line.Append(Inv, $" {(rel.IsIndex ? "–" : Count(at?.Find(rel.Name)?.DeadTuples))} |");
                var vacuums = rel.Autovacuums is { } n1 ? n1 - (first?.Find(rel.Name)?.Autovacuums ?? 0) : (long?)null;
                var lastVacuum = rel.LastAutovacuum is { } lv && releasedAt is { } ra && (first?.Find(rel.Name)?.LastAutovacuum != lv) ? (lv - ra).TotalSeconds.ToString("0", Inv) : "–";
                line.Append(Inv, $" {(rel.IsIndex ? "–" : Count(vacuums))} | {(rel.IsIndex ? "–" : lastVacuum)} |");
                sb.AppendLine(line.ToString());
            }
            sb.AppendLine();
            sb.AppendLine("Per interval (s from the release; negative before it):");
            sb.AppendLine();
            sb.AppendLine("| phase | ends at s | tasks/s | ÷ baseline | tables MB | indexes MB | dead tuples | autovacuums |");
            sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var x in rows)
                sb.AppendLine(Inv, $"| {x.Phase} | {(x.End - run.ReleasedAt).TotalSeconds:0.0} | {x.TasksPerSecond:N0} | {(h.Baseline > 0 ? x.TasksPerSecond / h.Baseline : 0):0.00} | {Mb(x.Storage?.TableBytes)} | {Mb(x.Storage?.IndexBytes)} | {Count(x.Storage?.DeadTuples)} | {Count(x.Storage?.Autovacuums)} |");
            sb.AppendLine();
        }
    }

    private static string Mb(long? bytes) => bytes is { } b ? (b / 1048576.0).ToString("0.0", Inv) : "–";

    private static string Count(long? n) => n is { } v ? v.ToString("N0", Inv) : "–";

    /// <summary>The run's workload in one line: payload, run length, batch and concurrency.</summary>
    private static string Workload(Profile p) =>
        $"payload a JSON object of about 12 bytes (`{{\"n\":…}}`; 8 bytes in the runtime scenarios) · {Duration(p.OpBudget)} per measurement after one warm-up call · " +
        $"batches of 100 · 1 to 16 callers or workers ({string.Join(", ", p.WorkerCounts)} workers in the cycles) · no-op handlers";

    private static string Durability(BenchConditions c) =>
        string.Join(" · ", new[] { c.PostgresDurability is { } pg ? "PostgreSQL " + pg : null, c.RedisDurability is { } rd ? "Redis " + rd : null }.Where(x => x is not null));

    /// <summary>The need → store table: each row's figure comes from this run's results; a missing figure says so.</summary>
    public static IEnumerable<Need> Needs(Profile profile, RunInfo run, LoadResults r)
    {
        var c = run.Machine;
        var rows = r.Throughput;
        const string notMeasured = "not measured in this run";
        string Tps(ThroughputRow? row) => row is null ? "–" : $"{row.TasksPerSecond:N0} tasks/s";
        string WithRatio(ThroughputRow? row, string raw) =>
            row is null ? notMeasured : Ratio(rows, run, row.Scenario, row.Target) is { } x ? $"{Tps(row)}, {x:0.00} × {raw}" : Tps(row);
        var pgDurable = c.PostgresDurability is { } d ? d : "PostgreSQL settings not read";

        var single = Find(rows, LoadRunner.EnqueueSingle16, "postgres");
        yield return new("Enqueue tasks in the same transaction as your own data; a task is durable once your commit returns", "`Postgres`",
            single is null ? notMeasured : $"single enqueue {WithRatio(single, "raw SQL")}",
            $"16 callers, one task per call with an idempotency key · {pgDurable}");

        var copy = Find(rows, LoadRunner.EnqueueBatchCopy, "postgres");
        var arrays = Find(rows, LoadRunner.EnqueueBatchArrays, "postgres");
        yield return new("Load many tasks at once", "`Postgres` (`BulkEnqueueAsync`, binary COPY)",
            copy is null && arrays is null ? notMeasured
                : string.Join("; ", new[] { copy is null ? null : $"binary COPY {WithRatio(copy, "raw COPY")}", arrays is null ? null : $"`EnqueueManyAsync` {WithRatio(arrays, "raw SQL")}" }.Where(x => x is not null)),
            $"{profile.BatchCallers} callers, 100 tasks per call · {pgDurable}");

        var redisCycle = rows.Where(x => x.Target == "redis" && x.Scenario.StartsWith("cycle lease 100", StringComparison.Ordinal)).MaxBy(x => x.TasksPerSecond);
        var pgCycle = redisCycle is null ? null : Find(rows, redisCycle.Scenario, "postgres");
        yield return new("The most tasks per second through workers, with Redis' durability (as much as its persistence keeps)", "`Redis`",
            redisCycle is null ? notMeasured : $"{WithRatio(redisCycle, "raw Redis Streams")} ({redisCycle.Scenario}){(pgCycle is null ? "" : $"; `Postgres` {Tps(pgCycle)}")}",
            $"lease 100 + complete many · {c.RedisDurability ?? "Redis settings not read"}");

        var burn = rows.Where(x => x.Scenario == LoadRunner.BurnDownRuntime && x.Target != "inmemory").ToList();
        yield return new("Drain a backlog through the worker runtime", burn.Count == 0 ? "–" : $"`{StoreName(burn.MaxBy(x => x.TasksPerSecond)!.Target)}` (fastest here)",
            burn.Count == 0 ? notMeasured : string.Join("; ", burn.OrderByDescending(x => x.TasksPerSecond).Select(x => $"`{StoreName(x.Target)}` {Tps(x)}")),
            $"{profile.BurnDownTasks:N0} tasks waiting · concurrency {profile.RuntimeConcurrency}, lease batch 100, no-op handler · {Durability(c)}");

        var idle = r.Steady.Where(s => s.Load == "idle" && s.Push && s.Target != "inmemory" && !IsRaw(s.Target) && s.Pickup.Count > 0).ToList();
        var pickupFloor = PickupFloor(r);
        yield return new("Start a task within milliseconds of its enqueue", idle.Count == 0 ? "–" : $"`{StoreName(idle.MinBy(s => s.Pickup.P99)!.Target)}` (lowest p99 here)",
            idle.Count == 0 ? notMeasured : string.Join("; ", idle.OrderBy(s => s.Pickup.P99).Select(s =>
                $"`{StoreName(s.Target)}` p50 {Ms(s.Pickup.P50)} ms{(pickupFloor is null || !OnFloor(run, s.Target, pickupFloor) ? "" : $" ({Ratio(s.Pickup.P50, pickupFloor.Pickup.P50)} the raw floor's {Ms(pickupFloor.Pickup.P50)})")}, p99 {Ms(s.Pickup.P99)} ms")),
            $"{profile.IdleRate} tasks/s on an idle system, push wake-up on, enqueue call to handler start");

        var hybrid = r.Steady.FirstOrDefault(s => s.Target == "postgresredis" && s.Load == "loaded" && s.Push);
        var plain = r.Steady.FirstOrDefault(s => s.Target == "postgres" && s.Load == "loaded" && s.Push);
        yield return new("PostgreSQL's guarantees, with Redis carrying the wake-ups (and PostgreSQL alone while Redis is down)", "`PostgresRedis`",
            hybrid is null ? notMeasured : $"pickup p50 {Ms(hybrid.Pickup.P50)} ms, p99 {Ms(hybrid.Pickup.P99)} ms{(plain is null ? "" : $" (`Postgres`: {Ms(plain.Pickup.P50)} / {Ms(plain.Pickup.P99)} ms)")}",
            $"{profile.SteadyRate:N0} tasks/s, push wake-up on · {Durability(c)}");

        var cassandra = r.Events.FirstOrDefault(e => e.Target == "cassandra" && e.Scenario == LoadRunner.AppendBatch(profile.BatchCallers));
        var pgEvents = r.Events.FirstOrDefault(e => e.Target == "postgres" && e.Scenario == LoadRunner.AppendBatch(profile.BatchCallers));
        // Cassandra is there to spread writes over nodes; on one node the PostgreSQL table may well be faster, and the
        // row says which one this run measured ahead rather than assuming.
        var cassandraAhead = cassandra is not null && (pgEvents is null || cassandra.TasksPerSecond >= pgEvents.TasksPerSecond);
        yield return new("Keep every task's history (the event log) at high volume",
            cassandra is null && pgEvents is null ? "–"
                : cassandraAhead ? "Cassandra event log"
                : "PostgreSQL event log on one node; Cassandra when writes must spread over several nodes",
            cassandra is null ? notMeasured
                : $"Cassandra {cassandra.TasksPerSecond:N0} events/s{(pgEvents is { TasksPerSecond: > 0 } ? $", {cassandra.TasksPerSecond / pgEvents.TasksPerSecond:0.00} × the PostgreSQL table ({pgEvents.TasksPerSecond:N0} events/s)" : "")}",
            $"100 events per call, {profile.BatchCallers} calls in flight · one Cassandra node, one PostgreSQL server{(c.PostgresDurability is { } pd ? $" ({pd})" : "")}");

        var memory = Find(rows, LoadRunner.BurnDownRuntime, "inmemory");
        yield return new("Tests and samples in one process", "`InMemory`",
            memory is null ? notMeasured : $"burn-down {Tps(memory)}: the runtime's own cost, with no server",
            $"{profile.BurnDownTasks:N0} tasks, concurrency {profile.RuntimeConcurrency}, no-op handler · nothing survives the process");
    }

    /// <summary>A raw baseline (raw-sql, raw-redis, …), not a store.</summary>
    private static bool IsRaw(string target) => target.StartsWith("raw-", StringComparison.Ordinal);

    /// <summary>The idle row of the raw pickup floor (raw-sql), when measured.</summary>
    private static SteadyRow? PickupFloor(LoadResults r) =>
        r.Steady.FirstOrDefault(s => s.Target == "raw-sql" && s.Load == "idle" && s.Pickup.Count > 0);

    /// <summary>Whether <paramref name="target"/>'s raw baseline is the floor's server (the SQL floor says nothing of Redis).</summary>
    private static bool OnFloor(RunInfo run, string target, SteadyRow floor) =>
        run.Baselines.TryGetValue(target, out var baseline) && baseline == floor.Target;

    /// <summary>"1.62×": a store's latency over its floor's (above 1 = slower).</summary>
    private static string Ratio(double value, double floor) =>
        floor > 0 && !double.IsNaN(value) ? string.Create(CultureInfo.InvariantCulture, $"{value / floor:0.00}×") : "–";

    private static string StoreName(string target) => target switch
    {
        "postgres" => "Postgres",
        "redis" => "Redis",
        "redis-cluster" => "Redis (cluster)",
        "postgresredis" => "PostgresRedis",
        "inmemory" => "InMemory",
        _ => target,
    };

    /// <summary>Per store with a raw baseline: every scenario's ratio to it.</summary>
    private static IEnumerable<(string Store, string Raw, List<(string Scenario, double Ratio)> Ratios)> Closeness(RunInfo run, LoadResults r)
    {
        var rows = r.Throughput.Concat(r.Heartbeats).ToList();
        foreach (var store in run.TargetNames.Where(run.Baselines.ContainsKey))
        {
            var ratios = rows.Where(x => x.Target == store)
                .Select(x => (x.Scenario, Ratio: Ratio(rows, run, x.Scenario, store)))
                .Where(x => x.Ratio is not null).Select(x => (x.Scenario, x.Ratio!.Value)).ToList();
            if (ratios.Count > 0) yield return (store, run.Baselines[store], ratios);
        }
    }

    /// <summary>Store × scenario: first each store's ratio to its raw baseline (the headline), then every target's tasks/s.</summary>
    public static void MainTable(StringBuilder sb, RunInfo run, IReadOnlyList<ThroughputRow> rows)
    {
        var names = run.TargetNames.Count > 0 ? run.TargetNames : rows.Select(x => x.Target).Distinct().ToList();
        var withRaw = names.Where(run.Baselines.ContainsKey).ToList();
        sb.Append("| scenario |");
        foreach (var n in withRaw) sb.Append(Inv, $" {n} ÷ {run.Baselines[n]} |");
        foreach (var n in names) sb.Append(Inv, $" {n} tasks/s |");
        sb.AppendLine();
        sb.Append("|---|");
        foreach (var _ in withRaw) sb.Append("---:|");
        foreach (var _ in names) sb.Append("---:|");
        sb.AppendLine();
        foreach (var scenario in rows.Select(x => x.Scenario).Distinct())
        {
            sb.Append(Inv, $"| {scenario} |");
            foreach (var n in withRaw) sb.Append(Inv, $" {(Ratio(rows, run, scenario, n) is { } x ? $"**{x:0.00}**" : "–")} |");
            foreach (var n in names) sb.Append(Inv, $" {Rate(Find(rows, scenario, n))} |");
            sb.AppendLine();
        }
    }

    /// <summary><paramref name="target"/> ÷ its raw baseline in <paramref name="scenario"/>; null without either figure.</summary>
    public static double? Ratio(IReadOnlyList<ThroughputRow> rows, RunInfo run, string scenario, string target) =>
        run.Baselines.TryGetValue(target, out var raw) && Find(rows, scenario, target) is { } row && Baseline(rows, scenario, raw) is { TasksPerSecond: > 0 } b
            ? row.TasksPerSecond / b.TasksPerSecond
            : null;

    /// <summary>The raw figure a scenario is compared with: the raw target's own row, or its lease-100 loops for the runtime burn-down.</summary>
    private static ThroughputRow? Baseline(IReadOnlyList<ThroughputRow> rows, string scenario, string raw) =>
        Find(rows, scenario, raw) ?? (scenario is LoadRunner.BurnDownRuntime or LoadRunner.BurnDownRuntimeCold ? Find(rows, LoadRunner.BurnDownLoops, raw) : null);

    private static ThroughputRow? Find(IReadOnlyList<ThroughputRow> rows, string scenario, string target) =>
        rows.FirstOrDefault(x => x.Scenario == scenario && x.Target == target);

    private static string Rate(ThroughputRow? row) => row is null ? "–" : row.TasksPerSecond.ToString("N0", Inv);

    private static string RatioText(ThroughputRow? row, ThroughputRow? raw) =>
        row is null || raw is null || raw.TasksPerSecond == 0 ? "–" : (row.TasksPerSecond / raw.TasksPerSecond).ToString("0.00", Inv);

    private static string Callers(string scenario) => scenario.Split(' ').FirstOrDefault(p => int.TryParse(p.TrimEnd(','), out _))?.TrimEnd(',') ?? "";

    private static string Ms(double v) => double.IsNaN(v) ? "–" : v.ToString(v < 10 ? "0.00" : "0", Inv);

    private static string Bytes(double? v) => v is { } b && double.IsFinite(b) ? b.ToString("N0", Inv) : "–";

    private static string Duration(TimeSpan t) => t.TotalMinutes >= 1 ? $"{t.TotalMinutes:0.#} min" : $"{t.TotalSeconds:0.#} s";
}
