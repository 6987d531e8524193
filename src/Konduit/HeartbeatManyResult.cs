namespace Konduit;

/// <summary>The outcome of <see cref="ITaskStore.HeartbeatManyAsync"/>.</summary>
/// <param name="Renewed">The leases that were still valid, each with its new <see cref="TaskLease.ExpiresAt"/>, in input order.</param>
/// <param name="Lost">The ids of the tasks whose lease was no longer valid (nothing changed for them), in input order.</param>
public sealed record HeartbeatManyResult(IReadOnlyList<TaskLease> Renewed, IReadOnlyList<Guid> Lost);
