namespace Konduit;

/// <summary>
/// Optional features a store declares. The core and the conformance suite branch on these flags, never on
/// which backend a store is. Every store must implement the whole core contract regardless of flags.
/// </summary>
public sealed record StoreCapabilities
{
    /// <summary>The store can enqueue inside a caller's own database transaction: it implements <see cref="ITransactionalTaskStore"/> (producers call <c>IKonduitClient.EnqueueAsync(request, transaction)</c>).</summary>
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

    /// <summary>
    /// <see cref="ITaskStore.EnqueueManyAsync"/> is all-or-nothing for a batch that spans several queues, as it always
    /// is for a batch within one queue. Without this flag (Redis, whose atomic unit is a queue's slot) a batch
    /// spanning queues is applied queue by queue: each queue's part is stored whole or not at all, but a failure
    /// may leave some queues' parts stored, and a reader may see one queue's part before another's.
    /// </summary>
    public bool AtomicCrossQueueBatches { get; init; }

    /// <summary>
    /// Every lease takes the first due pending tasks in lease order: higher priority first, and among equal
    /// priorities as <see cref="OrdersByRunAt"/> says. Without it (the hybrid store's opt-in ClaimIds dispatch, ADR
    /// 007) a lease may return any due pending task ahead of a higher-priority or earlier one; what it returns is
    /// still sorted in lease order, and fencing, exactly-once and never-twice hold as for every store.
    /// </summary>
    public bool StrictLeaseOrder { get; init; }

    /// <summary>
    /// How much longer than asked <see cref="ITaskStore.ApplyRetentionAsync"/> may keep a finished task: zero for a
    /// store that deletes row by row; one day for the Postgres store, which drops its history a UTC day (a partition) at a
    /// time. Exact deletes by age are always <see cref="ITaskStore.PurgeAsync"/>.
    /// </summary>
    public TimeSpan RetentionGranularity { get; init; }
}
