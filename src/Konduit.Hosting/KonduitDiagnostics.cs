using System.Diagnostics;

namespace Konduit.Hosting;

/// <summary>
/// The <c>Konduit</c> activity source: a producer span per enqueue (<c>enqueue &lt;queue&gt;</c>) and a consumer
/// span per execution (<c>process &lt;queue&gt;</c>). The enqueue span's W3C trace context travels in the task's
/// <c>traceparent</c> / <c>tracestate</c> headers; the execution span links to it.
/// </summary>
internal static class KonduitDiagnostics
{
    public const string SourceName = KonduitTelemetry.ActivitySourceName;
    public const string TraceParentHeader = "traceparent";
    public const string TraceStateHeader = "tracestate";

    public static readonly ActivitySource Source = new(SourceName, typeof(KonduitDiagnostics).Assembly.GetName().Version?.ToString());

    public static Activity? StartEnqueue(string queue, string store, int count)
    {
        var activity = Source.StartActivity($"enqueue {queue}", ActivityKind.Producer);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag("messaging.system", "konduit");
            activity.SetTag("messaging.operation.type", "send");
            activity.SetTag("messaging.destination.name", queue);
            activity.SetTag("konduit.store", store);
            if (count != 1) activity.SetTag("messaging.batch.message_count", count);
        }
        return activity;
    }

    public static Activity? StartProcess(TaskLease lease, string store)
    {
        // Nobody listens (the common case without tracing): skip the name and header parsing per task.
        if (!Source.HasListeners()) return null;
        ActivityLink[]? links = null;
        if (lease.Headers.TryGetValue(TraceParentHeader, out var traceParent)
            && ActivityContext.TryParse(traceParent, lease.Headers.GetValueOrDefault(TraceStateHeader), isRemote: true, out var enqueueContext))
        {
            links = [new ActivityLink(enqueueContext)];
        }
        // A new trace root per execution, linked to the enqueue span: the work happens long after, and maybe
        // more than once, so it is not a child of the request that enqueued it (OpenTelemetry messaging conventions).
        var activity = Source.StartActivity($"process {lease.Queue}", ActivityKind.Consumer, parentContext: default, links: links);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag("messaging.system", "konduit");
            activity.SetTag("messaging.operation.type", "process");
            activity.SetTag("messaging.destination.name", lease.Queue);
            activity.SetTag("messaging.message.id", lease.TaskId.ToString());
            activity.SetTag("konduit.attempt", lease.Attempt);
            activity.SetTag("konduit.store", store);
        }
        return activity;
    }

    /// <summary>Adds the current trace context to <paramref name="headers"/> (a copy); returns them unchanged without one.</summary>
    public static IReadOnlyDictionary<string, string>? InjectTraceContext(Activity? activity, IReadOnlyDictionary<string, string>? headers)
    {
        activity ??= Activity.Current;
        if (activity is null || activity.IdFormat != ActivityIdFormat.W3C) return headers;
        var copy = headers is null ? new Dictionary<string, string>(2) : new Dictionary<string, string>(headers);
        copy[TraceParentHeader] = activity.Id!;
        if (!string.IsNullOrEmpty(activity.TraceStateString)) copy[TraceStateHeader] = activity.TraceStateString;
        else copy.Remove(TraceStateHeader);
        return copy;
    }
}
