namespace Konduit.Hosting;

/// <summary>
/// A kind of pluggable component: one configuration key selects one component of the kind by name
/// (<c>Konduit:Store</c> = <c>Postgres</c>), and the chosen component's settings live in a section named after it
/// (<c>Konduit:Postgres</c>, <c>Konduit:PostgresEventLog</c>). The mechanism does not know the service a kind
/// provides: each registration names its own service type (ADR 008).
/// </summary>
public sealed class KonduitComponentKind : IEquatable<KonduitComponentKind>
{
    /// <summary>The key of the store kind, for <see cref="KonduitComponentAttribute"/>.</summary>
    public const string StoreKey = "Store";

    /// <summary>The key of the event-log kind, for <see cref="KonduitComponentAttribute"/>.</summary>
    public const string EventLogKey = "EventLog";

    /// <summary>The key of the heartbeat-channel kind, for <see cref="KonduitComponentAttribute"/>.</summary>
    public const string HeartbeatsKey = "Heartbeats";

    /// <summary>Creates a kind.</summary>
    /// <param name="key">The configuration key that selects a component, e.g. <c>Store</c>; also the kind's name.</param>
    /// <param name="sectionSuffix">Appended to a component's name to name its settings section (empty for stores).</param>
    /// <param name="required">Whether a configuration must select one (the store) or may select none.</param>
    /// <exception cref="ArgumentException"><paramref name="key"/> is not a plain identifier.</exception>
    public KonduitComponentKind(string key, string sectionSuffix, bool required)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(key);
        ArgumentNullException.ThrowIfNull(sectionSuffix);
        if (!KonduitComponentRegistry.IsIdentifier(key))
            throw new ArgumentException($"A component kind's key must be ASCII letters and digits; got '{key}'.", nameof(key));
        Key = key;
        SectionSuffix = sectionSuffix;
        Required = required;
    }

    /// <summary>The store (<c>ITaskStore</c>), selected by <c>Konduit:Store</c>, settings in <c>Konduit:&lt;Name&gt;</c>. Required.</summary>
    public static KonduitComponentKind Store { get; } = new(StoreKey, "", required: true);

    /// <summary>The event log (<c>ITaskEventLog</c>), selected by <c>Konduit:EventLog</c>, settings in <c>Konduit:&lt;Name&gt;EventLog</c>.</summary>
    public static KonduitComponentKind EventLog { get; } = new(EventLogKey, "EventLog", required: false);

    /// <summary>
    /// The heartbeat channel that renews the worker's leases (the runtime's lease-renewal seam), selected by
    /// <c>Konduit:Heartbeats</c>, settings in <c>Konduit:&lt;Name&gt;Heartbeats</c>. None selected: leases are renewed
    /// through the store.
    /// </summary>
    public static KonduitComponentKind Heartbeats { get; } = new(HeartbeatsKey, "Heartbeats", required: false);

    /// <summary>The kinds this package defines.</summary>
    public static IReadOnlyList<KonduitComponentKind> BuiltIn { get; } = [Store, EventLog, Heartbeats];

    /// <summary>The configuration key that selects a component of this kind (<c>Store</c>).</summary>
    public string Key { get; }

    /// <summary>Appended to a component's name to name its settings section.</summary>
    public string SectionSuffix { get; }

    /// <summary>Whether a configuration must select a component of this kind.</summary>
    public bool Required { get; }

    /// <summary>The settings section of component <paramref name="name"/>, relative to the Konduit section (<c>PostgresEventLog</c>).</summary>
    public string SectionName(string name) => name + SectionSuffix;

    /// <inheritdoc/>
    public bool Equals(KonduitComponentKind? other) => other is not null && string.Equals(Key, other.Key, StringComparison.OrdinalIgnoreCase);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as KonduitComponentKind);

    /// <inheritdoc/>
    public override int GetHashCode() => StringComparer.OrdinalIgnoreCase.GetHashCode(Key);

    /// <inheritdoc/>
    public override string ToString() => Key;
}
