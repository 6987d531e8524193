using Konduit;
using Konduit.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Konduit: the configured store, the worker runtime, the producer client and diagnostics.</summary>
public static class KonduitServiceCollectionExtensions
{
    /// <summary>
    /// Adds Konduit, configured by <paramref name="configuration"/> (usually <c>Configuration.GetSection("Konduit")</c>;
    /// see <see cref="KonduitOptions"/>). Registers <see cref="ITaskStore"/> (the store named by <c>Konduit:Store</c>),
    /// <see cref="IKonduitClient"/>, the sweeper, the store health check (<c>konduit-store</c>), the <c>Konduit</c>
    /// meter and activity source. Add handlers on the returned builder.
    /// </summary>
    /// <remarks>
    /// <para>
    /// <b>How the store is chosen without code.</b> Adapters register themselves by name
    /// (<c>AddPostgresStore()</c>, <c>AddInMemoryStore()</c>); the core knows none of them. When
    /// <c>Konduit:Store</c> names a store that is not registered yet, this method loads the assembly
    /// <c>Konduit.&lt;Store&gt;</c> (present when the application references the adapter package), reads its
    /// <see cref="KonduitStoreAdapterAttribute"/> and runs the adapter's registration, exactly as its extension
    /// method would. Registration is idempotent, so also calling <c>AddPostgresStore()</c> explicitly is harmless.
    /// The store is picked when services are registered; changing <c>Konduit:Store</c> at run time has no effect.
    /// </para>
    /// <para>
    /// All settings are validated when the host starts (<c>ValidateOnStart</c>): an unknown store name, the store's
    /// own required settings, queue names and per-queue limits. The host fails with messages naming each
    /// configuration key.
    /// </para>
    /// </remarks>
    public static IKonduitBuilder AddKonduit(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);

        var registry = KonduitRegistry.Find(services);
        if (registry is null)
        {
            var path = configuration is IConfigurationSection section ? section.Path : "Konduit";
            registry = new KonduitRegistry(string.IsNullOrEmpty(path) ? "Konduit" : path);
            services.AddSingleton(registry);

            services.AddOptions<KonduitOptions>().Bind(configuration).ValidateOnStart();
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<KonduitOptions>, KonduitOptionsValidator>());
            services.AddMetrics();
            services.TryAddSingleton(TimeProvider.System);
            services.TryAddSingleton<KonduitMetrics>();
            // In-process wake-up: the client signals after an enqueue so a local idle worker leases at once, even on
            // stores without push wake-up. The same per-queue latch the stores use.
            services.TryAddSingleton(sp => new QueueWakeUpSignals(sp.GetRequiredService<TimeProvider>()));
            // Lease renewal for workers (issue 11 item 3): the store's HeartbeatManyAsync unless a component (e.g. a
            // heartbeat channel) registered its own ILeaseRenewer.
            services.TryAddSingleton<ILeaseRenewer>(sp => new StoreLeaseRenewer(sp.GetRequiredService<ITaskStore>(),
                sp.GetRequiredService<TimeProvider>(), sp.GetService<Microsoft.Extensions.Logging.ILoggerFactory>()));
            services.TryAddSingleton<KonduitStoreHost>();
            services.TryAddSingleton<ITaskStore>(sp => sp.GetRequiredService<KonduitStoreHost>().CreateSelectedStore(sp));
            services.TryAddSingleton<IKonduitClient, KonduitClient>();
            services.TryAddSingleton(sp =>
            {
                // The selected event log; its start-up work (migrations) runs in the recorder's flusher, retried,
                // so an event log that is down at start-up never stops the host (issue 6).
                var registration = sp.GetRequiredService<KonduitStoreHost>().SelectedEventLog;
                var log = registration.Create(sp);
                Func<CancellationToken, Task>? initialize = registration.Initialize is { } init ? ct => init(sp, log, ct) : null;
                return new TaskEventRecorder(log, sp.GetRequiredService<IOptions<KonduitOptions>>().Value.EventLogBuffer, initialize,
                    sp.GetService<Microsoft.Extensions.Logging.ILoggerFactory>()?.CreateLogger("Konduit.EventLog"), sp.GetService<System.Diagnostics.Metrics.IMeterFactory>());
            });

            // Initializer first: it runs the store's start-up work (migrations) before workers lease.
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, KonduitStoreInitializer>());
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, KonduitSweeper>());
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, KonduitEventLogMaintenance>());
            services.AddHealthChecks().AddCheck<KonduitStoreHealthCheck>("konduit-store", HealthStatus.Unhealthy, ["konduit", "store"]);
        }

        var builder = new KonduitBuilder(services, configuration, registry);
        var storeName = configuration[nameof(KonduitOptions.Store)];
        if (!string.IsNullOrWhiteSpace(storeName) && !registry.Stores.ContainsKey(storeName))
            KonduitStoreDiscovery.TryRegister(builder, storeName);
        var eventLogName = configuration[nameof(KonduitOptions.EventLog)];
        if (!string.IsNullOrWhiteSpace(eventLogName) && !registry.EventLogs.ContainsKey(eventLogName))
            KonduitEventLogDiscovery.TryRegister(builder, eventLogName);
        return builder;
    }
}
