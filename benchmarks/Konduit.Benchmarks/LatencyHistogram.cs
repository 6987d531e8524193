using System.Diagnostics;
using HdrHistogram;

namespace Konduit.Benchmarks;

/// <summary>
/// Call or pickup latency, kept by HdrHistogram: microseconds from 1 µs to one hour at 3 significant digits, so every
/// reported percentile is within 0.1 % of the recorded value. Recording is lock-free and allocates nothing (the
/// histogram's counts array is sized once, here), so it can sit on the measured path of every caller at once.
/// </summary>
public sealed class LatencyHistogram
{
    /// <summary>The largest value kept apart from the rest: one hour. A longer call is counted as one hour.</summary>
    public const long HighestMicroseconds = 3_600_000_000;

    /// <summary>Significant decimal digits of every value (3: within 0.1 %).</summary>
    public const int SignificantDigits = 3;

    /// <summary>The percentiles the report prints, in its column order.</summary>
    public static readonly double[] ReportedPercentiles = [50, 90, 99, 99.9];

    private readonly LongConcurrentHistogram _histogram = new(1, HighestMicroseconds, SignificantDigits);

    public long Count => _histogram.TotalCount;

    /// <summary>Records the time since <paramref name="startTimestamp"/> (a <see cref="Stopwatch.GetTimestamp"/> value).</summary>
    public void RecordSince(long startTimestamp) => RecordMicroseconds(Stopwatch.GetElapsedTime(startTimestamp).Ticks / TimeSpan.TicksPerMicrosecond);

    /// <summary>Records one value; below zero counts as 0, above <see cref="HighestMicroseconds"/> as that.</summary>
    public void RecordMicroseconds(long micros) => _histogram.RecordValue(Math.Clamp(micros, 0, HighestMicroseconds));

    /// <summary>The value at <paramref name="percentile"/> (0–100) in milliseconds; NaN when nothing was recorded.</summary>
    public double PercentileMs(double percentile) =>
        Count == 0 ? double.NaN : _histogram.GetValueAtPercentile(percentile) / 1000.0;

    public double MaxMs => Count == 0 ? double.NaN : _histogram.GetMaxValue() / 1000.0;

    /// <summary>p50, p90, p99, p99.9 and max, for the report.</summary>
    public LatencyPercentiles Percentiles() =>
        new(PercentileMs(50), PercentileMs(90), PercentileMs(99), PercentileMs(99.9), MaxMs, Count);

    /// <summary>The latency-by-percentile curve (percentile, ms) for the chart: from p0 to p99.99, then the max.</summary>
    public IReadOnlyList<(double Percentile, double Ms)> Curve()
    {
        if (Count == 0) return [];
        double[] levels = [0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 96, 97, 98, 99, 99.25, 99.5, 99.75, 99.9, 99.95, 99.99];
        return [.. levels.Select(p => (p, PercentileMs(p))), (100, MaxMs)];
    }
}

/// <summary>Latency percentiles of one measurement, in milliseconds (NaN when nothing was recorded).</summary>
public sealed record LatencyPercentiles(double P50, double P90, double P99, double P999, double Max, long Count)
{
    public static readonly LatencyPercentiles None = new(double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, 0);
}
