namespace Konduit.Benchmarks;

/// <summary>How long and how big each load scenario runs. Every loop is bounded by these numbers.</summary>
/// <param name="OpBudget">Each per-operation loop (enqueue, batch, cycle, heartbeat, event append): one target, one setting.</param>
/// <param name="Prefill">Tasks put in the queue before each cycle loop (a loop that drains them ends early and says so).</param>
/// <param name="BatchCallers">Concurrent callers of the batch enqueue, the burn-down loops and the batched event appends.</param>
/// <param name="WorkerCounts">Worker counts of the single and batched full cycle.</param>
/// <param name="HeartbeatCallers">Concurrent heartbeat callers (each beats its own leases in turn).</param>
/// <param name="HeartbeatLeases">Leases held per heartbeat caller.</param>
/// <param name="EventsInFlight">Concurrent unbatched appends (the "N in flight" of the event scenario).</param>
/// <param name="HorizonWarmUp">Pinned-horizon scenario: churn before the first measured interval (JIT, pools, the first autovacuum passes).</param>
/// <param name="HorizonInterval">Pinned-horizon scenario: length of one measured interval.</param>
/// <param name="HorizonBefore">Pinned-horizon scenario: churn measured before the pin (the baseline).</param>
/// <param name="HorizonPinned">Pinned-horizon scenario: how long a transaction holds an xid while the churn goes on.</param>
/// <param name="HorizonAfter">Pinned-horizon scenario: churn measured after the pin's commit (the recovery).</param>
public sealed record Profile(
    string Name,
    TimeSpan OpBudget,
    int Prefill,
    int BatchCallers,
    int[] WorkerCounts,
    int BurnDownTasks,
    TimeSpan BurnDownBudget,
    int RuntimeConcurrency,
    int[] HeartbeatCallers,
    int HeartbeatLeases,
    int EventsInFlight,
    int SteadyRate,
    TimeSpan SteadyBudget,
    int IdleRate,
    TimeSpan IdleBudget,
    TimeSpan ChurnBudget,
    TimeSpan ChurnInterval,
    int ChurnBacklogCap,
    TimeSpan HorizonWarmUp,
    TimeSpan HorizonInterval,
    TimeSpan HorizonBefore,
    TimeSpan HorizonPinned,
    TimeSpan HorizonAfter)
{
    /// <summary>How soon after the pin's release throughput must be back (a minute; the whole after-phase when shorter).</summary>
    public TimeSpan HorizonRecoveryWindow => HorizonAfter < TimeSpan.FromMinutes(1) ? HorizonAfter : TimeSpan.FromMinutes(1);

    /// <summary>
    /// The README main job: every scenario on every store, ≤ 4 minutes in all on a 2-core box (with the build and the
    /// short BenchmarkDotNet job). Budgets are short, so single figures are noisy; ratios within one run still hold.
    /// </summary>
    public static readonly Profile Quick = new("quick",
        OpBudget: TimeSpan.FromMilliseconds(700), Prefill: 8_000, BatchCallers: 4, WorkerCounts: [1, 4, 16],
        BurnDownTasks: 15_000, BurnDownBudget: TimeSpan.FromSeconds(6), RuntimeConcurrency: 200,
        HeartbeatCallers: [1, 16], HeartbeatLeases: 8, EventsInFlight: 16,
        SteadyRate: 1_000, SteadyBudget: TimeSpan.FromSeconds(2), IdleRate: 50, IdleBudget: TimeSpan.FromSeconds(1.2),
        ChurnBudget: TimeSpan.FromSeconds(9), ChurnInterval: TimeSpan.FromSeconds(3), ChurnBacklogCap: 10_000,
        HorizonWarmUp: TimeSpan.FromSeconds(1), HorizonInterval: TimeSpan.FromSeconds(0.5), HorizonBefore: TimeSpan.FromSeconds(2),
        HorizonPinned: TimeSpan.FromSeconds(3), HorizonAfter: TimeSpan.FromSeconds(3));

    /// <summary>The figures: 10-minute churn, a 2-minute pinned horizon between a minute before and 90 s after, longer budgets, bigger burn-down.</summary>
    public static readonly Profile Full = new("full",
        OpBudget: TimeSpan.FromSeconds(10), Prefill: 150_000, BatchCallers: 4, WorkerCounts: [1, 4, 16],
        BurnDownTasks: 200_000, BurnDownBudget: TimeSpan.FromSeconds(180), RuntimeConcurrency: 200,
        HeartbeatCallers: [1, 16], HeartbeatLeases: 16, EventsInFlight: 16,
        SteadyRate: 2_000, SteadyBudget: TimeSpan.FromSeconds(30), IdleRate: 20, IdleBudget: TimeSpan.FromSeconds(20),
        ChurnBudget: TimeSpan.FromMinutes(10), ChurnInterval: TimeSpan.FromMinutes(1), ChurnBacklogCap: 20_000,
        HorizonWarmUp: TimeSpan.FromSeconds(15), HorizonInterval: TimeSpan.FromSeconds(5), HorizonBefore: TimeSpan.FromMinutes(1),
        HorizonPinned: TimeSpan.FromMinutes(2), HorizonAfter: TimeSpan.FromSeconds(90));

    /// <summary>The smoke test: every scenario once, tiny, so the harness cannot rot.</summary>
    public static readonly Profile Smoke = new("smoke",
        OpBudget: TimeSpan.FromMilliseconds(100), Prefill: 300, BatchCallers: 2, WorkerCounts: [1, 4],
        BurnDownTasks: 300, BurnDownBudget: TimeSpan.FromSeconds(10), RuntimeConcurrency: 16,
        HeartbeatCallers: [2], HeartbeatLeases: 2, EventsInFlight: 4,
        SteadyRate: 100, SteadyBudget: TimeSpan.FromMilliseconds(300), IdleRate: 20, IdleBudget: TimeSpan.FromMilliseconds(200),
        ChurnBudget: TimeSpan.FromMilliseconds(600), ChurnInterval: TimeSpan.FromMilliseconds(300), ChurnBacklogCap: 500,
        HorizonWarmUp: TimeSpan.Zero, HorizonInterval: TimeSpan.FromMilliseconds(100), HorizonBefore: TimeSpan.FromMilliseconds(200),
        HorizonPinned: TimeSpan.FromMilliseconds(300), HorizonAfter: TimeSpan.FromMilliseconds(300));

    public static Profile Parse(string name) => name switch
    {
        "quick" => Quick,
        "full" => Full,
        "smoke" => Smoke,
        _ => throw new ArgumentException($"unknown profile '{name}' (quick, full, smoke)"),
    };
}
