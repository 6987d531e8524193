using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Konduit.Hosting;

/// <summary>
/// Queue gauges from the store's own counts (<see cref="ITaskStore.GetStatsAsync"/>), read every
/// <see cref="KonduitOptions.QueueStatsInterval"/> and served from that snapshot (a gauge callback must not query a
/// store): <c>konduit.queue.depth</c> (tag <c>state</c>: <c>due</c>, <c>scheduled</c>, <c>running</c>) and
/// <c>konduit.queue.oldest_due_age</c> (seconds since the oldest due pending task became due; 0 when none is due).
/// Every node reports the same store-wide figures, so dashboards take one node's value (max), not the sum.
/// </summary>
internal sealed class KonduitQueueGauges : BackgroundService
{
    private readonly IServiceProvider _services;
    private readonly KonduitStoreHost _storeHost;
    private readonly TimeProvider _time;
    private readonly TimeSpan? _interval;
    private readonly ILogger _logger;
    private volatile Snapshot? _snapshot;

    public KonduitQueueGauges(IServiceProvider services, KonduitStoreHost storeHost, TimeProvider time, IMeterFactory meterFactory,
        IOptions<KonduitOptions> options, ILoggerFactory? loggerFactory = null)
    {
        _services = services;
        _storeHost = storeHost;
        _time = time;
        _interval = options.Value.QueueStatsInterval;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Konduit.Hosting.QueueGauges");
        if (_interval is null) return;
        var meter = meterFactory.Create(KonduitTelemetry.MeterName);
        meter.CreateObservableGauge("konduit.queue.depth", Depths, "{task}", "Tasks per queue by state: due (pending and due), scheduled (pending, due later), running.");
        meter.CreateObservableGauge("konduit.queue.oldest_due_age", OldestDueAges, "s", "How long the oldest due pending task of each queue has waited since it became due.");
    }

    private sealed record Snapshot(string Store, IReadOnlyList<QueueStats> Queues, DateTimeOffset ReadAt);

    internal bool HasSnapshot => _snapshot is not null;

    private IEnumerable<Measurement<long>> Depths()
    {
        if (_snapshot is not { } snapshot) yield break;
        foreach (var q in snapshot.Queues)
        {
            yield return new Measurement<long>(q.PendingDue, Tags(snapshot, q, "due"));
            yield return new Measurement<long>(q.PendingScheduled, Tags(snapshot, q, "scheduled"));
            yield return new Measurement<long>(q.Running, Tags(snapshot, q, "running"));
        }
    }

    private IEnumerable<Measurement<double>> OldestDueAges()
    {
        if (_snapshot is not { } snapshot) yield break;
        foreach (var q in snapshot.Queues)
        {
            var age = q.OldestDueAt is { } dueAt ? Math.Max(0, (snapshot.ReadAt - dueAt).TotalSeconds) : 0;
            yield return new Measurement<double>(age, [new("queue", q.Queue), new("store", snapshot.Store)]);
        }
    }

    private static KeyValuePair<string, object?>[] Tags(Snapshot snapshot, QueueStats q, string state) =>
        [new("queue", q.Queue), new("store", snapshot.Store), new("state", state)];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_interval is not { } interval) return;
        if (await _storeHost.WhenReadyAsync(_services, stoppingToken).ConfigureAwait(false) is not { } store) return;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var stats = await store.GetStatsAsync(stoppingToken).ConfigureAwait(false);
                _snapshot = new Snapshot(store.Name, stats, _time.GetUtcNow());
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                Log.QueueStatsFailed(_logger, ex, store.Name); // the gauges keep the last snapshot
            }
            try
            {
                await Task.Delay(interval, _time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
