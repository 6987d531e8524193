using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Konduit.Hosting;

/// <summary>
/// Runs <see cref="ITaskStore.ReclaimExpiredAsync"/> (and, with <see cref="KonduitOptions.PurgeFinishedAfter"/>,
/// <see cref="ITaskStore.ApplyRetentionAsync"/>) on every node, every <see cref="KonduitOptions.SweepInterval"/> (with ±20 %
/// jitter so nodes do not sweep in step). The store makes concurrent sweeps safe.
/// </summary>
internal sealed class KonduitSweeper : BackgroundService
{
    private readonly IServiceProvider _services;
    private readonly KonduitStoreHost _storeHost;
    private readonly KonduitMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly TimeSpan _interval;
    private readonly TimeSpan? _purgeAfter;
    private readonly ILogger _logger;

    public KonduitSweeper(IServiceProvider services, KonduitStoreHost storeHost, KonduitMetrics metrics, TimeProvider time,
        IOptions<KonduitOptions> options, ILoggerFactory? loggerFactory = null)
    {
        _services = services;
        _storeHost = storeHost;
        _metrics = metrics;
        _time = time;
        _interval = options.Value.SweepInterval;
        _purgeAfter = options.Value.PurgeFinishedAfter;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Konduit.Hosting.Sweeper");
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (await _storeHost.WhenReadyAsync(_services, stoppingToken).ConfigureAwait(false) is not { } store) return;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var reclaimed = await store.ReclaimExpiredAsync(stoppingToken).ConfigureAwait(false);
                if (reclaimed.Count > 0)
                {
                    foreach (var byQueue in reclaimed.GroupBy(r => r.Queue, StringComparer.Ordinal))
                        _metrics.Reclaimed(byQueue.Key, store.Name, byQueue.Count());
                    Log.Reclaimed(_logger, reclaimed.Count, store.Name);
                }
                if (_purgeAfter is { } olderThan)
                {
                    var purged = await store.ApplyRetentionAsync(olderThan, stoppingToken).ConfigureAwait(false);
                    if (purged.Count > 0)
                    {
                        foreach (var byQueue in purged.GroupBy(p => p.Queue, StringComparer.Ordinal))
                            _metrics.Purged(byQueue.Key, store.Name, byQueue.Count());
                        Log.Purged(_logger, purged.Count, store.Name);
                    }
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                Log.SweepFailed(_logger, ex, store.Name);
            }

            var jittered = _interval * (0.8 + (0.4 * Random.Shared.NextDouble()));
            try
            {
                await Task.Delay(jittered, _time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
