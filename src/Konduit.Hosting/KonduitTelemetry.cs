namespace Konduit.Hosting;

/// <summary>
/// The names to subscribe to, for OpenTelemetry and other listeners:
/// <c>builder.WithMetrics(m => m.AddMeter(KonduitTelemetry.MeterName))</c> and
/// <c>.WithTracing(t => t.AddSource(KonduitTelemetry.ActivitySourceName))</c>.
/// </summary>
public static class KonduitTelemetry
{
    /// <summary>The meter of every Konduit instrument (<c>konduit.tasks.*</c>, <c>konduit.task.*</c>).</summary>
    public const string MeterName = "Konduit";

    /// <summary>The activity source of the enqueue (producer) and process (consumer) spans.</summary>
    public const string ActivitySourceName = "Konduit";

    /// <summary>
    /// The bucket boundaries, in seconds, advised for the duration histograms (<c>konduit.task.duration</c>,
    /// <c>konduit.task.queue_wait</c>): 1 ms to 10 min. Without advice, OpenTelemetry's default buckets (0, 5, 10, 25, …
    /// meant for milliseconds) would put almost every task in the first bucket. A listener may still override them.
    /// </summary>
    public static IReadOnlyList<double> DurationBucketBoundaries { get; } =
        [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
}
