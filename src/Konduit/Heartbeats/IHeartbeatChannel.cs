namespace Konduit.Heartbeats;

/// <summary>
/// Carries lease heartbeats from workers to lease monitors off the task store (issue 12, ADR 009): a worker publishes
/// without waiting, a monitor consumes in a group whose members split the heartbeats by task. The conformance suite
/// (<c>HeartbeatChannelConformance</c>) is its specification.
/// </summary>
public interface IHeartbeatChannel : IAsyncDisposable
{
    /// <summary>
    /// Queues <paramref name="heartbeat"/> for publishing, keyed by task id (so one task's heartbeats arrive in order),
    /// and returns at once: never waits for the network. False when the channel cannot take it now (its queue is
    /// full, or it is failing); the caller then renews through the store. Bad input throws <see cref="ArgumentException"/>.
    /// </summary>
    bool TryPublish(LeaseHeartbeat heartbeat);

    /// <summary>
    /// False while publishing is failing (a delivery failed and none has succeeded since, or the servers are
    /// unreachable): workers renew through the store until it is true again.
    /// </summary>
    bool IsPublishing { get; }

    /// <summary>
    /// Consumes as one member of the channel's monitor group until <paramref name="cancellationToken"/> is canceled,
    /// passing each heartbeat of the partitions this member holds to <paramref name="observer"/>, in order per task,
    /// and each change of the partitions it holds. Starts from the newest heartbeats (or the group's committed
    /// position): a member learns about a lease from its next heartbeat.
    /// </summary>
    Task ConsumeAsync(IHeartbeatObserver observer, CancellationToken cancellationToken);
}

/// <summary>What a consuming monitor is told (calls come from one thread at a time).</summary>
public interface IHeartbeatObserver
{
    /// <summary>A heartbeat of partition <paramref name="partition"/> was received.</summary>
    void OnHeartbeat(LeaseHeartbeat heartbeat, int partition);

    /// <summary>This member now holds <paramref name="partitions"/> (newly assigned); it must wait a liveness window before judging them.</summary>
    void OnAssigned(IReadOnlyCollection<int> partitions);

    /// <summary>This member no longer holds <paramref name="partitions"/>: forget their leases.</summary>
    void OnRevoked(IReadOnlyCollection<int> partitions);
}
