namespace Konduit.Hosting.Tests;

/// <summary>
/// Forwards to a real store, adding what the runtime tests need to provoke: heartbeats that stall (so a lease
/// really expires and is reclaimed by the store) and completions that stall (a store whose completions lag), and
/// counting leases and completions. Disposal does not dispose the inner store (fixtures own it).
/// </summary>
public sealed class TestStore(ITaskStore inner) : ITaskStore
{
    private volatile TaskCompletionSource? _heartbeatGate;
    private volatile TaskCompletionSource? _completionGate;
    private int _leased;
    private int _completed;
    private int _maxUnrecorded;

    public ITaskStore Inner { get; } = inner;

    /// <summary>Heartbeats wait until <see cref="ResumeHeartbeats"/>.</summary>
    public void StallHeartbeats() => _heartbeatGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void ResumeHeartbeats() => Interlocked.Exchange(ref _heartbeatGate, null)?.TrySetResult();

    public int Heartbeats;

    /// <summary>Complete and CompleteMany wait until <see cref="ResumeCompletions"/>.</summary>
    public void StallCompletions() => _completionGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void ResumeCompletions() => Interlocked.Exchange(ref _completionGate, null)?.TrySetResult();

    /// <summary>Tasks handed out by LeaseAsync so far.</summary>
    public int Leased => Volatile.Read(ref _leased);

    /// <summary>Tasks the store accepted as completed so far.</summary>
    public int Completed => Volatile.Read(ref _completed);

    /// <summary>The most tasks that were leased at once without a completion (or any other outcome) yet.</summary>
    public int MaxUnrecorded => Volatile.Read(ref _maxUnrecorded);

    public async Task<IReadOnlyList<TaskLease>> LeaseAsync(string queue, string workerId, int maxCount, TimeSpan leaseDuration, CancellationToken cancellationToken = default)
    {
        var leases = await Inner.LeaseAsync(queue, workerId, maxCount, leaseDuration, cancellationToken);
        var leased = Interlocked.Add(ref _leased, leases.Count);
        var unrecorded = leased - Completed;
        int max;
        while (unrecorded > (max = MaxUnrecorded) && Interlocked.CompareExchange(ref _maxUnrecorded, unrecorded, max) != max)
        {
        }
        return leases;
    }

    public async Task CompleteAsync(TaskLease lease, byte[]? result = null, CancellationToken cancellationToken = default)
    {
        if (_completionGate is { } gate) await gate.Task.WaitAsync(cancellationToken);
        await Inner.CompleteAsync(lease, result, cancellationToken);
        Interlocked.Increment(ref _completed);
    }

    public async Task<IReadOnlyList<Guid>> CompleteManyAsync(IReadOnlyList<TaskCompletion> completions, CancellationToken cancellationToken = default)
    {
        if (_completionGate is { } gate) await gate.Task.WaitAsync(cancellationToken);
        var lost = await Inner.CompleteManyAsync(completions, cancellationToken);
        Interlocked.Add(ref _completed, completions.Count - lost.Count);
        return lost;
    }

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
    public Task<FailResult> FailAsync(TaskLease lease, string error, FailOptions? options = null, CancellationToken cancellationToken = default) => Inner.FailAsync(lease, error, options, cancellationToken);
    public Task<IReadOnlyList<ReclaimedTask>> ReclaimExpiredAsync(CancellationToken cancellationToken = default) => Inner.ReclaimExpiredAsync(cancellationToken);
    public Task<bool> CancelAsync(Guid taskId, CancellationToken cancellationToken = default) => Inner.CancelAsync(taskId, cancellationToken);
    public Task RedriveAsync(Guid taskId, CancellationToken cancellationToken = default) => Inner.RedriveAsync(taskId, cancellationToken);
    public Task<TaskSnapshot> GetAsync(Guid taskId, CancellationToken cancellationToken = default) => Inner.GetAsync(taskId, cancellationToken);
    public Task<TaskPage> QueryAsync(TaskQuery filter, PageRequest? page = null, CancellationToken cancellationToken = default) => Inner.QueryAsync(filter, page, cancellationToken);
    public Task<IReadOnlyList<QueueStats>> GetStatsAsync(CancellationToken cancellationToken = default) => Inner.GetStatsAsync(cancellationToken);
    public Task<IReadOnlyList<PurgedTask>> PurgeAsync(TimeSpan olderThan, IReadOnlyCollection<TaskState>? states = null, string? queue = null, CancellationToken cancellationToken = default) => Inner.PurgeAsync(olderThan, states, queue, cancellationToken);
    public Task<bool> WaitForWorkAsync(string queue, TimeSpan timeout, CancellationToken cancellationToken = default) => Inner.WaitForWorkAsync(queue, timeout, cancellationToken);
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
