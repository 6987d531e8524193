namespace Konduit;

/// <summary>The outcome of <see cref="ITaskStore.CompleteAndLeaseAsync"/>.</summary>
/// <param name="Completed">
/// Whether the completion was recorded. False means its lease was no longer valid (a stale token, an expired or
/// canceled lease), which is not an error: nothing changed for that task, as in <see cref="ITaskStore.CompleteManyAsync"/>.
/// </param>
/// <param name="Leases">The tasks leased by the call, in lease order (empty when nothing was due or the queue is paused).</param>
public sealed record CompleteAndLeaseResult(bool Completed, IReadOnlyList<TaskLease> Leases);
