namespace Konduit.Chaos.Tests;

/// <summary>
/// Completion rates from the server's finish timestamps: the rate over the window before the fault, and the first
/// window after it that reaches <see cref="ChaosProfile.RecoveryRatio"/> of that rate.
/// </summary>
internal sealed record RateAnalysis(double BeforeRate, double? RecoveredRate, TimeSpan? RecoveryTime, double BestRatio)
{
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(100);

    public bool Recovered => RecoveryTime is not null;

    public double Ratio => RecoveredRate is { } r && BeforeRate > 0 ? r / BeforeRate : BestRatio;

    /// <param name="times">finish times (any order)</param>
    /// <param name="beforeRate">the completion rate over the window before the fault</param>
    /// <param name="horizon">windows ending after this are not complete yet and are not considered</param>
    public static RateAnalysis Analyze(
        IReadOnlyCollection<DateTimeOffset> times, double beforeRate, DateTimeOffset faultEnd, TimeSpan window, DateTimeOffset horizon)
    {
        var sorted = times.Select(t => t.UtcTicks).Order().ToArray();
        long Count(DateTimeOffset from, DateTimeOffset to) => Lower(sorted, to.UtcTicks) - Lower(sorted, from.UtcTicks);
        var best = 0.0;
        for (var start = faultEnd; start + window <= horizon; start += Step)
        {
            var rate = Count(start, start + window) / window.TotalSeconds;
            var ratio = beforeRate > 0 ? rate / beforeRate : 0;
            best = Math.Max(best, ratio);
            if (beforeRate > 0 && ratio >= ChaosProfile.RecoveryRatio)
                return new RateAnalysis(beforeRate, rate, start - faultEnd, best);
        }
        return new RateAnalysis(beforeRate, null, null, best);
    }

    /// <summary>Rate over the most recent complete window ending at <paramref name="horizon"/>.</summary>
    public static double RecentRate(IReadOnlyCollection<DateTimeOffset> times, DateTimeOffset horizon, TimeSpan window) =>
        times.Count(t => t >= horizon - window && t < horizon) / window.TotalSeconds;

    private static int Lower(long[] sorted, long value)
    {
        var index = Array.BinarySearch(sorted, value);
        if (index < 0) return ~index;
        while (index > 0 && sorted[index - 1] == value) index--;
        return index;
    }
}
