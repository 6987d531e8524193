using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Konduit.Hosting;

/// <summary>What AddKonduitStore, AddKonduit and AddHandler registered; one instance per service collection.</summary>
internal sealed class KonduitRegistry
{
    public KonduitRegistry(KonduitComponentRegistry components, IConfiguration configuration)
    {
        Components = components;
        Configuration = configuration;
    }

    /// <summary>Stores, event logs, heartbeat channels: every component adapters registered.</summary>
    public KonduitComponentRegistry Components { get; }

    /// <summary>The Konduit section, checked for keys that do not parse or do not exist.</summary>
    public IConfiguration Configuration { get; }

    /// <summary>The configuration path of the Konduit section, for validation messages (e.g. <c>Konduit</c>).</summary>
    public string SectionPath => Components.SectionPath;

    /// <summary>Whether AddKonduit added the worker runtime (AddKonduitStore alone registers no hosted service).</summary>
    public bool HasRuntime { get; set; }

    public Dictionary<string, HandlerRegistration> Handlers { get; } = new(StringComparer.Ordinal);

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

/// <summary>One queue's handler.</summary>
internal sealed record HandlerRegistration(
    string Queue,
    Type HandlerType,
    Func<IServiceProvider, TaskContext, CancellationToken, Task> Invoke);
