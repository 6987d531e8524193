using Microsoft.Extensions.DependencyInjection;

namespace Konduit.Hosting;

/// <summary>What AddKonduit, AddStore and AddHandler registered; one instance per service collection.</summary>
internal sealed class KonduitRegistry
{
    public KonduitRegistry(string sectionPath) => SectionPath = sectionPath;

    /// <summary>The configuration path of the Konduit section, for validation messages (e.g. <c>Konduit</c>).</summary>
    public string SectionPath { get; }

    public Dictionary<string, StoreRegistration> Stores { get; } = new(StringComparer.OrdinalIgnoreCase);

    public Dictionary<string, EventLogRegistration> EventLogs { get; } = new(StringComparer.OrdinalIgnoreCase);

    public Dictionary<string, HandlerRegistration> Handlers { get; } = new(StringComparer.Ordinal);

    public string RegisteredStoreNames =>
        Stores.Count == 0
            ? "(none: no store adapter is registered)"
            : string.Join(", ", Stores.Keys.Order(StringComparer.OrdinalIgnoreCase));

    public static KonduitRegistry? Find(IServiceCollection services)
    {
        for (var i = services.Count - 1; i >= 0; i--)
        {
            if (services[i].ServiceType == typeof(KonduitRegistry) && services[i].ImplementationInstance is KonduitRegistry registry)
                return registry;
        }
        return null;
    }
}

/// <summary>One store adapter's registration, type-erased.</summary>
internal sealed record StoreRegistration(
    string Name,
    Func<IServiceProvider, ITaskStore> Create,
    Func<IServiceProvider, string, IEnumerable<string>> Validate,
    Func<IServiceProvider, ITaskStore, CancellationToken, Task>? Initialize);

/// <summary>One queue's handler.</summary>
internal sealed record HandlerRegistration(
    string Queue,
    Type HandlerType,
    Func<IServiceProvider, TaskContext, CancellationToken, Task> Invoke);

/// <summary>One event-log adapter's registration, type-erased.</summary>
internal sealed record EventLogRegistration(
    string Name,
    Func<IServiceProvider, ITaskEventLog> Create,
    Func<IServiceProvider, ITaskEventLog, CancellationToken, Task>? Initialize,
    Func<IServiceProvider, ITaskEventLog, CancellationToken, Task>? Maintain = null);
