using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Konduit.Hosting;

/// <summary>
/// Runs the periodic upkeep (<see cref="KonduitComponentDefinition{TService, TOptions}.MaintainAsync"/>) of every
/// selected component that has one, on every node, with ±20 % jitter: the event log every
/// <see cref="KonduitOptions.EventLogMaintenanceInterval"/>, other kinds every <see cref="KonduitOptions.MaintenanceInterval"/>.
/// Idle when no selected component has upkeep (Cassandra expires rows by its own TTL). A failure is logged and retried
/// at the next interval: upkeep never stops the host or the recorder.
/// </summary>
internal sealed class KonduitComponentMaintenance : BackgroundService
{
    private readonly IServiceProvider _services;
    private readonly KonduitComponentHost _components;
    private readonly KonduitOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    public KonduitComponentMaintenance(IServiceProvider services, KonduitComponentHost components, IOptions<KonduitOptions> options, TimeProvider time,
        ILoggerFactory? loggerFactory = null)
    {
        _services = services;
        _components = components;
        _options = options.Value;
        _time = time;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Konduit.Hosting.Maintenance");
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var loops = new List<Task>();
        foreach (var kind in KonduitComponentHost.Kinds)
        {
            if (!_components.IsSelected(kind) || _components.Selected(kind).Maintain is not { } maintain) continue;
            var interval = kind.Equals(KonduitComponentKind.EventLog) ? _options.EventLogMaintenanceInterval : _options.MaintenanceInterval;
            loops.Add(RunAsync(_components.Selected(kind), maintain, interval, stoppingToken));
        }
        return Task.WhenAll(loops);
    }

    private async Task RunAsync(KonduitComponent component, Func<IServiceProvider, object, CancellationToken, Task> maintain, TimeSpan interval,
        CancellationToken stoppingToken)
    {
        var instance = _components.Instance(component.Kind);
        while (!stoppingToken.IsCancellationRequested)
        {
            var jittered = interval * (0.8 + (0.4 * Random.Shared.NextDouble()));
            try
            {
                await Task.Delay(jittered, _time, stoppingToken).ConfigureAwait(false);
                await maintain(_services, instance, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // Upkeep is best effort: whatever fails is retried at the next interval.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Log.MaintenanceFailed(_logger, ex, component.Kind.Key, component.Name);
            }
        }
    }
}
