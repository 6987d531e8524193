namespace Konduit.Benchmarks;

/// <summary>How long and how big each load scenario runs. Every loop is bounded by these numbers.</summary>
public sealed record Profile(
    string Name,
    TimeSpan OpBudget,
    int Prefill,
    int BatchCallers,
    int[] WorkerCounts,
    int BurnDownTasks,
    TimeSpan BurnDownBudget,
    int RuntimeConcurrency,
    int SteadyRate,
    TimeSpan SteadyBudget,
    int IdleRate,
    TimeSpan IdleBudget,
    TimeSpan ChurnBudget,
    TimeSpan ChurnInterval,
    int ChurnBacklogCap)
{
    /// <summary>The README main job: a few minutes in all.</summary>
    public static readonly Profile Quick = new("quick",
        OpBudget: TimeSpan.FromSeconds(3), Prefill: 30_000, BatchCallers: 4, WorkerCounts: [1, 4, 16],
        BurnDownTasks: 30_000, BurnDownBudget: TimeSpan.FromSeconds(40), RuntimeConcurrency: 200,
        SteadyRate: 1_000, SteadyBudget: TimeSpan.FromSeconds(8), IdleRate: 20, IdleBudget: TimeSpan.FromSeconds(5),
        ChurnBudget: TimeSpan.FromSeconds(45), ChurnInterval: TimeSpan.FromSeconds(15), ChurnBacklogCap: 10_000);

    /// <summary>The figures: 10-minute churn, longer budgets, bigger burn-down.</summary>
    public static readonly Profile Full = new("full",
        OpBudget: TimeSpan.FromSeconds(15), Prefill: 150_000, BatchCallers: 4, WorkerCounts: [1, 4, 16],
        BurnDownTasks: 200_000, BurnDownBudget: TimeSpan.FromSeconds(180), RuntimeConcurrency: 200,
        SteadyRate: 2_000, SteadyBudget: TimeSpan.FromSeconds(30), IdleRate: 20, IdleBudget: TimeSpan.FromSeconds(20),
        ChurnBudget: TimeSpan.FromMinutes(10), ChurnInterval: TimeSpan.FromMinutes(1), ChurnBacklogCap: 20_000);

    /// <summary>The smoke test: every scenario once, tiny, so the harness cannot rot.</summary>
    public static readonly Profile Smoke = new("smoke",
        OpBudget: TimeSpan.FromMilliseconds(150), Prefill: 300, BatchCallers: 2, WorkerCounts: [1, 4],
        BurnDownTasks: 300, BurnDownBudget: TimeSpan.FromSeconds(10), RuntimeConcurrency: 16,
        SteadyRate: 100, SteadyBudget: TimeSpan.FromMilliseconds(400), IdleRate: 20, IdleBudget: TimeSpan.FromMilliseconds(300),
        ChurnBudget: TimeSpan.FromMilliseconds(800), ChurnInterval: TimeSpan.FromMilliseconds(400), ChurnBacklogCap: 500);

    public static Profile Parse(string name) => name switch
    {
        "quick" => Quick,
        "full" => Full,
        "smoke" => Smoke,
        _ => throw new ArgumentException($"unknown profile '{name}' (quick, full, smoke)"),
    };
}
