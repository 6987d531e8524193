namespace Konduit;

/// <summary>
/// Optional features a store declares. The core and the conformance suite branch on these flags, never on
/// which backend a store is. Every store must implement the whole core contract regardless of flags.
/// </summary>
public sealed record StoreCapabilities
{
    /// <summary>The store can enqueue inside a caller's own database transaction (store-specific API).</summary>
    public bool TransactionalEnqueue { get; init; }

    /// <summary><see cref="ITaskStore.WaitForWorkAsync"/> is woken by the store when tasks arrive, not just by its timeout.</summary>
    public bool PushWakeUp { get; init; }

    /// <summary>
    /// Among due tasks of equal priority, leases follow run-at, then enqueue order. Every store leases higher
    /// priority first and equal-priority tasks in the order they became due; a store without this flag (a log-based
    /// one such as Redis Streams) hands out a task enqueued with a run-at in the past in enqueue order, not by its
    /// run-at.
    /// </summary>
    public bool OrdersByRunAt { get; init; }
}
