using Konduit;
using Konduit.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Konduit: the configured components (store, event log, …), and with AddKonduit the worker runtime.</summary>
public static class KonduitServiceCollectionExtensions
{
    /// <summary>
    /// Adds Konduit, configured by <paramref name="configuration"/> (usually <c>Configuration.GetSection("Konduit")</c>;
    /// see <see cref="KonduitOptions"/>): everything <see cref="AddKonduitStore"/> registers, plus
    /// <see cref="IKonduitClient"/>, the start-up step and readiness gate, the sweeper, the components' upkeep, the
    /// <c>Konduit</c> meter and activity source. Add handlers on the returned builder.
    /// </summary>
    /// <remarks>
    /// <para>
    /// <b>How components are chosen without code.</b> Adapters register themselves by kind and name
    /// (<c>AddPostgresStore()</c>, <c>AddCassandraEventLog()</c>); the core knows none of them. When
    /// <c>Konduit:Store</c> (or <c>Konduit:EventLog</c>, <c>Konduit:Heartbeats</c>) names a component that is not
    /// registered yet, this method loads the assembly <c>Konduit.&lt;Name&gt;</c> (present when the application
    /// references the adapter package), reads its <see cref="KonduitComponentAttribute"/>s and runs the adapter's
    /// registration, exactly as its extension method would. Registration is idempotent. Components are picked when
    /// services are registered; changing the selection at run time has no effect (ADR 008).
    /// </para>
    /// <para>
    /// All settings are checked when the host starts (<c>ValidateOnStart</c>): unknown keys and values that do not
    /// parse, an unknown component name, each selected component's own settings, queue names and per-queue limits;
    /// then the store's start-up step checks that its server answers. The host fails with messages naming each
    /// configuration key.
    /// </para>
    /// </remarks>
    public static IKonduitBuilder AddKonduit(this IServiceCollection services, IConfiguration configuration)
    {
        var builder = AddKonduitCore(services, configuration);
        var registry = builder.Registry;
        if (!registry.HasRuntime)
        {
            registry.HasRuntime = true;
            services.AddMetrics();
            services.TryAddSingleton<KonduitMetrics>();
            // In-process wake-up: the client signals after an enqueue so a local idle worker leases at once, even on
            // stores without push wake-up. The same per-queue latch the stores use.
            services.TryAddSingleton(sp => new QueueWakeUpSignals(sp.GetRequiredService<TimeProvider>()));
            // Lease renewal for workers (issue 11 item 3): the heartbeat channel selected by Konduit:Heartbeats (a
            // component, ADR 008), else the store's HeartbeatManyAsync.
            services.TryAddSingleton<ILeaseRenewer>(sp =>
                sp.GetRequiredService<KonduitComponentHost>().Instance<ILeaseRenewer>(KonduitComponentKind.Heartbeats)
                ?? new StoreLeaseRenewer(sp.GetRequiredService<ITaskStore>(), sp.GetRequiredService<TimeProvider>(), sp.GetService<ILoggerFactory>()));
            // Transactional enqueues get their events and metric once their commit is seen.
            services.TryAddSingleton(sp => new EnqueueCommitWatcher(sp.GetRequiredService<TimeProvider>(), sp.GetService<ILoggerFactory>()));
            services.TryAddSingleton<IKonduitClient, KonduitClient>();
            // Initializer first: it runs the store's start-up step (connectivity, migrations) before workers lease.
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, KonduitStoreInitializer>());
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, KonduitSweeper>());
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, KonduitQueueGauges>());
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, KonduitComponentMaintenance>());
        }
        return builder;
    }

    /// <summary>
    /// Adds the configured store only, for operator tools and admin code: <see cref="ITaskStore"/> (the store named by
    /// <c>Konduit:Store</c>, recording into the event log when <c>Konduit:EventLog</c> names one), its start-up step
    /// and migration (<see cref="IKonduitStoreStartup"/>) and its health check (<c>konduit-store</c>). No hosted
    /// workers, sweeper or upkeep: nothing runs until the caller uses the store. Settings are checked as
    /// <see cref="AddKonduit"/> checks them, on first use of the store (or at host start).
    /// </summary>
    /// <returns>A builder for registering adapters explicitly (<c>.AddPostgresStore()</c>); it takes no handlers.</returns>
    public static IKonduitBuilder AddKonduitStore(this IServiceCollection services, IConfiguration configuration) =>
        AddKonduitCore(services, configuration);

    private static KonduitBuilder AddKonduitCore(IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);

        var registry = KonduitRegistry.Find(services);
        if (registry is null)
        {
            registry = new KonduitRegistry(KonduitComponentRegistry.GetOrAdd(services, configuration), configuration);
            services.AddSingleton(registry);

            var checkedRegistry = registry;
            services.AddOptions<KonduitOptions>()
                .Configure(options =>
                {
                    // Before binding: the binder ignores unknown keys and drops dictionary entries that do not convert.
                    var failures = KonduitConfigurationCheck.Run(checkedRegistry);
                    if (failures.Count > 0) throw new OptionsValidationException(Options.Options.DefaultName, typeof(KonduitOptions), failures);
                    configuration.Bind(options);
                })
                .ValidateOnStart();
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<KonduitOptions>, KonduitOptionsValidator>());
            services.TryAddSingleton(TimeProvider.System);
            services.TryAddSingleton<KonduitComponentHost>();
            services.TryAddSingleton<KonduitStoreHost>();
            services.TryAddSingleton<IKonduitStoreStartup, KonduitStoreStartup>();
            services.TryAddSingleton<ITaskStore>(sp => sp.GetRequiredService<KonduitStoreHost>().CreateSelectedStore(sp));
            services.TryAddSingleton(CreateEventRecorder);
            services.AddHealthChecks()
                .AddCheck<KonduitStoreHealthCheck>("konduit-store", HealthStatus.Unhealthy, ["konduit", "store"])
                // One instance: it remembers the dropped count of the previous check.
                .Add(new HealthCheckRegistration("konduit-event-log", sp => sp.GetRequiredService<KonduitEventLogHealthCheck>(),
                    HealthStatus.Degraded, ["konduit", "event-log"]));
            services.TryAddSingleton<KonduitEventLogHealthCheck>();
        }

        var builder = new KonduitBuilder(services, configuration, registry);
        foreach (var kind in KonduitComponentHost.Kinds)
            KonduitComponentDiscovery.RegisterSelected(builder, kind);
        return builder;
    }

    private static TaskEventRecorder CreateEventRecorder(IServiceProvider sp)
    {
        // The selected event log; its start-up step (migrations) runs in the recorder's flusher, retried, so an event
        // log that is down at start-up never stops the host (issue 6).
        var components = sp.GetRequiredService<KonduitComponentHost>();
        var component = components.Selected(KonduitComponentKind.EventLog);
        var log = components.Instance<ITaskEventLog>(KonduitComponentKind.EventLog)!;
        Func<CancellationToken, Task>? initialize = component.Start is { } start ? ct => start(sp, log, ct) : null;
        return new TaskEventRecorder(log, sp.GetRequiredService<IOptions<KonduitOptions>>().Value.EventLogBuffer, initialize,
            sp.GetService<ILoggerFactory>()?.CreateLogger("Konduit.EventLog"), sp.GetService<System.Diagnostics.Metrics.IMeterFactory>());
    }
}
