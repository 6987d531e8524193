using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Konduit.Hosting;

/// <summary>
/// Runs the selected event log's upkeep (<see cref="KonduitEventLogDefinition{TOptions}.MaintainAsync"/>) on every
/// node, every <see cref="KonduitOptions.EventLogMaintenanceInterval"/> with ±20 % jitter. Idle when no event log is
/// configured or the log has no upkeep (Cassandra expires rows by its own TTL). A failure is logged and retried at the
/// next interval: upkeep never stops the host or the recorder.
/// </summary>
internal sealed class KonduitEventLogMaintenance : BackgroundService
{
    private readonly IServiceProvider _services;
    private readonly KonduitOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    public KonduitEventLogMaintenance(IServiceProvider services, IOptions<KonduitOptions> options, TimeProvider time, ILoggerFactory? loggerFactory = null)
    {
        _services = services;
        _options = options.Value;
        _time = time;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Konduit.Hosting.EventLogMaintenance");
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (string.IsNullOrWhiteSpace(_options.EventLog)) return;
        var registration = _services.GetRequiredService<KonduitStoreHost>().SelectedEventLog;
        if (registration.Maintain is not { } maintain) return;
        var log = _services.GetRequiredService<TaskEventRecorder>().Log;
        while (!stoppingToken.IsCancellationRequested)
        {
            var jittered = _options.EventLogMaintenanceInterval * (0.8 + (0.4 * Random.Shared.NextDouble()));
            try
            {
                await Task.Delay(jittered, _time, stoppingToken).ConfigureAwait(false);
                await maintain(_services, log, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // Upkeep is best effort: whatever fails is retried at the next interval.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Log.EventLogMaintenanceFailed(_logger, ex, registration.Name);
            }
        }
    }
}
