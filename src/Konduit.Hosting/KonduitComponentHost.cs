using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace Konduit.Hosting;

/// <summary>
/// The components configuration selects, one instance of each per container. Generic over kinds: the store and the
/// event log are wired here; a heartbeat channel is resolved the same way (<see cref="Instance{TService}"/>).
/// Instances are owned by the service registration that hands them out (<c>ITaskStore</c>, the event recorder).
/// </summary>
internal sealed class KonduitComponentHost
{
    private readonly KonduitRegistry _registry;
    private readonly IOptions<KonduitOptions> _options;
    private readonly IServiceProvider _services;
    private readonly ConcurrentDictionary<KonduitComponentKind, Lazy<object>> _instances = new();

    public KonduitComponentHost(KonduitRegistry registry, IOptions<KonduitOptions> options, IServiceProvider services)
    {
        _registry = registry;
        _options = options;
        _services = services;
    }

    /// <summary>The kinds this runtime composes, in start-up order.</summary>
    public static IReadOnlyList<KonduitComponentKind> Kinds => KonduitComponentKind.BuiltIn;

    /// <summary>The name configuration selects for <paramref name="kind"/>, or null (reading it validates the Konduit section).</summary>
    public string? SelectedName(KonduitComponentKind kind) => SelectedName(_options.Value, kind);

    public static string? SelectedName(KonduitOptions options, KonduitComponentKind kind) =>
        kind.Key switch
        {
            KonduitComponentKind.StoreKey => options.Store,
            KonduitComponentKind.EventLogKey => options.EventLog,
            KonduitComponentKind.HeartbeatsKey => options.Heartbeats,
            _ => null,
        } is { Length: > 0 } name && !string.IsNullOrWhiteSpace(name) ? name : null;

    public bool IsSelected(KonduitComponentKind kind) => SelectedName(kind) is not null;

    /// <summary>The selected component of <paramref name="kind"/>.</summary>
    /// <exception cref="InvalidOperationException">None is selected, or the name is not registered.</exception>
    public KonduitComponent Selected(KonduitComponentKind kind)
    {
        var name = SelectedName(kind);
        if (name is not null && _registry.Components.TryGet(kind, name, out var component)) return component;
        throw new InvalidOperationException(KonduitOptionsValidator.UnknownComponent(_registry, kind, name));
    }

    /// <summary>The one instance of the selected component of <paramref name="kind"/>, created on first use.</summary>
    public object Instance(KonduitComponentKind kind) =>
        _instances.GetOrAdd(kind, k => new Lazy<object>(() => Selected(k).Create(_services))).Value;

    /// <summary>The selected component of <paramref name="kind"/> as <typeparamref name="TService"/>, or null when none is selected.</summary>
    /// <exception cref="InvalidOperationException">The selected component does not provide <typeparamref name="TService"/>.</exception>
    public TService? Instance<TService>(KonduitComponentKind kind) where TService : class
    {
        if (!IsSelected(kind)) return null;
        var component = Selected(kind);
        if (!typeof(TService).IsAssignableFrom(component.ServiceType))
        {
            throw new InvalidOperationException(
                $"{_registry.SectionPath}:{kind.Key} = '{component.Name}' provides {component.ServiceType.Name}, not {typeof(TService).Name}: the adapter registered it as the wrong kind.");
        }
        return (TService)Instance(kind);
    }
}
