using Konduit.Hosting;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Konduit.OpenTelemetry;

/// <summary>
/// Subscribes OpenTelemetry to Konduit's meter and activity source (<see cref="KonduitTelemetry"/>):
/// <c>services.AddOpenTelemetry().WithMetrics(m => m.AddKonduitInstrumentation()).WithTracing(t => t.AddKonduitInstrumentation())</c>.
/// The duration histograms carry their own bucket advice (seconds), so no view is needed.
/// </summary>
public static class KonduitInstrumentationExtensions
{
    /// <summary>Adds the <c>Konduit</c> meter: task counters, duration and queue-wait histograms, queue gauges.</summary>
    public static MeterProviderBuilder AddKonduitInstrumentation(this MeterProviderBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddMeter(KonduitTelemetry.MeterName);
    }

    /// <summary>Adds the <c>Konduit</c> activity source: <c>enqueue &lt;queue&gt;</c> and <c>process &lt;queue&gt;</c> spans, linked.</summary>
    public static TracerProviderBuilder AddKonduitInstrumentation(this TracerProviderBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddSource(KonduitTelemetry.ActivitySourceName);
    }
}
