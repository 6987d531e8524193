using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Konduit.Hosting;

/// <summary>
/// The <c>konduit-event-log</c> health check: Degraded while the events waiting for the log reach
/// <see cref="TaskEventRecorderOptions.DegradedBacklog"/>, or when events were dropped (buffer full) since the previous
/// check; Healthy otherwise, and when no event log is configured. Never Unhealthy: tasks run without their history.
/// Data: buffered, appended and dropped counts.
/// </summary>
internal sealed class KonduitEventLogHealthCheck(IServiceProvider services) : IHealthCheck
{
    private long _droppedAtLastCheck;

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!services.GetRequiredService<KonduitComponentHost>().IsSelected(KonduitComponentKind.EventLog))
            return Task.FromResult(HealthCheckResult.Healthy("No event log is configured."));
        var recorder = services.GetRequiredService<TaskEventRecorder>();
        var buffered = recorder.Buffered;
        var dropped = recorder.Dropped;
        var droppedSince = dropped - Interlocked.Exchange(ref _droppedAtLastCheck, dropped);
        var data = new Dictionary<string, object> { ["log"] = recorder.Log.Name, ["buffered"] = buffered, ["appended"] = recorder.Appended, ["dropped"] = dropped };
        if (droppedSince > 0)
            return Task.FromResult(HealthCheckResult.Degraded(
                $"Event log '{recorder.Log.Name}': {droppedSince} event(s) dropped since the last check (buffer full); {buffered} waiting.", data: data));
        if (buffered >= recorder.DegradedBacklog)
            return Task.FromResult(HealthCheckResult.Degraded(
                $"Event log '{recorder.Log.Name}': {buffered} events waiting (degraded at {recorder.DegradedBacklog}): the log is slow or down.", data: data));
        return Task.FromResult(HealthCheckResult.Healthy($"Event log '{recorder.Log.Name}': {buffered} events waiting.", data));
    }
}
