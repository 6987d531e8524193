namespace Konduit.Chaos.Tests;

/// <summary>
/// How long and how big each scenario runs. The CI profile keeps the whole project within ~4 minutes on 2 cores;
/// <c>KONDUIT_CHAOS_LONG=1</c> runs each scenario's fault for minutes.
/// </summary>
internal sealed record ChaosProfile(
    string Name,
    int Workers,
    int Concurrency,
    TimeSpan Work,
    TimeSpan Before,
    TimeSpan Fault,
    TimeSpan Window,
    TimeSpan RecoveryDeadline,
    TimeSpan DrainDeadline,
    int MinimumTasksForKills)
{
    /// <summary>Recovered means a window after the fault completes at least this share of the rate before it.</summary>
    public const double RecoveryRatio = 0.95;

    public static ChaosProfile Current { get; } =
        Environment.GetEnvironmentVariable("KONDUIT_CHAOS_LONG") == "1"
            ? new ChaosProfile("long", Workers: 4, Concurrency: 8, Work: TimeSpan.FromMilliseconds(40),
                Before: TimeSpan.FromSeconds(20), Fault: TimeSpan.FromMinutes(3), Window: TimeSpan.FromSeconds(5),
                RecoveryDeadline: TimeSpan.FromSeconds(60), DrainDeadline: TimeSpan.FromMinutes(3), MinimumTasksForKills: 20_000)
            : new ChaosProfile("ci", Workers: 3, Concurrency: 4, Work: TimeSpan.FromMilliseconds(50),
                Before: TimeSpan.FromSeconds(3), Fault: TimeSpan.FromSeconds(3), Window: TimeSpan.FromSeconds(2),
                RecoveryDeadline: TimeSpan.FromSeconds(20), DrainDeadline: TimeSpan.FromSeconds(60), MinimumTasksForKills: 2_000);

    /// <summary>What the fleet can drain when nothing is wrong: every slot busy with one unit of work.</summary>
    public double NominalDrainRate => Workers * Concurrency / Work.TotalSeconds;

    /// <summary>
    /// The lease: short, so a killed worker's tasks come back well within the recovery deadline, yet long against a
    /// starved machine's completion lag (at 3 s, a shared 2-core box lost leases of healthy workers: see issue 13 hole 2).
    /// </summary>
    public static readonly TimeSpan Lease = TimeSpan.FromSeconds(6);
}
