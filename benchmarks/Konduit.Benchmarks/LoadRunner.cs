using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;

namespace Konduit.Benchmarks;

/// <summary>
/// One throughput figure: a scenario run against one target. "Tasks" are the scenario's unit: tasks, heartbeats or
/// events. WAL bytes per task are the PostgreSQL server's (server-wide) WAL growth over the loop, for Postgres targets.
/// </summary>
/// <param name="Call">Latency of one call of the loop (HdrHistogram); <see cref="LatencyPercentiles.None"/> where calls are not timed.</param>
public sealed record ThroughputRow(string Scenario, string Target, long Tasks, TimeSpan Elapsed, double? AllocBytesPerTask, LatencyPercentiles Call, string? Note = null,
    double? WalBytesPerTask = null)
{
    public double TasksPerSecond => Elapsed.TotalSeconds > 0 ? Tasks / Elapsed.TotalSeconds : 0;

    public double CallP50Ms => Call.P50;

    public double CallP99Ms => Call.P99;
}

/// <summary>Steady state: producers at a fixed rate, pickup latency through the worker runtime.</summary>
/// <param name="Pickup">Enqueue → handler start, percentiles (HdrHistogram).</param>
/// <param name="Curve">The same latency by percentile, for the chart.</param>
/// <param name="EnqueueCallP50Ms">The producers' enqueue calls (commit included), p50: the pickup's first part.</param>
/// <param name="LeaseCallP50Ms">The worker's lease calls that returned tasks, p50: the pickup's second part.</param>
public sealed record SteadyRow(string Target, string Load, bool Push, int Rate, double AchievedRate, long Produced, long Started,
    LatencyPercentiles Pickup, IReadOnlyList<(double Percentile, double Ms)> Curve, long BacklogFirst, long BacklogLast, long BacklogMax, bool Flat,
    double EnqueueCallP50Ms = double.NaN, double LeaseCallP50Ms = double.NaN)
{
    public double P50Ms => Pickup.P50;

    public double P99Ms => Pickup.P99;
}

/// <summary>One churn interval.</summary>
/// <param name="Storage">Every table and index of the target's schema at the interval's end, with dead tuples and autovacuum counts.</param>
public sealed record ChurnRow(string Target, int Interval, TimeSpan End, long Completed, double TasksPerMinute, long? RelationBytes, StorageSnapshot? Storage = null);

/// <summary>One interval of the pinned-horizon scenario.</summary>
/// <param name="Phase"><see cref="HorizonRow.Before"/>, <see cref="HorizonRow.Pinned"/> or <see cref="HorizonRow.After"/> the pin.</param>
/// <param name="End">When the interval ended, from the start of the first measured interval.</param>
/// <param name="Length">The interval's measured length.</param>
/// <param name="Storage">Every table and index of the target's schema at the interval's end.</param>
public sealed record HorizonRow(string Target, string Phase, int Interval, TimeSpan End, TimeSpan Length, long Completed, StorageSnapshot? Storage)
{
    public const string Before = "before";
    public const string Pinned = "pinned";
    public const string After = "after";

    public double TasksPerSecond => Length.TotalSeconds > 0 ? Completed / Length.TotalSeconds : 0;
}

/// <summary>The pin of one target's pinned-horizon run: the xid held, and when (from the start of the first measured interval).</summary>
/// <param name="XidAge">Xids the server assigned between the pin and its release (how far behind the horizon was held).</param>
/// <param name="Driver">What drained the queue.</param>
public sealed record HorizonRun(string Target, long Xid, TimeSpan PinnedAt, TimeSpan ReleasedAt, long XidAge, string Driver);

/// <summary>What a pinned-horizon run says, computed from its intervals.</summary>
/// <param name="Baseline">Tasks/s over the intervals before the pin.</param>
/// <param name="Lowest">The slowest interval while the xid was held.</param>
/// <param name="AfterRatio">Tasks/s over the recovery window after the release ÷ <paramref name="Baseline"/>.</param>
/// <param name="RecoveredAfter">From the release to the end of the first interval back at ≥ 90 % of the baseline; null when none was.</param>
/// <param name="Window">The recovery window (a minute, or the whole after-phase of a shorter profile).</param>
/// <param name="AtPin">Storage at the last interval before the pin.</param>
/// <param name="AtRelease">Storage at the last pinned interval.</param>
/// <param name="Peak">Storage at the interval with the most dead tuples.</param>
/// <param name="WindowAfter">Storage at the interval ending nearest one <paramref name="Window"/> after the release.</param>
public sealed record HorizonSummary(string Target, double Baseline, HorizonRow? Lowest, double AfterRatio, TimeSpan? RecoveredAfter, TimeSpan Window,
    StorageSnapshot? AtPin, StorageSnapshot? AtRelease, StorageSnapshot? Peak, StorageSnapshot? WindowAfter)
{
    /// <summary>Back at ≥ 90 % of the baseline, this long after the release at the latest.</summary>
    public const double RecoveredShare = 0.9;

    public double LowestRatio => Baseline > 0 && Lowest is not null ? Lowest.TasksPerSecond / Baseline : 0;

    public bool RecoveredInWindow => RecoveredAfter is { } r && r <= Window;

    public static HorizonSummary Of(HorizonRun run, IReadOnlyList<HorizonRow> rows, TimeSpan window)
    {
        static double Rate(IEnumerable<HorizonRow> xs)
        {
            var list = xs.ToList();
            var seconds = list.Sum(x => x.Length.TotalSeconds);
            return seconds > 0 ? list.Sum(x => x.Completed) / seconds : 0;
        }
        var before = rows.Where(x => x.Phase == HorizonRow.Before).ToList();
        var pinned = rows.Where(x => x.Phase == HorizonRow.Pinned).ToList();
        var after = rows.Where(x => x.Phase == HorizonRow.After).ToList();
        var baseline = Rate(before);
        // An interval belongs to the window when most of it lies inside.
        var inWindow = after.Where(x => x.End - x.Length / 2 - run.ReleasedAt <= window).ToList();
        var back = after.FirstOrDefault(x => baseline > 0 && x.TasksPerSecond >= RecoveredShare * baseline);
        var withStorage = rows.Where(x => x.Storage is not null).ToList();
        return new HorizonSummary(run.Target, baseline, pinned.MinBy(x => x.TasksPerSecond), baseline > 0 ? Rate(inWindow) / baseline : 0,
            back is null ? null : back.End - run.ReleasedAt, window,
            before.LastOrDefault()?.Storage, pinned.LastOrDefault()?.Storage,
            // No dead tuples counted yet (a run shorter than the statistics' flush): the release stands for the peak.
            withStorage.Count > 0 && withStorage.Max(x => x.Storage!.DeadTuples) > 0 ? withStorage.MaxBy(x => x.Storage!.DeadTuples)!.Storage : pinned.LastOrDefault()?.Storage,
            after.MinBy(x => Math.Abs((x.End - run.ReleasedAt - window).TotalSeconds))?.Storage);
    }
}

public sealed class LoadResults
{
    /// <summary>Tasks/s figures (enqueue, cycle, burn-down): the main table.</summary>
    public List<ThroughputRow> Throughput { get; } = [];

    /// <summary>Heartbeats/s per store and caller count.</summary>
    public List<ThroughputRow> Heartbeats { get; } = [];

    /// <summary>Appended events/s per event log and mode (Target = the log's name).</summary>
    public List<ThroughputRow> Events { get; } = [];

    public List<SteadyRow> Steady { get; } = [];
    public List<ChurnRow> Churn { get; } = [];

    /// <summary>The pinned-horizon scenario's intervals, every target's in run order.</summary>
    public List<HorizonRow> Horizon { get; } = [];

    /// <summary>The pinned-horizon scenario's pins, one per target.</summary>
    public List<HorizonRun> HorizonRuns { get; } = [];

    /// <summary>Wall time of each scenario (all targets), in run order.</summary>
    public List<(string Scenario, TimeSpan Elapsed)> Timings { get; } = [];

    public List<string> Notes { get; } = [];

    /// <summary>The heartbeat table's Kafka row (KafkaHeartbeatBench), when the heartbeat scenario ran.</summary>
    public KafkaHeartbeatRow? KafkaHeartbeats { get; set; }
}

/// <summary>
/// Burn-down, steady state, churn and the per-operation loops, each with a fixed time budget and a live progress line.
/// Everything runs in this process against loopback services.
/// </summary>
public sealed class LoadRunner(Profile profile, IReadOnlyList<IBenchTarget> targets, IReadOnlyList<EventLogTarget> eventLogs, TextWriter output, ISet<string>? only = null)
{
    public static readonly string[] ScenarioNames = ["enqueue", "batch", "cycle", "burndown", "heartbeat", "events", "steady", "churn", "horizon"];

    // Scenario labels as they appear in the report.
    public const string EnqueueSingle1 = "enqueue single, 1 caller";
    public const string EnqueueSingle16 = "enqueue single, 16 callers";
    public const string EnqueueBatchArrays = "enqueue batch 100 (arrays/unnest)";
    public const string EnqueueBatchCopy = "enqueue batch 100 (binary COPY)";
    public static string Cycle1(int workers) => $"cycle lease 1 + complete by id, {Workers(workers)}";
    public static string CycleCompleteAndLease(int workers) => $"cycle complete-and-lease-next (1 call per task), {Workers(workers)}";
    public static string Cycle100(int workers) => $"cycle lease 100 + complete many, {Workers(workers)}";
    public const string BurnDownLoops = "burn-down: lease 100 + complete = ANY loops";
    public const string BurnDownRuntime = "burn-down: worker runtime, no-op handler";
    public const string BurnDownRuntimeCold = "burn-down: worker runtime, no-op handler, first in the process (JIT)";
    public const string BurnDownRuntimeSingle = "burn-down: worker runtime, one task per lease call";
    public static string Heartbeat(int callers) => $"heartbeat, {callers} caller{(callers == 1 ? "" : "s")}";
    public static string AppendOne(int inFlight) => $"append 1 event per call, {inFlight} in flight";
    public static string AppendBatch(int inFlight) => $"append 100 per call (10 tasks × 10 events), {inFlight} in flight";
    private static string Workers(int n) => $"{n} worker{(n == 1 ? "" : "s")}";

    private readonly LoadResults _results = new();
    private long _sequence;

    private bool Runs(string scenario) => only is null || only.Count == 0 || only.Contains(scenario);

    public async Task<LoadResults> RunAsync(CancellationToken cancellationToken)
    {
        (string Name, Func<CancellationToken, Task> Run)[] scenarios =
        [
            ("enqueue", EnqueueAsync), ("batch", BatchAsync), ("cycle", CycleAsync), ("burndown", BurnDownAsync),
            ("heartbeat", HeartbeatAsync), ("events", EventsAsync), ("steady", SteadyAsync), ("churn", ChurnAsync),
            ("horizon", HorizonAsync),
        ];
        foreach (var (name, run) in scenarios)
        {
            if (!Runs(name)) continue;
            var sw = Stopwatch.StartNew();
            await run(cancellationToken);
            _results.Timings.Add((name, sw.Elapsed));
            lock (output) output.WriteLine($"== {name}: {sw.Elapsed.TotalSeconds:0.0} s");
        }
        foreach (var t in targets) await t.ResetAsync(cancellationToken);
        return _results;
    }

    private string NewQueue(string scenario) => $"bench.{scenario}.{Guid.NewGuid().ToString("N")[..8]}";

    // ------------------------------------------------------------------------------------------- operations

    private async Task EnqueueAsync(CancellationToken ct)
    {
        foreach (var callers in new[] { 1, 16 })
        {
            foreach (var t in targets)
            {
                await t.ResetAsync(ct);
                var queue = NewQueue("enqueue");
                var label = callers == 1 ? EnqueueSingle1 : EnqueueSingle16;
                _results.Throughput.Add(await MeasureAsync(label, t.Name, callers, profile.OpBudget,
                    async (_, c) => { await t.EnqueueOneAsync(queue, Interlocked.Increment(ref _sequence), c); return 1; }, ct, wal: t.WalPositionAsync));
            }
        }
    }

    private async Task BatchAsync(CancellationToken ct)
    {
        foreach (var copy in new[] { false, true })
        {
            foreach (var t in targets)
            {
                if (copy && !t.SupportsCopy) continue;
                await t.ResetAsync(ct);
                var queue = NewQueue("batch");
                var label = copy ? EnqueueBatchCopy : EnqueueBatchArrays;
                _results.Throughput.Add(await MeasureAsync(label, t.Name, profile.BatchCallers, profile.OpBudget,
                    async (_, c) => { await t.EnqueueBatchAsync(queue, Interlocked.Add(ref _sequence, 100), 100, copy, c); return 100; }, ct, wal: t.WalPositionAsync));
            }
        }
    }

    /// <summary>Full cycles, single (lease 1 + complete by id) and batched (lease 100 + complete many), at each worker count.</summary>
    private async Task CycleAsync(CancellationToken ct)
    {
        foreach (var batch in new[] { 1, 100 })
        {
            foreach (var workers in profile.WorkerCounts)
            {
                foreach (var t in targets)
                {
                    await t.ResetAsync(ct);
                    var queue = NewQueue("cycle");
                    // Batched cycles consume far more per second: a bigger prefill keeps most of them from draining early.
                    var prefill = batch == 1 ? profile.Prefill : profile.Prefill * 2;
                    await PrefillAsync(t, queue, prefill, ct);
                    _results.Throughput.Add(await MeasureAsync(batch == 1 ? Cycle1(workers) : Cycle100(workers), t.Name, workers, profile.OpBudget,
                        (w, c) => t.CycleAsync(queue, "w" + w.ToString(CultureInfo.InvariantCulture), batch, c), ct,
                        drainedNote: prefill, wal: t.WalPositionAsync));
                    // The unbatched chained cycle right after its two-call counterpart, on the same target and worker count.
                    if (batch != 1 || !t.SupportsCompleteAndLease) continue;
                    await t.ResetAsync(ct);
                    var chained = NewQueue("cycle");
                    await PrefillAsync(t, chained, prefill, ct);
                    _results.Throughput.Add(await MeasureAsync(CycleCompleteAndLease(workers), t.Name, workers, profile.OpBudget,
                        (w, c) => t.CompleteAndLeaseCycleAsync(chained, "w" + w.ToString(CultureInfo.InvariantCulture), c), ct,
                        drainedNote: prefill, wal: t.WalPositionAsync));
                }
            }
        }
    }

    private async Task PrefillAsync(IBenchTarget t, string queue, int count, CancellationToken ct)
    {
        var next = 0L;
        await Task.WhenAll(Enumerable.Range(0, 4).Select(async _ =>
        {
            long start;
            while ((start = Interlocked.Add(ref next, 1000) - 1000) < count)
                await t.EnqueueBatchAsync(queue, start, (int)Math.Min(1000, count - start), t.SupportsCopy, ct);
        }));
        // Fresh rows: let a table-backed store's planner see them like a long-running queue would (autovacuum would
        // analyze too). Every target waits, so none needs telling apart.
        await Task.Delay(10, ct);
    }

    // ------------------------------------------------------------------------------------------- burn-down

    private async Task BurnDownAsync(CancellationToken ct)
    {
        var n = profile.BurnDownTasks;
        foreach (var t in targets)
        {
            await t.ResetAsync(ct);
            var queue = NewQueue("burn");
            await PrefillAsync(t, queue, n, ct);
            var cpu0 = ClientCpu();
            var row = await MeasureAsync(BurnDownLoops, t.Name, profile.BatchCallers, profile.BurnDownBudget,
                (w, c) => t.CycleAsync(queue, "w" + w.ToString(CultureInfo.InvariantCulture), 100, c), ct, warmUp: false, wal: t.WalPositionAsync);
            var cpu = CpuPerTask(cpu0, row.Tasks);
            _results.Throughput.Add(row with { Note = (row.Tasks < n ? $"budget ended at {row.Tasks}/{n}" : $"{n} drained") + cpu });
        }
        foreach (var t in targets)
        {
            if (t.Store is null) continue;
            // The first drain in the process pays the JIT for the runtime's code (on 2 cores, the tiering thread took
            // half the client's CPU in that drain): it is reported as the cold row, the warm one is the measure.
            await RuntimeBurnDownAsync(t, BurnDownRuntimeCold, profile.RuntimeConcurrency, 100, null, n, ct);
            await RuntimeBurnDownAsync(t, BurnDownRuntime, profile.RuntimeConcurrency, 100, null, n, ct);
            // One task per lease call (issue 15's "one job per fetch, 24 concurrent"): one call in flight, as before,
            // then the default several, in the same run.
            await RuntimeBurnDownAsync(t, BurnDownRuntimeSingle, 24, 1, 1, Math.Max(1, n / 3), ct);
            await RuntimeBurnDownAsync(t, BurnDownRuntimeSingle, 24, 1, null, Math.Max(1, n / 3), ct);
        }
    }

    // The benchmark process's CPU time (user + system), and the local servers' (every postgres or redis-server process
    // on this machine, from /proc): on a 2-core box the client competes with the server for the same cores.
    private static (TimeSpan Client, TimeSpan Server) ClientCpu() => (Process.GetCurrentProcess().TotalProcessorTime, LocalServerCpu());

    private static string CpuPerTask((TimeSpan Client, TimeSpan Server) since, long tasks)
    {
        var (client, server) = ClientCpu();
        var n = Math.Max(1, tasks);
        return string.Create(CultureInfo.InvariantCulture,
            $"; CPU µs/task: client {(client - since.Client).TotalMicroseconds / n:0.0}, local servers {(server - since.Server).TotalMicroseconds / n:0.0}");
    }

    private static TimeSpan LocalServerCpu()
    {
        if (!OperatingSystem.IsLinux()) return TimeSpan.Zero;
        long ticks = 0;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var open = stat.IndexOf('(');
                var close = stat.LastIndexOf(')');
                if (open < 0 || close < open) continue;
                var comm = stat[(open + 1)..close];
                if (comm is not ("postgres" or "redis-server")) continue;
                // Fields after the name: state is field 3, utime and stime are fields 14 and 15 (proc(5)).
                var fields = stat[(close + 2)..].Split(' ');
                ticks += long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
        return TimeSpan.FromSeconds(ticks / 100.0); // USER_HZ is 100 on Linux
    }

    private async Task RuntimeBurnDownAsync(IBenchTarget t, string scenario, int concurrency, int maxBatch, int? leaseCallsInFlight, int n, CancellationToken ct)
    {
        await t.ResetAsync(ct);
        var queue = NewQueue("burnrt");
        await PrefillAsync(t, queue, n, ct);
        var alloc0 = GC.GetTotalAllocatedBytes(true);
        var cpu0 = ClientCpu();
        var sw = Stopwatch.StartNew();
        var harness = await RuntimeHarness.StartAsync(t.Store!, queue, concurrency, maxBatch, push: true, ct, leaseCallsInFlight: leaseCallsInFlight);
        await using (harness)
        {
            using var progress = Progress.Start(output, $"{scenario} [{t.Name}]",
                () => $"{harness.Store.Completed}/{n} done, {harness.Store.Completed / Math.Max(0.001, sw.Elapsed.TotalSeconds):0} tasks/s, {sw.Elapsed.TotalSeconds:0.0}/{profile.BurnDownBudget.TotalSeconds:0} s");
            while (harness.Store.Completed < n && sw.Elapsed < profile.BurnDownBudget) await Task.Delay(5, ct);
            var elapsed = sw.Elapsed;
            var done = harness.Store.Completed;
            var alloc = (GC.GetTotalAllocatedBytes(true) - alloc0) / (double)Math.Max(1, done);
            var calls = leaseCallsInFlight is { } k ? $", {k} lease call(s) in flight" : ", lease calls in flight: default";
            // How the runtime batched (issue 15: its batched drain trails the raw lease-100 loops): mean tasks per call.
            var (leaseCalls, leased) = harness.Store.Leases;
            calls += string.Create(CultureInfo.InvariantCulture,
                $"; per lease call {leased / (double)Math.Max(1, leaseCalls):0.#} tasks, per completion call {done / (double)Math.Max(1, harness.Store.CompleteCalls):0.#}") + CpuPerTask(cpu0, done);
            _results.Throughput.Add(new ThroughputRow(scenario, t.Name, done, elapsed, alloc, LatencyPercentiles.None,
                (done < n ? $"budget ended at {done}/{n}" : $"{n} drained") + $", concurrency {concurrency}, batch {maxBatch}{calls}"));
        }
    }

    // ------------------------------------------------------------------------------------------- heartbeat

    /// <summary>
    /// Heartbeats/s on held leases: each caller extends its own leases in turn (the store's HeartbeatAsync; raw-sql:
    /// the seed's UPDATE … SET lease_expires_at; raw-redis: XCLAIM … JUSTID). The Kafka channel's row is measured by KafkaHeartbeatBench.
    /// </summary>
    private async Task HeartbeatAsync(CancellationToken ct)
    {
        foreach (var callers in profile.HeartbeatCallers)
        {
            foreach (var t in targets)
            {
                await t.ResetAsync(ct);
                var queue = NewQueue("beat");
                var count = callers * profile.HeartbeatLeases;
                await PrefillAsync(t, queue, count, ct);
                var leases = await t.LeaseForHeartbeatsAsync(queue, "beater", count, ct);
                if (leases.Count < count) throw new InvalidOperationException($"{t.Name}: leased {leases.Count} of {count} tasks for the heartbeat scenario");
                var turns = new int[callers];
                _results.Heartbeats.Add(await MeasureAsync(Heartbeat(callers), t.Name, callers, profile.OpBudget, async (c, token) =>
                {
                    // Caller c owns leases c, c + callers, c + 2·callers, …
                    var turn = turns[c]++ % profile.HeartbeatLeases;
                    await leases.BeatAsync(c + turn * callers, token);
                    return 1;
                }, ct, wal: t.WalPositionAsync));
            }
        }
    }

    // ------------------------------------------------------------------------------------------- event append

    /// <summary>Appended events/s of each event log: one event per call (1 and N in flight) and 100 per call.</summary>
    private async Task EventsAsync(CancellationToken ct)
    {
        (string Label, int PerCall, int InFlight)[] modes =
        [
            (AppendOne(1), 1, 1), (AppendOne(profile.EventsInFlight), 1, profile.EventsInFlight),
            (AppendBatch(1), 100, 1), (AppendBatch(profile.BatchCallers), 100, profile.BatchCallers),
        ];
        foreach (var (label, perCall, inFlight) in modes)
        {
            foreach (var log in eventLogs)
            {
                await log.ResetAsync();
                var queue = NewQueue("events");
                _results.Events.Add(await MeasureAsync(label, log.Name, inFlight, profile.OpBudget, async (_, c) =>
                {
                    await log.Log.AppendAsync(NewEvents(queue, perCall), c);
                    return perCall;
                }, ct, wal: log.WalPositionAsync));
            }
        }
    }

    /// <summary>
    /// <paramref name="count"/> events of one queue, ten per task (a task's history: enqueued, leased, heartbeats,
    /// completed …), as the event recorder hands them to the log.
    /// </summary>
    private static TaskEvent[] NewEvents(string queue, int count)
    {
        var events = new TaskEvent[count];
        var now = DateTimeOffset.UtcNow;
        var task = Guid.NewGuid();
        for (var i = 0; i < count; i++)
        {
            if (i % 10 == 0 && i > 0) task = Guid.NewGuid();
            events[i] = TaskEvent.Create((TaskEventKind)(i % 10), task, queue, now) with { Attempt = 1, LeaseToken = 1, WorkerId = "bench-worker" };
        }
        return events;
    }

    // ------------------------------------------------------------------------------------------- steady state

    private async Task SteadyAsync(CancellationToken ct)
    {
        foreach (var t in targets)
        {
            // A raw baseline's floor: the idle pickup without the library, for the stores' ratio in this run.
            if (t.PickupFloor is { } floor)
                _results.Steady.Add(await SteadyFloorAsync(t, floor, ct));
            if (t.Store is null) continue;
            foreach (var push in t.Store.Capabilities.PushWakeUp ? new[] { true, false } : [false])
            {
                _results.Steady.Add(await SteadyOnceAsync(t, "idle", profile.IdleRate, profile.IdleBudget, push, ct));
                _results.Steady.Add(await SteadyOnceAsync(t, "loaded", profile.SteadyRate, profile.SteadyBudget, push, ct));
            }
        }
    }

    private async Task<SteadyRow> SteadyOnceAsync(IBenchTarget t, string load, int rate, TimeSpan budget, bool push, CancellationToken ct)
    {
        await t.ResetAsync(ct);
        var store = t.Store!;
        var queue = NewQueue("steady");
        var harness = await RuntimeHarness.StartAsync(store, queue, Math.Min(64, profile.RuntimeConcurrency), 100, push, ct);
        await using (harness)
        {
            return await SteadyRunAsync(t.Name, load, rate, budget, push, harness.Probe,
                c => store.EnqueueAsync(new EnqueueRequest(queue, RuntimeProbe.TimestampPayload()), c),
                harness.Store.ResetLatency, () => harness.Store.LeaseLatency, ct);
        }
    }

    /// <summary>The idle row of a raw baseline's pickup floor: same rate, budget and producers as the stores' idle rows.</summary>
    private async Task<SteadyRow> SteadyFloorAsync(IBenchTarget t, IPickupFloor floor, CancellationToken ct)
    {
        await t.ResetAsync(ct);
        var queue = NewQueue("steady");
        var probe = new RuntimeProbe();
        var consumer = await floor.StartConsumerAsync(queue, probe, ct);
        await using (consumer)
        {
            return await SteadyRunAsync(t.Name, "idle", profile.IdleRate, profile.IdleBudget, push: true, probe,
                c => floor.EnqueueTimestampedAsync(queue, c), floor.ResetLeaseLatency, () => floor.LeaseLatency, ct);
        }
    }

    /// <summary>
    /// Producers at <paramref name="rate"/> for <paramref name="budget"/> against a running consumer (the runtime, or a
    /// raw baseline's) that reports each start to <paramref name="probe"/>.
    /// </summary>
    private async Task<SteadyRow> SteadyRunAsync(string target, string load, int rate, TimeSpan budget, bool push, RuntimeProbe probe,
        Func<CancellationToken, Task> enqueue, Action resetLeaseLatency, Func<LatencyHistogram> leaseLatency, CancellationToken ct)
    {
        // Warm-up: JIT, pool, LISTEN connection; then measure from a clean recorder.
        for (var i = 0; i < 10; i++) await enqueue(ct);
        var warm = Stopwatch.StartNew();
        while (probe.Started < 10 && warm.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(5, ct);
        probe.ResetLatency();
        resetLeaseLatency();
        var enqueueLatency = new LatencyHistogram();
        var startedBefore = probe.Started;

        // Enough producers that each waits ≥ 20 ms between its enqueues: the rate holds even when one enqueue takes
        // a few milliseconds (a commit on a busy 2-core box), so a falling-behind backlog is the consumers', not ours.
        var producers = Math.Clamp(rate / 50, 4, 32);
        long produced = 0;
        var samples = new List<long>();
        var sw = Stopwatch.StartNew();
        using var progress = Progress.Start(output, $"steady {load} {rate}/s push {(push ? "on" : "off")} [{target}]",
            () => $"{Interlocked.Read(ref produced)} produced, backlog {Interlocked.Read(ref produced) - (probe.Started - startedBefore)}, p50 {probe.PickupLatency.PercentileMs(50):0.00} ms, {sw.Elapsed.TotalSeconds:0.0}/{budget.TotalSeconds:0} s");
        var interval = TimeSpan.FromSeconds(producers / (double)rate);
        var producing = Enumerable.Range(0, producers).Select(async p =>
        {
            var due = TimeSpan.FromSeconds(p / (double)rate);
            while (due < budget)
            {
                var wait = due - sw.Elapsed;
                if (wait > TimeSpan.FromMilliseconds(1)) await Task.Delay(wait, ct);
                var call = Stopwatch.GetTimestamp();
                await enqueue(ct);
                enqueueLatency.RecordSince(call);
                Interlocked.Increment(ref produced);
                due += interval;
            }
        }).ToArray();
        var sampling = Task.Run(async () =>
        {
            while (!producing.All(p => p.IsCompleted))
            {
                // A handler can start before its producer counts the enqueue as done: never below zero.
                lock (samples) samples.Add(Math.Max(0, Interlocked.Read(ref produced) - (probe.Started - startedBefore)));
                await Task.Delay(100, ct);
            }
        }, ct);
        await Task.WhenAll(producing);
        await sampling;
        var elapsed = sw.Elapsed;
        // Let in-flight tasks start (bounded) so their latency counts too.
        var drain = Stopwatch.StartNew();
        while (probe.Started - startedBefore < produced && drain.Elapsed < TimeSpan.FromSeconds(5)) await Task.Delay(5, ct);
        var lat = probe.PickupLatency;
        long first = 0, last = 0, max = 0;
        lock (samples)
        {
            if (samples.Count > 0)
            {
                var third = Math.Max(1, samples.Count / 3);
                first = (long)samples.Take(third).Average();
                last = (long)samples.Skip(samples.Count - third).Average();
                max = samples.Max();
            }
        }
        var flat = last <= first + Math.Max(10, rate / 20);
        return new SteadyRow(target, load, push, rate, produced / elapsed.TotalSeconds, produced, probe.Started - startedBefore,
            lat.Percentiles(), lat.Curve(), first, last, max, flat, enqueueLatency.PercentileMs(50), leaseLatency().PercentileMs(50));
    }

    // ------------------------------------------------------------------------------------------- churn

    /// <summary>The churn run's <c>Konduit:PurgeFinishedAfter</c> (the report quotes it).</summary>
    public static readonly TimeSpan ChurnPurgeAfter = TimeSpan.FromSeconds(5);

    private async Task ChurnAsync(CancellationToken ct)
    {
        foreach (var t in targets)
        {
            if (t.Store is null || !t.MeasuresStorage) continue; // churn is about table bloat
            await t.ResetAsync(ct);
            var queue = NewQueue("churn");
            var load = await ChurnLoad.StartAsync(t, queue, profile, profile.ChurnBacklogCap, ct);
            await using (load)
            {
                var sw = Stopwatch.StartNew();
                using var progress = Progress.Start(output, $"churn [{t.Name}]",
                    () => $"{load.Completed} done, backlog {load.Backlog}, {sw.Elapsed.TotalSeconds:0}/{profile.ChurnBudget.TotalSeconds:0} s");
                var intervals = Math.Max(1, (int)Math.Round(profile.ChurnBudget / profile.ChurnInterval));
                var lastCompleted = 0L;
                var lastEnd = TimeSpan.Zero;
                for (var interval = 1; interval <= intervals; interval++)
                {
                    var wait = profile.ChurnInterval * interval - sw.Elapsed;
                    if (wait > TimeSpan.Zero) await Task.Delay(wait, ct);
                    var completed = load.Completed;
                    var end = sw.Elapsed;
                    var bytes = await t.RelationBytesAsync(ct);
                    var storage = await t.StorageAsync(ct);
                    _results.Churn.Add(new ChurnRow(t.Name, interval, end, completed - lastCompleted,
                        (completed - lastCompleted) / (end - lastEnd).TotalMinutes, bytes, storage));
                    (lastCompleted, lastEnd) = (completed, end);
                }
            }
        }
    }

    // ------------------------------------------------------------------------------------------- pinned horizon

    /// <summary>
    /// Churn through a PostgreSQL-backed target while another connection holds an xid (a long transaction, a stuck
    /// replication slot's or a forgotten session's xmin does the same): no row version deleted meanwhile can be
    /// vacuumed, so dead tuples and index entries pile up. Throughput and every table's and index's size are sampled per
    /// interval before, during and after the pin; the summary is the recovery after its commit, as ratios to the
    /// baseline before it.
    /// </summary>
    private async Task HorizonAsync(CancellationToken ct)
    {
        foreach (var t in targets)
        {
            if (!t.CanPinHorizon) continue;
            await t.ResetAsync(ct);
            var queue = NewQueue("horizon");
            var load = await ChurnLoad.StartAsync(t, queue, profile, profile.ChurnBacklogCap, ct);
            await using (load)
            {
                var sw = Stopwatch.StartNew();
                var phase = "warm-up";
                var total = profile.HorizonWarmUp + profile.HorizonBefore + profile.HorizonPinned + profile.HorizonAfter;
                using var progress = Progress.Start(output, $"horizon [{t.Name}]",
                    () => $"{phase}, {load.Completed} done, backlog {load.Backlog}, {sw.Elapsed.TotalSeconds:0}/{total.TotalSeconds:0} s");
                if (profile.HorizonWarmUp > TimeSpan.Zero) await Task.Delay(profile.HorizonWarmUp, ct);
                var origin = sw.Elapsed;
                var (lastCompleted, lastEnd) = (load.Completed, origin);
                var due = origin;
                var interval = 0;
                HorizonPin? pin = null;
                long xid = 0, xidAge = 0;
                TimeSpan pinnedAt = TimeSpan.Zero, releasedAt = TimeSpan.Zero;
                try
                {
                    foreach (var (name, length) in new[] { (HorizonRow.Before, profile.HorizonBefore), (HorizonRow.Pinned, profile.HorizonPinned), (HorizonRow.After, profile.HorizonAfter) })
                    {
                        if (name == HorizonRow.Pinned)
                        {
                            pin = await t.PinHorizonAsync(ct) ?? throw new InvalidOperationException($"{t.Name}: no horizon pin");
                            (xid, pinnedAt) = (pin.Xid, sw.Elapsed - origin);
                        }
                        else if (pin is not null)
                        {
                            xidAge = await pin.AgeAsync(ct);
                            await pin.DisposeAsync();
                            pin = null;
                            releasedAt = sw.Elapsed - origin;
                        }
                        phase = name;
                        var count = Math.Max(1, (int)Math.Round(length / profile.HorizonInterval));
                        for (var i = 0; i < count; i++)
                        {
                            due += profile.HorizonInterval;
                            var wait = due - sw.Elapsed;
                            if (wait > TimeSpan.Zero) await Task.Delay(wait, ct);
                            var completed = load.Completed;
                            var end = sw.Elapsed;
                            var storage = await t.StorageAsync(ct);
                            _results.Horizon.Add(new HorizonRow(t.Name, name, ++interval, end - origin, end - lastEnd, completed - lastCompleted, storage));
                            (lastCompleted, lastEnd) = (completed, end);
                        }
                    }
                }
                finally
                {
                    if (pin is not null) await pin.DisposeAsync();
                }
                _results.HorizonRuns.Add(new HorizonRun(t.Name, xid, pinnedAt, releasedAt, xidAge, load.Driver));
            }
        }
    }

    /// <summary>
    /// The churn and horizon scenarios' load: closed-loop producers (batches of 100) keep the backlog under a cap while
    /// consumers drain it, so the consumers set the pace. A store is drained by the worker runtime, which purges finished
    /// tasks once <see cref="ChurnPurgeAfter"/> old, as a deployment would run it; a raw baseline by its lease-100 +
    /// complete loops (its finished rows stay in its table: it has no purge).
    /// </summary>
    private sealed class ChurnLoad : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop;
        private readonly Func<long> _completed;
        private readonly Task[] _loops;
        private readonly RuntimeHarness? _harness;
        private readonly StrongBox<long> _produced;

        private ChurnLoad(CancellationTokenSource stop, Func<long> completed, Task[] loops, RuntimeHarness? harness, StrongBox<long> produced, string driver)
        {
            _stop = stop;
            _completed = completed;
            _loops = loops;
            _harness = harness;
            _produced = produced;
            Driver = driver;
        }

        public long Completed => _completed();
        public long Backlog => Interlocked.Read(ref _produced.Value) - Completed;

        /// <summary>What drains the queue, for the report.</summary>
        public string Driver { get; }

        public static async Task<ChurnLoad> StartAsync(IBenchTarget t, string queue, Profile profile, int backlogCap, CancellationToken ct)
        {
            var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var produced = new StrongBox<long>();
            RuntimeHarness? harness = null;
            Func<long> completed;
            Func<CancellationToken, Task> enqueue100;
            var loops = new List<Task>();
            string driver;
            if (t.Store is { } store)
            {
                harness = await RuntimeHarness.StartAsync(store, queue, profile.RuntimeConcurrency, 100, push: true, ct, ChurnPurgeAfter);
                completed = () => harness.Store.Completed;
                enqueue100 = c =>
                {
                    var batch = new EnqueueRequest[100];
                    for (var i = 0; i < batch.Length; i++) batch[i] = new EnqueueRequest(queue, RuntimeProbe.TimestampPayload());
                    return store.EnqueueManyAsync(batch, c);
                };
                driver = $"worker runtime, concurrency {profile.RuntimeConcurrency}, lease batch 100, finished tasks purged once {ChurnPurgeAfter.TotalSeconds:0} s old";
            }
            else
            {
                var done = new StrongBox<long>();
                completed = () => Interlocked.Read(ref done.Value);
                var sequence = 0L;
                enqueue100 = c => t.EnqueueBatchAsync(queue, Interlocked.Add(ref sequence, 100), 100, copy: false, c);
                loops.AddRange(Enumerable.Range(0, profile.BatchCallers).Select(w => Task.Run(async () =>
                {
                    var worker = "w" + w.ToString(CultureInfo.InvariantCulture);
                    while (!stop.IsCancellationRequested)
                    {
                        try
                        {
                            var n = await t.CycleAsync(queue, worker, 100, stop.Token);
                            if (n == 0) await Task.Delay(2, stop.Token);
                            Interlocked.Add(ref done.Value, n);
                        }
                        catch (OperationCanceledException) when (stop.IsCancellationRequested) { break; }
                    }
                })));
                driver = $"{profile.BatchCallers} lease-100 + complete loops, finished rows kept (no purge)";
            }
            loops.AddRange(Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    if (Interlocked.Read(ref produced.Value) - completed() >= backlogCap)
                    {
                        await Task.Delay(2, CancellationToken.None);
                        continue;
                    }
                    try { await enqueue100(stop.Token); }
                    catch (OperationCanceledException) when (stop.IsCancellationRequested) { break; }
                    Interlocked.Add(ref produced.Value, 100);
                }
            })));
            return new ChurnLoad(stop, completed, [.. loops], harness, produced, driver);
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            try
            {
                await Task.WhenAll(_loops);
            }
            finally
            {
                if (_harness is not null) await _harness.DisposeAsync();
                _stop.Dispose();
            }
        }
    }

    // ------------------------------------------------------------------------------------------- measuring

    /// <summary>
    /// Runs <paramref name="callers"/> loops of <paramref name="op"/> until the budget is spent (or an op returns 0:
    /// nothing left), counting tasks, call latency and process-wide allocations per task.
    /// </summary>
    private async Task<ThroughputRow> MeasureAsync(string scenario, string target, int callers, TimeSpan budget,
        Func<int, CancellationToken, Task<int>> op, CancellationToken ct, int? drainedNote = null, bool warmUp = true,
        Func<CancellationToken, Task<long?>>? wal = null)
    {
        var latency = new LatencyHistogram();
        long tasks = 0;
        var drained = false;
        // One untimed call first: connection pool, prepared statements, JIT.
        if (warmUp) await op(0, ct);
        var wal0 = wal is null ? null : await wal(ct);
        var alloc0 = GC.GetTotalAllocatedBytes(true);
        var sw = Stopwatch.StartNew();
        using (Progress.Start(output, $"{scenario} [{target}]",
            () => $"{Interlocked.Read(ref tasks)} tasks, {Interlocked.Read(ref tasks) / Math.Max(0.001, sw.Elapsed.TotalSeconds):0} tasks/s, {sw.Elapsed.TotalSeconds:0.0}/{budget.TotalSeconds:0.#} s"))
        {
            await Task.WhenAll(Enumerable.Range(0, callers).Select(c => Task.Run(async () =>
            {
                while (sw.Elapsed < budget)
                {
                    var t0 = Stopwatch.GetTimestamp();
                    var n = await op(c, ct);
                    latency.RecordSince(t0);
                    if (n == 0)
                    {
                        drained = true;
                        break;
                    }
                    Interlocked.Add(ref tasks, n);
                }
            }, ct)));
        }
        var elapsed = sw.Elapsed;
        var alloc = (GC.GetTotalAllocatedBytes(true) - alloc0) / (double)Math.Max(1, tasks);
        double? walPerTask = wal0 is { } w0 && await wal!(ct) is { } w1 ? (w1 - w0) / (double)Math.Max(1, tasks) : null;
        var note = drained && drainedNote is { } prefill ? $"queue drained ({prefill} prefilled)" : null;
        return new ThroughputRow(scenario, target, tasks, elapsed, alloc, latency.Percentiles(), note, walPerTask);
    }
}

/// <summary>A live progress line: rewritten in place on a terminal, one line every few seconds otherwise.</summary>
internal sealed class Progress : IDisposable
{
    private readonly TextWriter _output;
    private readonly string _label;
    private readonly Func<string> _status;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly bool _live;

    private Progress(TextWriter output, string label, Func<string> status)
    {
        _output = output;
        _label = label;
        _status = status;
        _live = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;
        _loop = Task.Run(LoopAsync);
    }

    public static Progress Start(TextWriter output, string label, Func<string> status) => new(output, label, status);

    private async Task LoopAsync()
    {
        var period = _live ? TimeSpan.FromMilliseconds(250) : TimeSpan.FromSeconds(5);
        try
        {
            while (true)
            {
                await Task.Delay(period, _stop.Token);
                Write(final: false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void Write(bool final)
    {
        var line = $"  {_label}: {_status()}";
        lock (_output)
        {
            if (_live) _output.Write("\r" + line.PadRight(Math.Min(160, Math.Max(100, line.Length))) + (final ? "\n" : ""));
            else if (final) _output.WriteLine(line);
            else _output.WriteLine(line + " …");
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _loop.Wait();
        Write(final: true);
        _stop.Dispose();
    }
}
