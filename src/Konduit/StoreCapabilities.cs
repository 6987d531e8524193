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
}
