using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Konduit.Hosting;

/// <summary>Creates the selected store and gates workers until its start-up work has run.</summary>
internal sealed class KonduitStoreHost
{
    private readonly KonduitRegistry _registry;
    private readonly IOptions<KonduitOptions> _options;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public KonduitStoreHost(KonduitRegistry registry, IOptions<KonduitOptions> options)
    {
        _registry = registry;
        _options = options;
    }

    /// <summary>Completes once the store's start-up work succeeded.</summary>
    public Task Ready => _ready.Task;

    public StoreRegistration Selected
    {
        get
        {
            var name = _options.Value.Store;
            if (name is not null && _registry.Stores.TryGetValue(name, out var registration)) return registration;
            throw new InvalidOperationException(
                $"{_registry.SectionPath}:Store = '{name}' is not a registered store. Allowed values: {_registry.RegisteredStoreNames}.");
        }
    }

    public ITaskStore CreateSelectedStore(IServiceProvider services)
    {
        var store = Selected.Create(services);
        // With "EventLog" configured, every accepted transition is also recorded (issue 6, ADR 005).
        if (string.IsNullOrWhiteSpace(_options.Value.EventLog)) return store;
        return new EventRecordingTaskStore(store, services.GetRequiredService<TaskEventRecorder>(), services.GetService<TimeProvider>());
    }

    public EventLogRegistration SelectedEventLog
    {
        get
        {
            var name = _options.Value.EventLog;
            if (name is not null && _registry.EventLogs.TryGetValue(name, out var registration)) return registration;
            var known = _registry.EventLogs.Count == 0 ? "(none: no event-log adapter is registered)" : string.Join(", ", _registry.EventLogs.Keys.Order(StringComparer.OrdinalIgnoreCase));
            throw new InvalidOperationException($"{_registry.SectionPath}:EventLog = '{name}' is not a registered event log. Allowed values: {known}.");
        }
    }

    public void MarkReady() => _ready.TrySetResult();

    public void MarkFailed(Exception ex) => _ready.TrySetException(ex);
}

/// <summary>Runs the selected store's start-up work (e.g. migrations) before workers lease.</summary>
internal sealed partial class KonduitStoreInitializer : IHostedService
{
    private readonly KonduitStoreHost _host;
    private readonly IServiceProvider _services;
    private readonly ILogger _logger;

    public KonduitStoreInitializer(KonduitStoreHost host, IServiceProvider services, ILoggerFactory? loggerFactory = null)
    {
        _host = host;
        _services = services;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Konduit.Hosting");
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            var registration = _host.Selected;
            var store = _services.GetRequiredService<ITaskStore>();
            if (registration.Initialize is { } initialize)
                await initialize(_services, store is EventRecordingTaskStore recording ? recording.Inner : store, cancellationToken).ConfigureAwait(false);
            Log.StoreReady(_logger, registration.Name, store.Name, store.Capabilities.PushWakeUp);
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
}
