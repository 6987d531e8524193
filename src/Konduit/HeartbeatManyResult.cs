namespace Konduit;

/// <summary>The outcome of a batched renewal (<c>HeartbeatManyAsync</c>).</summary>
/// <param name="Renewed">The still-valid leases with their new <see cref="TaskLease.ExpiresAt"/>, in input order.</param>
/// <param name="Lost">The ids of the leases that were no longer valid (expired, reclaimed, finished or canceled).</param>
public sealed record HeartbeatManyResult(IReadOnlyList<TaskLease> Renewed, IReadOnlyList<Guid> Lost);
