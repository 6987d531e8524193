namespace Konduit.Hosting.Tests;

/// <summary>
/// Forwards to a real store, adding what the runtime tests need to provoke: heartbeats that stall (so a lease
/// really expires and is reclaimed by the store). Disposal does not dispose the inner store (fixtures own it).
/// </summary>
public sealed class TestStore(ITaskStore inner) : ITaskStore
{
    private volatile TaskCompletionSource? _heartbeatGate;

    public ITaskStore Inner { get; } = inner;

    /// <summary>Heartbeats wait until <see cref="ResumeHeartbeats"/>.</summary>
    public void StallHeartbeats() => _heartbeatGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void ResumeHeartbeats() => Interlocked.Exchange(ref _heartbeatGate, null)?.TrySetResult();

    public int Heartbeats;

    public string Name => Inner.Name;
    public StoreCapabilities Capabilities => Inner.Capabilities;

    public async Task<TaskLease> HeartbeatAsync(TaskLease lease, TimeSpan extension, CancellationToken cancellationToken = default)
    {
        if (_heartbeatGate is { } gate) await gate.Task.WaitAsync(cancellationToken);
        Interlocked.Increment(ref Heartbeats);
        return await Inner.HeartbeatAsync(lease, extension, cancellationToken);
    }

    public Task<EnqueueResult> EnqueueAsync(EnqueueRequest request, CancellationToken cancellationToken = default) => Inner.EnqueueAsync(request, cancellationToken);
    public Task<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, CancellationToken cancellationToken = default) => Inner.EnqueueManyAsync(requests, cancellationToken);
    public Task<IReadOnlyList<TaskLease>> LeaseAsync(string queue, string workerId, int maxCount, TimeSpan leaseDuration, CancellationToken cancellationToken = default) => Inner.LeaseAsync(queue, workerId, maxCount, leaseDuration, cancellationToken);
    public Task CompleteAsync(TaskLease lease, byte[]? result = null, CancellationToken cancellationToken = default) => Inner.CompleteAsync(lease, result, cancellationToken);
    public Task<IReadOnlyList<Guid>> CompleteManyAsync(IReadOnlyList<TaskCompletion> completions, CancellationToken cancellationToken = default) => Inner.CompleteManyAsync(completions, cancellationToken);
    public Task<FailResult> FailAsync(TaskLease lease, string error, FailOptions? options = null, CancellationToken cancellationToken = default) => Inner.FailAsync(lease, error, options, cancellationToken);
    public Task<IReadOnlyList<ReclaimedTask>> ReclaimExpiredAsync(CancellationToken cancellationToken = default) => Inner.ReclaimExpiredAsync(cancellationToken);
    public Task<bool> CancelAsync(Guid taskId, CancellationToken cancellationToken = default) => Inner.CancelAsync(taskId, cancellationToken);
    public Task RetryAsync(Guid taskId, CancellationToken cancellationToken = default) => Inner.RetryAsync(taskId, cancellationToken);
    public Task<TaskSnapshot> GetAsync(Guid taskId, CancellationToken cancellationToken = default) => Inner.GetAsync(taskId, cancellationToken);
    public Task<TaskPage> QueryAsync(TaskQuery filter, PageRequest? page = null, CancellationToken cancellationToken = default) => Inner.QueryAsync(filter, page, cancellationToken);
    public Task<IReadOnlyList<QueueStats>> GetStatsAsync(CancellationToken cancellationToken = default) => Inner.GetStatsAsync(cancellationToken);
    public Task<IReadOnlyList<PurgedTask>> PurgeAsync(TimeSpan olderThan, IReadOnlyCollection<TaskState>? states = null, string? queue = null, CancellationToken cancellationToken = default) => Inner.PurgeAsync(olderThan, states, queue, cancellationToken);
    public Task<bool> WaitForWorkAsync(string queue, TimeSpan timeout, CancellationToken cancellationToken = default) => Inner.WaitForWorkAsync(queue, timeout, cancellationToken);
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
