using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Konduit.Hosting;

/// <summary>Creates the selected store (recorded into the event log when one is selected) and gates workers until its start-up step has run.</summary>
internal sealed class KonduitStoreHost
{
    private readonly KonduitComponentHost _components;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public KonduitStoreHost(KonduitComponentHost components) => _components = components;

    /// <summary>Completes once the store's start-up step succeeded.</summary>
    public Task Ready => _ready.Task;

    public KonduitComponent Selected => _components.Selected(KonduitComponentKind.Store);

    /// <summary>The store itself, without the event recording.</summary>
    public ITaskStore RawStore => _components.Instance<ITaskStore>(KonduitComponentKind.Store)
        ?? throw new InvalidOperationException("No store is selected.");

    public ITaskStore CreateSelectedStore(IServiceProvider services)
    {
        var store = RawStore;
        // With "EventLog" configured, every accepted transition is also recorded (issue 6, ADR 005).
        if (!_components.IsSelected(KonduitComponentKind.EventLog)) return store;
        return new EventRecordingTaskStore(store, services.GetRequiredService<TaskEventRecorder>(), services.GetService<TimeProvider>());
    }

    /// <summary>
    /// The store once its start-up step succeeded, for the node's background loops (sweeper, gauges); null when start-up
    /// failed or <paramref name="stoppingToken"/> fired first (the initializer and the workers report why).
    /// </summary>
    public async Task<ITaskStore?> WhenReadyAsync(IServiceProvider services, CancellationToken stoppingToken)
    {
        try
        {
            await Ready.WaitAsync(stoppingToken).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Start-up failures are reported by the initializer; a background loop just does not start.
        catch (Exception)
#pragma warning restore CA1031
        {
            return null;
        }
        return services.GetRequiredService<ITaskStore>();
    }

    public void MarkReady() => _ready.TrySetResult();

    public void MarkFailed(Exception ex) => _ready.TrySetException(ex);
}

/// <summary>The configured store's start-up step and migration, for the runtime and for operator tools (ADR 008).</summary>
public interface IKonduitStoreStartup
{
    /// <summary>
    /// Runs the selected store's start-up step: checks that its server answers with the configured credentials and
    /// migrates when its settings ask for it (e.g. <c>Konduit:Postgres:MigrateOnStartup</c>). AddKonduit runs it before
    /// any worker leases; a failure is a <see cref="KonduitStartupException"/> naming the key to fix.
    /// </summary>
    Task StartAsync(CancellationToken cancellationToken = default);

    /// <summary>Creates or upgrades the selected store's schema now, whatever its settings say. False when the store has no schema.</summary>
    Task<bool> MigrateAsync(CancellationToken cancellationToken = default);
}

internal sealed class KonduitStoreStartup : IKonduitStoreStartup
{
    private readonly KonduitStoreHost _host;
    private readonly IServiceProvider _services;

    public KonduitStoreStartup(KonduitStoreHost host, IServiceProvider services)
    {
        _host = host;
        _services = services;
    }

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        var component = _host.Selected;
        if (component.Start is { } start) await start(_services, _host.RawStore, cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> MigrateAsync(CancellationToken cancellationToken = default)
    {
        var component = _host.Selected;
        if (component.Migrate is not { } migrate) return false;
        await migrate(_services, _host.RawStore, cancellationToken).ConfigureAwait(false);
        return true;
    }
}

/// <summary>Runs the selected store's start-up step (and any selected heartbeat channel's) before workers lease.</summary>
internal sealed class KonduitStoreInitializer : IHostedService
{
    private readonly KonduitStoreHost _host;
    private readonly KonduitComponentHost _components;
    private readonly IKonduitStoreStartup _startup;
    private readonly KonduitRegistry _registry;
    private readonly IOptions<KonduitOptions> _options;
    private readonly IServiceProvider _services;
    private readonly ILogger _logger;

    public KonduitStoreInitializer(KonduitStoreHost host, KonduitComponentHost components, IKonduitStoreStartup startup, KonduitRegistry registry,
        IOptions<KonduitOptions> options, IServiceProvider services, ILoggerFactory? loggerFactory = null)
    {
        _host = host;
        _components = components;
        _startup = startup;
        _registry = registry;
        _options = options;
        _services = services;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Konduit.Hosting");
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            var store = _services.GetRequiredService<ITaskStore>();
            await _startup.StartAsync(cancellationToken).ConfigureAwait(false);
            // Other kinds whose start-up step must succeed before work starts. The event log's runs in its recorder,
            // retried in the background: an event log that is down never stops the host (issue 6).
            foreach (var kind in KonduitComponentHost.Kinds)
            {
                if (kind.Equals(KonduitComponentKind.Store) || kind.Equals(KonduitComponentKind.EventLog) || !_components.IsSelected(kind)) continue;
                if (_components.Selected(kind).Start is { } start)
                    await start(_services, _components.Instance(kind), cancellationToken).ConfigureAwait(false);
            }
            Log.StoreReady(_logger, _host.Selected.Name, store.Name, store.Capabilities.PushWakeUp);
            WarnAboutQueuesWithoutHandler();
            _host.MarkReady();
        }
        catch (Exception ex)
        {
            _host.MarkFailed(ex);
            throw;
        }
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        // Workers waiting for readiness of a host that never started must not hang.
        _host.MarkFailed(new OperationCanceledException("The host stopped before the Konduit store was ready."));
        return Task.CompletedTask;
    }

    private void WarnAboutQueuesWithoutHandler()
    {
        // Settings for a queue nobody handles here: a typo in the queue name, or a producer-only node (then harmless).
        foreach (var queue in _options.Value.Queues.Keys.Order(StringComparer.Ordinal))
        {
            if (!_registry.Handlers.Keys.Any(h => string.Equals(h, queue, StringComparison.OrdinalIgnoreCase)))
                Log.QueueWithoutHandler(_logger, $"{_registry.SectionPath}:Queues:{queue}", queue);
        }
    }
}
