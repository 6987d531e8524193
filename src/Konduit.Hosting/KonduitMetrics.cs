using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Konduit.Hosting;

/// <summary>
/// The <c>Konduit</c> meter (created through <see cref="IMeterFactory"/>, so each host has its own). Every
/// instrument is tagged <c>queue</c> and <c>store</c> (the reclaimed counter: <c>store</c> only).
/// </summary>
/// <remarks>
/// Instruments: <c>konduit.tasks.enqueued</c> (new tasks only), <c>konduit.tasks.leased</c>,
/// <c>konduit.tasks.completed</c>, <c>konduit.tasks.failed</c> (dead-lettered by a handler failure),
/// <c>konduit.tasks.retried</c> (failed attempts scheduled for retry), <c>konduit.tasks.reclaimed</c> (expired
/// leases returned by the sweeper), <c>konduit.tasks.lease_lost</c>, histograms <c>konduit.task.duration</c> and
/// <c>konduit.task.queue_wait</c> (seconds, with <see cref="KonduitTelemetry.DurationBucketBoundaries"/> as bucket
/// advice; wait = lease time − due time, both by the store's clock) and the
/// up-down counter <c>konduit.tasks.in_flight</c>.
/// </remarks>
internal sealed class KonduitMetrics
{
    public const string MeterName = KonduitTelemetry.MeterName;

    private readonly Counter<long> _enqueued;
    private readonly Counter<long> _leased;
    private readonly Counter<long> _completed;
    private readonly Counter<long> _failed;
    private readonly Counter<long> _retried;
    private readonly Counter<long> _reclaimed;
    private readonly Counter<long> _purged;
    private readonly Counter<long> _leaseLost;
    private readonly Histogram<double> _duration;
    private readonly Histogram<double> _queueWait;
    private readonly UpDownCounter<long> _inFlight;

    public KonduitMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(new MeterOptions(MeterName) { Version = typeof(KonduitMetrics).Assembly.GetName().Version?.ToString() });
        _enqueued = meter.CreateCounter<long>("konduit.tasks.enqueued", "{task}", "Tasks enqueued (new tasks; idempotent repeats are not counted).");
        _leased = meter.CreateCounter<long>("konduit.tasks.leased", "{task}", "Tasks leased by workers.");
        _completed = meter.CreateCounter<long>("konduit.tasks.completed", "{task}", "Tasks completed successfully.");
        _failed = meter.CreateCounter<long>("konduit.tasks.failed", "{task}", "Tasks dead-lettered after a handler failure.");
        _retried = meter.CreateCounter<long>("konduit.tasks.retried", "{task}", "Failed attempts scheduled for a retry.");
        _reclaimed = meter.CreateCounter<long>("konduit.tasks.reclaimed", "{task}", "Expired leases reclaimed by this node's sweeper.");
        _purged = meter.CreateCounter<long>("konduit.tasks.purged", "{task}", "Finished tasks deleted by this node's sweeper (PurgeFinishedAfter).");
        _leaseLost = meter.CreateCounter<long>("konduit.tasks.lease_lost", "{task}", "Running tasks whose lease was lost (expired, reclaimed or canceled).");
        var seconds = new InstrumentAdvice<double> { HistogramBucketBoundaries = KonduitTelemetry.DurationBucketBoundaries };
        _duration = meter.CreateHistogram("konduit.task.duration", "s", "Handler execution time.", tags: null, advice: seconds);
        _queueWait = meter.CreateHistogram("konduit.task.queue_wait", "s", "Time from a task being due to being leased (store clock).", tags: null, advice: seconds);
        _inFlight = meter.CreateUpDownCounter<long>("konduit.tasks.in_flight", "{task}", "Handlers running now.");
    }

    public void Enqueued(string queue, string store, long count = 1) => _enqueued.Add(count, Tags(queue, store));
    public void Leased(string queue, string store, long count) => _leased.Add(count, Tags(queue, store));
    public void Completed(string queue, string store) => _completed.Add(1, Tags(queue, store));
    public void Failed(string queue, string store) => _failed.Add(1, Tags(queue, store));
    public void Retried(string queue, string store) => _retried.Add(1, Tags(queue, store));
    public void LeaseLost(string queue, string store) => _leaseLost.Add(1, Tags(queue, store));
    public void Reclaimed(string queue, string store, long count) => _reclaimed.Add(count, Tags(queue, store));
    public void Purged(string queue, string store, long count) => _purged.Add(count, Tags(queue, store));
    public void Duration(string queue, string store, TimeSpan duration) => _duration.Record(duration.TotalSeconds, Tags(queue, store));
    public void QueueWait(string queue, string store, TimeSpan wait) => _queueWait.Record(Math.Max(0, wait.TotalSeconds), Tags(queue, store));
    public void InFlight(string queue, string store, long delta) => _inFlight.Add(delta, Tags(queue, store));

    private static TagList Tags(string queue, string store) => new() { { "queue", queue }, { "store", store } };
}
