namespace Konduit.Redis;

// Interim HeartbeatManyAsync (runtime slice): one HeartbeatAsync per lease. The store's own batched statement comes
// from its adapter's slice; when that lands, this file is deleted.
public sealed partial class RedisTaskStore
{
    /// <inheritdoc />
    public async Task<HeartbeatManyResult> HeartbeatManyAsync(IReadOnlyList<TaskLease> leases, TimeSpan extension, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateHeartbeats(leases, extension);
        var renewed = new List<TaskLease>(leases.Count);
        var lost = new List<Guid>();
        foreach (var lease in leases)
        {
            try
            {
                renewed.Add(await HeartbeatAsync(lease, extension, cancellationToken).ConfigureAwait(false));
            }
            catch (LeaseLostException)
            {
                lost.Add(lease.TaskId);
            }
        }
        return new HeartbeatManyResult(renewed, lost);
    }
}
