namespace Konduit.PostgresRedis;

// Interim HeartbeatManyAsync (runtime slice): Postgres decides every lease, so renewal goes to the truth store like
// HeartbeatAsync does. The postgres slice owns the final version; when that lands, this file is deleted.
public sealed partial class PostgresRedisTaskStore
{
    /// <inheritdoc />
    public Task<HeartbeatManyResult> HeartbeatManyAsync(IReadOnlyList<TaskLease> leases, TimeSpan extension, CancellationToken cancellationToken = default) =>
        _inner.HeartbeatManyAsync(leases, extension, cancellationToken);
}
