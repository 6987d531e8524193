using Xunit;

namespace Konduit.Benchmarks.Tests;

public sealed class LatencyHistogramTests
{
    [Fact]
    public void Percentiles_are_within_the_stated_precision()
    {
        var h = new LatencyHistogram();
        for (var us = 1; us <= 100_000; us++) h.RecordMicroseconds(us);
        var p = h.Percentiles();

        Assert.Equal(100_000, p.Count);
        // 3 significant digits: every value within 0.1 % of the recorded one.
        Assert.Equal(50.0, p.P50, 50.0 * 0.001);
        Assert.Equal(90.0, p.P90, 90.0 * 0.001);
        Assert.Equal(99.0, p.P99, 99.0 * 0.001);
        Assert.Equal(99.9, p.P999, 99.9 * 0.001);
        Assert.Equal(100.0, p.Max, 100.0 * 0.001);
        Assert.Equal(100.0, h.Curve()[^1].Ms, 100.0 * 0.001);
    }

    [Fact]
    public void An_empty_histogram_reports_nothing_and_out_of_range_values_are_clamped()
    {
        var h = new LatencyHistogram();
        Assert.True(double.IsNaN(h.Percentiles().P50));
        Assert.Empty(h.Curve());

        h.RecordMicroseconds(-5);
        h.RecordMicroseconds(LatencyHistogram.HighestMicroseconds * 10);
        Assert.Equal(2, h.Count);
        Assert.Equal(0, h.PercentileMs(1));
        Assert.Equal(LatencyHistogram.HighestMicroseconds / 1000.0, h.MaxMs, LatencyHistogram.HighestMicroseconds / 1000.0 * 0.001);
    }

    [Fact]
    public void Recording_allocates_nothing()
    {
        var h = new LatencyHistogram();
        h.RecordSince(System.Diagnostics.Stopwatch.GetTimestamp()); // JIT first
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100_000; i++)
        {
            h.RecordMicroseconds(i * 37 % 5_000_000);
            h.RecordSince(System.Diagnostics.Stopwatch.GetTimestamp());
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
