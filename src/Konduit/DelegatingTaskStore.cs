using Konduit.Storage;

namespace Konduit;

/// <summary>
/// A store that forwards every <see cref="ITaskStore"/> member to <see cref="Inner"/>: the base of decorators
/// (event recording, test and benchmark probes, fault injection). Override only what the decorator changes; a member
/// added to the contract is forwarded here once, for every decorator.
/// </summary>
/// <remarks>
/// It lives in the core, next to the contract, so that decorators in any package (hosting, adapters, tests,
/// benchmarks) share it without referencing the runtime. <see cref="DisposeAsync"/> disposes the inner store unless
/// the decorator was created with <c>ownsInner: false</c>.
/// </remarks>
public abstract class DelegatingTaskStore : ITransactionalTaskStore
{
    private readonly bool _ownsInner;

    /// <summary>Wraps <paramref name="inner"/>.</summary>
    /// <param name="inner">The store every call is forwarded to.</param>
    /// <param name="ownsInner">Whether disposing this decorator disposes <paramref name="inner"/>.</param>
    protected DelegatingTaskStore(ITaskStore inner, bool ownsInner = true)
    {
        ArgumentNullException.ThrowIfNull(inner);
        Inner = inner;
        _ownsInner = ownsInner;
    }

    /// <summary>The wrapped store.</summary>
    public ITaskStore Inner { get; }

    /// <inheritdoc />
    public virtual string Name => Inner.Name;

    /// <inheritdoc />
    public virtual StoreCapabilities Capabilities => Inner.Capabilities;

    /// <inheritdoc />
    public virtual Task<EnqueueResult> EnqueueAsync(EnqueueRequest request, CancellationToken cancellationToken = default) =>
        Inner.EnqueueAsync(request, cancellationToken);

    /// <inheritdoc />
    public virtual Task<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, CancellationToken cancellationToken = default) =>
        Inner.EnqueueManyAsync(requests, cancellationToken);

    /// <summary>
    /// Forwards a transactional enqueue to <see cref="Inner"/>. Every decorator has this member, whatever it wraps:
    /// whether the store can do it is <see cref="StoreCapabilities.TransactionalEnqueue"/>, and an inner store
    /// without it makes the call fail with <see cref="NotSupportedException"/>.
    /// </summary>
    /// <param name="requests">The tasks.</param>
    /// <param name="transaction">An open transaction on a connection to the store's own database.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <exception cref="NotSupportedException">The inner store does not enqueue in a caller's transaction.</exception>
    public virtual Task<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, System.Data.Common.DbTransaction transaction, CancellationToken cancellationToken = default) =>
        Inner is ITransactionalTaskStore transactional
            ? transactional.EnqueueManyAsync(requests, transaction, cancellationToken)
            : throw TaskValidation.TransactionalEnqueueNotSupported(Inner);

    /// <inheritdoc />
    public virtual Task<IReadOnlyList<TaskLease>> LeaseAsync(string queue, string workerId, int maxCount, TimeSpan leaseDuration, CancellationToken cancellationToken = default) =>
        Inner.LeaseAsync(queue, workerId, maxCount, leaseDuration, cancellationToken);

    /// <inheritdoc />
    public virtual Task<TaskLease> HeartbeatAsync(TaskLease lease, TimeSpan extension, CancellationToken cancellationToken = default) =>
        Inner.HeartbeatAsync(lease, extension, cancellationToken);

    /// <inheritdoc />
    public virtual Task<HeartbeatManyResult> HeartbeatManyAsync(IReadOnlyList<TaskLease> leases, TimeSpan extension, CancellationToken cancellationToken = default) =>
        Inner.HeartbeatManyAsync(leases, extension, cancellationToken);

    /// <inheritdoc />
    public virtual Task CompleteAsync(TaskLease lease, byte[]? result = null, CancellationToken cancellationToken = default) =>
        Inner.CompleteAsync(lease, result, cancellationToken);

    /// <inheritdoc />
    public virtual Task<IReadOnlyList<Guid>> CompleteManyAsync(IReadOnlyList<TaskCompletion> completions, CancellationToken cancellationToken = default) =>
        Inner.CompleteManyAsync(completions, cancellationToken);

    /// <inheritdoc />
    public virtual Task<CompleteAndLeaseResult> CompleteAndLeaseAsync(TaskCompletion completion, string workerId, int maxCount, TimeSpan leaseDuration,
        CancellationToken cancellationToken = default) =>
        Inner.CompleteAndLeaseAsync(completion, workerId, maxCount, leaseDuration, cancellationToken);

    /// <inheritdoc />
    public virtual Task<FailResult> FailAsync(TaskLease lease, string error, FailOptions? options = null, CancellationToken cancellationToken = default) =>
        Inner.FailAsync(lease, error, options, cancellationToken);

    /// <inheritdoc />
    public virtual Task<IReadOnlyList<ReclaimedTask>> ReclaimExpiredAsync(CancellationToken cancellationToken = default) =>
        Inner.ReclaimExpiredAsync(cancellationToken);

    /// <inheritdoc />
    public virtual Task<ReclaimedTask?> ExpireLeaseAsync(Guid taskId, long leaseToken, CancellationToken cancellationToken = default) =>
        Inner.ExpireLeaseAsync(taskId, leaseToken, cancellationToken);

    /// <inheritdoc />
    public virtual Task<bool> CancelAsync(Guid taskId, CancellationToken cancellationToken = default) =>
        Inner.CancelAsync(taskId, cancellationToken);

    /// <inheritdoc />
    public virtual Task RedriveAsync(Guid taskId, CancellationToken cancellationToken = default) =>
        Inner.RedriveAsync(taskId, cancellationToken);

    /// <inheritdoc />
    public virtual Task<IReadOnlyList<Guid>> CancelManyAsync(TaskQuery filter, int maxCount, CancellationToken cancellationToken = default) =>
        Inner.CancelManyAsync(filter, maxCount, cancellationToken);

    /// <inheritdoc />
    public virtual Task<IReadOnlyList<Guid>> RedriveManyAsync(TaskQuery filter, int maxCount, CancellationToken cancellationToken = default) =>
        Inner.RedriveManyAsync(filter, maxCount, cancellationToken);

    /// <inheritdoc />
    public virtual Task PauseQueueAsync(string queue, CancellationToken cancellationToken = default) =>
        Inner.PauseQueueAsync(queue, cancellationToken);

    /// <inheritdoc />
    public virtual Task ResumeQueueAsync(string queue, CancellationToken cancellationToken = default) =>
        Inner.ResumeQueueAsync(queue, cancellationToken);

    /// <inheritdoc />
    public virtual Task<IReadOnlyCollection<string>> GetPausedQueuesAsync(CancellationToken cancellationToken = default) =>
        Inner.GetPausedQueuesAsync(cancellationToken);

    /// <inheritdoc />
    public virtual Task<TaskSnapshot> GetAsync(Guid taskId, CancellationToken cancellationToken = default) =>
        Inner.GetAsync(taskId, cancellationToken);

    /// <inheritdoc />
    public virtual Task<TaskPage> QueryAsync(TaskQuery filter, PageRequest? page = null, CancellationToken cancellationToken = default) =>
        Inner.QueryAsync(filter, page, cancellationToken);

    /// <inheritdoc />
    public virtual Task<IReadOnlyList<QueueStats>> GetStatsAsync(CancellationToken cancellationToken = default) =>
        Inner.GetStatsAsync(cancellationToken);

    /// <inheritdoc />
    public virtual Task<IReadOnlyList<PurgedTask>> PurgeAsync(TimeSpan olderThan, IReadOnlyCollection<TaskState>? states = null, string? queue = null, CancellationToken cancellationToken = default) =>
        Inner.PurgeAsync(olderThan, states, queue, cancellationToken);

    /// <inheritdoc />
    public virtual Task<IReadOnlyList<PurgedTask>> ApplyRetentionAsync(TimeSpan olderThan, CancellationToken cancellationToken = default) =>
        Inner.ApplyRetentionAsync(olderThan, cancellationToken);

    /// <inheritdoc />
    public virtual Task<bool> WaitForWorkAsync(string queue, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        Inner.WaitForWorkAsync(queue, timeout, cancellationToken);

    /// <inheritdoc />
    public virtual Task<string?> ProbeAsync(CancellationToken cancellationToken = default) => Inner.ProbeAsync(cancellationToken);

    /// <summary>Disposes the inner store when this decorator owns it.</summary>
    public virtual async ValueTask DisposeAsync()
    {
        if (_ownsInner) await Inner.DisposeAsync().ConfigureAwait(false);
        GC.SuppressFinalize(this);
    }
}
