using System.Diagnostics;
using System.Globalization;
using Konduit.Chaos.Tests.Servers;

namespace Konduit.Chaos.Tests;

/// <summary>What a fault can reach: the fleet, the servers, the proxies, the producer.</summary>
internal sealed class FaultContext(ChaosTarget target, WorkerFleet fleet, ChaosProducer producer, ChaosProfile profile,
    ChaosProxy? postgresProxy, ChaosProxy? redisProxy, Action<string> log)
{
    public ChaosTarget Target { get; } = target;
    public WorkerFleet Fleet { get; } = fleet;
    public ChaosProducer Producer { get; } = producer;
    public ChaosProfile Profile { get; } = profile;
    public ChaosProxy? PostgresProxy { get; } = postgresProxy;
    public ChaosProxy? RedisProxy { get; } = redisProxy;
    public Random Random { get; } = new(13);

    public void Log(string line) => log(line);

    /// <summary>A bounded fault schedule: run <paramref name="step"/> until <paramref name="duration"/> has passed, each returning the faults it applied.</summary>
    public async Task<int> RepeatForAsync(TimeSpan duration, Func<CancellationToken, Task<int>> step, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var faults = 0;
        while (clock.Elapsed < duration)
            faults += await step(cancellationToken);
        return faults;
    }

    /// <summary>A random delay in [min, max] seconds: the schedule of a fault, not a wait for a condition.</summary>
    public Task PauseAsync(double minSeconds, double maxSeconds, CancellationToken cancellationToken) =>
        Task.Delay(TimeSpan.FromSeconds(minSeconds + Random.NextDouble() * (maxSeconds - minSeconds)), cancellationToken);
}

/// <summary>A named fault: applies itself for about the profile's fault time and returns how many faults it applied.</summary>
internal sealed record ChaosScenario(string Name, Func<FaultContext, CancellationToken, Task<int>> Apply, bool ThroughProxy = false);

internal sealed record ChaosResult(
    string Scenario, string Store, ServerCounts Counts, int Faults, int Kills, int EnqueueErrors, RateAnalysis Rates,
    TimeSpan RecoveryDeadline, TimeSpan Duration);

/// <summary>
/// One scenario against one store: start K worker processes, keep a backlog, measure the completion rate before the
/// fault, apply the fault, wait (bounded) for the rate to recover, drain, then read every count from the server.
/// </summary>
internal static class ChaosRun
{
    public static async Task<ChaosResult> RunAsync(ChaosTarget target, ChaosScenario scenario, ChaosProfile profile, Action<string> log, string logDirectory, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var phases = new PhaseClock(clock);
        await target.SetUpAsync(cancellationToken);
        phases.Mark("setup");
        var redis = target.Redis;
        await using var postgresProxy = scenario.ThroughProxy ? ChaosServers.StartPostgresProxy(target.Postgres.Port) : null;
        await using var redisProxy = scenario.ThroughProxy && redis is not null ? ChaosServers.StartRedisProxy(redis.Port) : null;
        var arguments = target.StoreArguments(postgresProxy?.Port ?? target.Postgres.Port, redisProxy?.Port ?? redis?.Port ?? 0)
            .Concat(WorkerArguments(target, profile))
            .ToArray();
        var logPath = Path.Combine(logDirectory, $"chaos-{scenario.Name}-{target.StoreName}.workers.log");
        await using var fleet = new WorkerFleet(profile.Workers, arguments, logPath);
        await using var producer = new ChaosProducer(target, backlog: (long)Math.Max(200, profile.NominalDrainRate * 1.5));
        log($"{scenario.Name}/{target.StoreName}: schema {target.Schema}, worker log {logPath}");

        await fleet.StartAllAsync(cancellationToken);
        phases.Mark("workers");
        producer.Start();
        // Warm up (JIT, pools) until completions flow, then measure the rate before the fault.
        await Await.UntilAsync(async ct => (await target.FinishedTimesAsync(ct)).Count > 0, TimeSpan.FromSeconds(60), "the first completion", cancellationToken);
        phases.Mark("first completion");
        // Then until the rate is steady (two consecutive complete seconds within 30 % of each other), so that the
        // window before the fault measures the fleet at work, not its start-up; bounded, a starved machine may never settle.
        var steady = await Await.TryUntilAsync(async ct =>
        {
            var times = await target.FinishedTimesAsync(ct);
            var now = DateTimeOffset.UtcNow - TimeSpan.FromMilliseconds(500);
            var last = RateAnalysis.RecentRate(times, now, TimeSpan.FromSeconds(1));
            var previous = RateAnalysis.RecentRate(times, now - TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
            return last > 0 && previous > 0 && Math.Min(last, previous) / Math.Max(last, previous) >= 0.7;
        }, TimeSpan.FromSeconds(30), cancellationToken);
        if (!steady) log($"{scenario.Name}/{target.StoreName}: the completion rate did not settle within 30 s");
        phases.Mark("steady");
        await Task.Delay(profile.Before, cancellationToken);
        phases.Mark("before");

        var context = new FaultContext(target, fleet, producer, profile, postgresProxy, redisProxy, log);
        var faultStart = DateTimeOffset.UtcNow;
        // The rate before the fault is read now: a fault may take the rows with it (Redis wiped). The window ends
        // half a second back, so completions still being committed at this instant cannot shorten it.
        var beforeEnd = faultStart - TimeSpan.FromMilliseconds(500);
        var beforeRate = RateAnalysis.RecentRate(await target.FinishedTimesAsync(cancellationToken), beforeEnd, profile.Before);
        log($"{scenario.Name}/{target.StoreName}: fault starts after {producer.Acknowledged} acknowledged enqueues");
        var faults = await scenario.Apply(context, cancellationToken);
        producer.Offer(0);
        var faultEnd = DateTimeOffset.UtcNow;
        phases.Mark("fault");
        log($"{scenario.Name}/{target.StoreName}: fault over ({faults} faults, {fleet.Kills} kills, {(faultEnd - faultStart).TotalSeconds:0.0} s)");

        // Recovery: poll the server's finish times until a window reaches the ratio, or the deadline passes. Scenarios
        // with kills also go on until the run has covered the minimum task count.
        var rates = new RateAnalysis(beforeRate, null, null, 0);
        var recoveryLimit = faultEnd + profile.RecoveryDeadline + profile.Window + TimeSpan.FromSeconds(1);
        while (DateTimeOffset.UtcNow < recoveryLimit)
        {
            try
            {
                var times = await target.FinishedTimesAsync(cancellationToken);
                rates = RateAnalysis.Analyze(times, beforeRate, faultEnd, profile.Window, DateTimeOffset.UtcNow - TimeSpan.FromMilliseconds(500));
                if (rates.Recovered && (fleet.Kills == 0 || producer.Acknowledged >= profile.MinimumTasksForKills)) break;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                log($"  reading finish times failed: {ex.GetType().Name}: {ex.Message}");
            }
            await Task.Delay(500, cancellationToken);
        }
        phases.Mark("recovery");
        if (fleet.Kills > 0)
        {
            // "K worker processes over ≥ N tasks": keep the backlog up until the run has covered them.
            await Await.TryUntilAsync(_ => Task.FromResult(producer.Acknowledged >= profile.MinimumTasksForKills), profile.DrainDeadline, cancellationToken);
        }
        phases.Mark("minimum tasks");
        await producer.StopAsync();

        // Drain: every acknowledged task must reach a final state while the workers still run (nothing stuck Running).
        var drained = await Await.TryUntilAsync(async ct => await target.BacklogAsync(ct) == 0, profile.DrainDeadline, cancellationToken);
        if (!drained) log($"{scenario.Name}/{target.StoreName}: backlog not drained within {profile.DrainDeadline.TotalSeconds:0} s");
        phases.Mark("drain");
        var counts = await target.CountAsync(producer.AcknowledgedIds, cancellationToken);
        var final = await target.FinishedTimesAsync(cancellationToken);
        var analysis = RateAnalysis.Analyze(final, beforeRate, faultEnd, profile.Window, faultEnd + profile.RecoveryDeadline + profile.Window);
        // The final read sees every completion of the recovery period; it can only confirm or improve the live verdict.
        if (!analysis.Recovered && rates.Recovered) analysis = rates;
        phases.Mark("count");
        log($"{scenario.Name}/{target.StoreName}: phases {phases}");
        return new ChaosResult(scenario.Name, target.StoreName, counts, faults, fleet.Kills, producer.Errors, analysis, profile.RecoveryDeadline, clock.Elapsed);
    }

    private static IEnumerable<string> WorkerArguments(ChaosTarget target, ChaosProfile profile)
    {
        var q = $"--Konduit:Queues:{target.Queue}";
        string S(TimeSpan t) => t.ToString("c", CultureInfo.InvariantCulture);
        return
        [
            $"{q}:Concurrency={profile.Concurrency}",
            $"{q}:LeaseSeconds={ChaosProfile.Lease.TotalSeconds.ToString(CultureInfo.InvariantCulture)}",
            $"{q}:MaxAttempts=100",
            $"{q}:PollInterval={S(TimeSpan.FromMilliseconds(50))}",
            $"{q}:MaxPollInterval={S(TimeSpan.FromMilliseconds(250))}",
            $"{q}:Retry:InitialDelay={S(TimeSpan.FromMilliseconds(100))}",
            $"{q}:Retry:MaxDelay={S(TimeSpan.FromSeconds(1))}",
            // Expired leases come back within about a second of expiring, so recovery is bounded by the lease.
            $"--Konduit:SweepInterval={S(TimeSpan.FromSeconds(1))}",
            $"--Konduit:ShutdownGracePeriod={S(TimeSpan.FromSeconds(2))}",
            $"--Chaos:Queue={target.Queue}",
            $"--Chaos:EffectsConnectionString={target.EffectsConnectionString}",
            $"--Chaos:EffectsTable={target.EffectsSchema}.effects",
            $"--Chaos:WorkMilliseconds={profile.Work.TotalMilliseconds.ToString(CultureInfo.InvariantCulture)}",
        ];
    }
}

/// <summary>Where a run's wall time went, phase by phase (the log line CI time is tuned from).</summary>
internal sealed class PhaseClock(Stopwatch clock)
{
    private readonly List<(string Phase, TimeSpan Took)> _phases = [];
    private TimeSpan _last = clock.Elapsed;

    public void Mark(string phase)
    {
        var now = clock.Elapsed;
        _phases.Add((phase, now - _last));
        _last = now;
    }

    public override string ToString() =>
        string.Join(", ", _phases.Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Phase} {p.Took.TotalSeconds:0.0} s")));
}

/// <summary>Bounded polling for a server-side condition (no fixed sleeps where a condition can be awaited).</summary>
internal static class Await
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(100);

    public static async Task UntilAsync(Func<CancellationToken, Task<bool>> condition, TimeSpan timeout, string what, CancellationToken cancellationToken)
    {
        if (!await TryUntilAsync(condition, timeout, cancellationToken))
            throw new TimeoutException($"timed out after {timeout.TotalSeconds:0} s waiting for {what}");
    }

    public static async Task<bool> TryUntilAsync(Func<CancellationToken, Task<bool>> condition, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            try
            {
                if (await condition(cancellationToken)) return true;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // The server may still be coming back; the deadline bounds the wait.
            }
            await Task.Delay(Poll, cancellationToken);
        }
        return false;
    }
}
