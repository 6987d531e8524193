namespace Konduit;

/// <summary>The outcome of a batched heartbeat (<c>HeartbeatManyAsync</c>).</summary>
/// <param name="Renewed">The still-valid leases with their new <see cref="TaskLease.ExpiresAt"/>, in input order.</param>
/// <param name="Lost">The ids whose lease was no longer valid, in input order.</param>
public sealed record HeartbeatManyResult(IReadOnlyList<TaskLease> Renewed, IReadOnlyList<Guid> Lost);
