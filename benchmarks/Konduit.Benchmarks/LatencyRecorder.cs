using System.Diagnostics;
using System.Numerics;

namespace Konduit.Benchmarks;

/// <summary>
/// An HdrHistogram-style recorder: log-linear buckets over microseconds (128 linear buckets, then 64 sub-buckets per
/// power of two, so every value is kept within 1/64 ≈ 1.6 % relative error), lock-free recording, fixed memory.
/// </summary>
public sealed class LatencyRecorder
{
    private const int SubBits = 6;                 // 64 sub-buckets per octave
    private const int SubCount = 1 << SubBits;
    private const int Linear = SubCount * 2;       // values below 128 µs are exact
    private const int Octaves = 40;
    private readonly long[] _counts = new long[Linear + Octaves * SubCount];
    private long _total;
    private long _max;

    public long Count => Interlocked.Read(ref _total);

    /// <summary>Records the time since <paramref name="startTimestamp"/> (a <see cref="Stopwatch.GetTimestamp"/> value).</summary>
    public void RecordSince(long startTimestamp) => RecordMicros((long)Stopwatch.GetElapsedTime(startTimestamp).TotalMicroseconds);

    public void RecordMicros(long micros)
    {
        if (micros < 0) micros = 0;
        Interlocked.Increment(ref _counts[Index(micros)]);
        Interlocked.Increment(ref _total);
        long seen;
        while (micros > (seen = Interlocked.Read(ref _max)) && Interlocked.CompareExchange(ref _max, micros, seen) != seen) { }
    }

    internal static int Index(long v)
    {
        if (v < Linear) return (int)v;
        var msb = 63 - BitOperations.LeadingZeroCount((ulong)v);    // ≥ 7
        var shift = msb - SubBits;                                  // v >> shift in [64, 127]
        var octave = Math.Min(shift - 1, Octaves - 1);
        var sub = (int)Math.Min((v >> shift) - SubCount, SubCount - 1);
        return Linear + octave * SubCount + sub;
    }

    /// <summary>The largest value that lands in bucket <paramref name="index"/>.</summary>
    internal static long UpperBound(int index)
    {
        if (index < Linear) return index;
        var octave = (index - Linear) / SubCount;
        var sub = (index - Linear) % SubCount;
        var shift = octave + 1;
        return ((long)(sub + SubCount + 1) << shift) - 1;
    }

    /// <summary>The value at <paramref name="percentile"/> (0–100) in milliseconds; NaN when empty.</summary>
    public double PercentileMs(double percentile)
    {
        var total = Count;
        if (total == 0) return double.NaN;
        var rank = (long)Math.Ceiling(percentile / 100.0 * total);
        if (rank < 1) rank = 1;
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += Interlocked.Read(ref _counts[i]);
            if (seen >= rank) return Math.Min(UpperBound(i), Interlocked.Read(ref _max)) / 1000.0;
        }
        return Interlocked.Read(ref _max) / 1000.0;
    }

    public double MaxMs => Interlocked.Read(ref _max) / 1000.0;
}
