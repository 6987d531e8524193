namespace Konduit;

/// <summary>
/// One task <see cref="ITaskStore.ReclaimExpiredAsync"/> took back from an expired lease: enough to record the
/// transition (an event log, a metric) without reading the task again.
/// </summary>
/// <param name="TaskId">The task.</param>
/// <param name="Queue">Its queue.</param>
/// <param name="Tenant">Its tenant, if any.</param>
/// <param name="Attempt">The attempt whose lease expired.</param>
/// <param name="LeaseToken">The fencing token of the expired lease (no longer valid).</param>
/// <param name="WorkerId">The worker that held the expired lease.</param>
/// <param name="State"><see cref="TaskState.Pending"/> when the task will run again, <see cref="TaskState.Failed"/>
/// when that was its last attempt and it was dead-lettered.</param>
public sealed record ReclaimedTask(Guid TaskId, string Queue, string? Tenant, int Attempt, long LeaseToken, string? WorkerId, TaskState State);

/// <summary>One task <see cref="ITaskStore.PurgeAsync"/> deleted.</summary>
/// <param name="TaskId">The task.</param>
/// <param name="Queue">Its queue.</param>
/// <param name="Tenant">Its tenant, if any.</param>
/// <param name="State">The terminal state it was in.</param>
public sealed record PurgedTask(Guid TaskId, string Queue, string? Tenant, TaskState State);
