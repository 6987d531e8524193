namespace Konduit;

/// <summary>
/// Keeps the leases a worker holds alive while their tasks run and until their outcome is recorded (issue 11 item 3,
/// issue 13 item 2). The worker tells the renewer when it starts holding a lease (<see cref="Track"/>) and when the
/// lease's outcome has been recorded or given up (<see cref="Release"/>); the renewer reports each renewal and a
/// lost lease through the <see cref="TrackedLease"/>.
/// </summary>
/// <remarks>
/// <para>The default renews through the store: every interval, one <see cref="ITaskStore.HeartbeatManyAsync"/> for
/// all tracked leases that share a lease length, so a worker sends one statement per interval, not one per task.
/// Another channel (a Kafka heartbeat topic, say) implements this interface and replaces the default in DI.</para>
/// <para>Implementations are thread-safe; <see cref="Track"/> and <see cref="Release"/> never block on I/O, and
/// <see cref="Release"/> is idempotent. A renewal in flight when <see cref="Release"/> is called may still
/// complete; its report on a released lease is ignored.</para>
/// </remarks>
public interface ILeaseRenewer
{
    /// <summary>
    /// Starts keeping <paramref name="lease"/> alive: renew it to <see cref="TrackedLease.Extension"/> from now at
    /// least every <see cref="TrackedLease.Interval"/>, reporting each renewal with <see cref="TrackedLease.Renewed"/>,
    /// until <see cref="Release"/>. When the lease turns out to be lost (refused by the store, or not renewed for a
    /// whole lease), call <see cref="TrackedLease.MarkLost"/> and stop renewing it.
    /// </summary>
    void Track(TrackedLease lease);

    /// <summary>The lease's outcome is recorded (or the worker gave the lease up): stop renewing it.</summary>
    void Release(TrackedLease lease);
}
