namespace Konduit.Hosting.Tests;

/// <summary>
/// Forwards to a real store, adding what the runtime tests need to provoke: heartbeats that stall (so a lease
/// really expires and is reclaimed by the store), completions that stall (a store whose completions lag), store
/// calls that fail transiently (<see cref="StoreUnavailableException"/> before the call reaches the store, as a cut
/// connection would), and counting leases, completions and heartbeat calls. Disposal does not dispose the inner
/// store (fixtures own it).
/// </summary>
public sealed class TestStore(ITaskStore inner) : DelegatingTaskStore(inner, ownsInner: false)
{
    private volatile TaskCompletionSource? _heartbeatGate;
    private volatile TaskCompletionSource? _completionGate;
    private volatile TaskCompletionSource? _leaseGate;
    private int _leaseCallsInFlight;
    private readonly List<int> _leaseRequests = [];
    private int _maxLeaseCallsInFlight;
    private int _leased;
    private int _completed;
    private int _maxUnrecorded;
    private int _completionFaults;
    private int _failFaults;
    private int _heartbeatCalls;
    private int _heartbeatManyCalls;
    private int _failCalls;
    private int _heartbeatFaults;
    private int _completeCalls;
    private int _completeManyCalls;
    private int _completeAndLeaseCalls;
    private int _chainLeased;
    private int _retentionCalls;
    private long _lastRetentionTicks = -1;

    /// <summary>ApplyRetentionAsync calls that reached this store (the sweeper's PurgeFinishedAfter).</summary>
    public int RetentionCalls => Volatile.Read(ref _retentionCalls);

    /// <summary>The age the last ApplyRetentionAsync call asked for (null before the first).</summary>
    public TimeSpan? LastRetention => Interlocked.Read(ref _lastRetentionTicks) is var t and >= 0 ? TimeSpan.FromTicks(t) : null;

    /// <inheritdoc />
    public override async Task<IReadOnlyList<PurgedTask>> ApplyRetentionAsync(TimeSpan olderThan, CancellationToken cancellationToken = default)
    {
        var purged = await base.ApplyRetentionAsync(olderThan, cancellationToken);
        Interlocked.Exchange(ref _lastRetentionTicks, olderThan.Ticks);
        Interlocked.Increment(ref _retentionCalls);
        return purged;
    }

    /// <summary>Heartbeats (single and batched) wait until <see cref="ResumeHeartbeats"/>.</summary>
    public void StallHeartbeats() => _heartbeatGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void ResumeHeartbeats() => Interlocked.Exchange(ref _heartbeatGate, null)?.TrySetResult();

    /// <summary>Complete and CompleteMany wait until <see cref="ResumeCompletions"/>.</summary>
    public void StallCompletions() => _completionGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void ResumeCompletions() => Interlocked.Exchange(ref _completionGate, null)?.TrySetResult();

    /// <summary>The next <paramref name="count"/> Complete/CompleteMany calls throw <see cref="StoreUnavailableException"/> without reaching the store.</summary>
    public void FaultCompletions(int count) => Volatile.Write(ref _completionFaults, count);

    /// <summary>The next <paramref name="count"/> Fail calls throw <see cref="StoreUnavailableException"/> without reaching the store.</summary>
    public void FaultFails(int count) => Volatile.Write(ref _failFaults, count);

    /// <summary>The next <paramref name="count"/> batched heartbeat calls throw <see cref="StoreUnavailableException"/> without reaching the store.</summary>
    public void FaultHeartbeats(int count) => Volatile.Write(ref _heartbeatFaults, count);

    /// <summary>CompleteAsync calls made (including faulted ones).</summary>
    public int CompleteCalls => Volatile.Read(ref _completeCalls);

    /// <summary>CompleteManyAsync calls made (including faulted ones).</summary>
    public int CompleteManyCalls => Volatile.Read(ref _completeManyCalls);

    /// <summary>CompleteAndLeaseAsync calls made (including faulted ones).</summary>
    public int CompleteAndLeaseCalls => Volatile.Read(ref _completeAndLeaseCalls);

    /// <summary>Tasks handed out by CompleteAndLeaseAsync so far (also counted in <see cref="Leased"/>).</summary>
    public int ChainLeased => Volatile.Read(ref _chainLeased);

    /// <summary>Tasks handed out by LeaseAsync and CompleteAndLeaseAsync so far.</summary>
    public int Leased => Volatile.Read(ref _leased);

    /// <summary>Tasks the store accepted as completed so far.</summary>
    public int Completed => Volatile.Read(ref _completed);

    /// <summary>The most tasks that were leased at once without a completion (or any other outcome) yet.</summary>
    public int MaxUnrecorded => Volatile.Read(ref _maxUnrecorded);

    /// <summary>Single-lease heartbeat calls that reached the store.</summary>
    public int HeartbeatCalls => Volatile.Read(ref _heartbeatCalls);

    /// <summary>Batched heartbeat calls made (including faulted ones).</summary>
    public int HeartbeatManyCalls => Volatile.Read(ref _heartbeatManyCalls);

    /// <summary>Fail calls made (including faulted ones).</summary>
    public int FailCalls => Volatile.Read(ref _failCalls);

    /// <summary>Holds every lease call until <see cref="ResumeLeases"/>.</summary>
    public void StallLeases() => _leaseGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void ResumeLeases() => Interlocked.Exchange(ref _leaseGate, null)?.TrySetResult();

    /// <summary>Lease calls running now (held ones included).</summary>
    public int LeaseCallsInFlight => Volatile.Read(ref _leaseCallsInFlight);

    /// <summary>The task count each lease call asked for, in the order the calls reached this store.</summary>
    public IReadOnlyList<int> LeaseRequests
    {
        get
        {
            lock (_leaseRequests) return [.. _leaseRequests];
        }
    }

    /// <summary>The most lease calls seen running at once.</summary>
    public int MaxLeaseCallsInFlight => Volatile.Read(ref _maxLeaseCallsInFlight);

    public override async Task<IReadOnlyList<TaskLease>> LeaseAsync(string queue, string workerId, int maxCount, TimeSpan leaseDuration, CancellationToken cancellationToken = default)
    {
        lock (_leaseRequests) _leaseRequests.Add(maxCount);
        var inFlight = Interlocked.Increment(ref _leaseCallsInFlight);
        int seen;
        while (inFlight > (seen = MaxLeaseCallsInFlight) && Interlocked.CompareExchange(ref _maxLeaseCallsInFlight, inFlight, seen) != seen)
        {
        }
        IReadOnlyList<TaskLease> leases;
        try
        {
            if (_leaseGate is { } gate) await gate.Task.WaitAsync(cancellationToken);
            leases = await Inner.LeaseAsync(queue, workerId, maxCount, leaseDuration, cancellationToken);
        }
        finally
        {
            Interlocked.Decrement(ref _leaseCallsInFlight);
        }
        var leased = Interlocked.Add(ref _leased, leases.Count);
        var unrecorded = leased - Completed;
        int max;
        while (unrecorded > (max = MaxUnrecorded) && Interlocked.CompareExchange(ref _maxUnrecorded, unrecorded, max) != max)
        {
        }
        return leases;
    }

    public override async Task CompleteAsync(TaskLease lease, byte[]? result = null, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _completeCalls);
        if (_completionGate is { } gate) await gate.Task.WaitAsync(cancellationToken);
        ThrowIfFaulted(ref _completionFaults, "complete");
        await Inner.CompleteAsync(lease, result, cancellationToken);
        Interlocked.Increment(ref _completed);
    }

    public override async Task<IReadOnlyList<Guid>> CompleteManyAsync(IReadOnlyList<TaskCompletion> completions, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _completeManyCalls);
        if (_completionGate is { } gate) await gate.Task.WaitAsync(cancellationToken);
        ThrowIfFaulted(ref _completionFaults, "complete");
        var lost = await Inner.CompleteManyAsync(completions, cancellationToken);
        Interlocked.Add(ref _completed, completions.Count - lost.Count);
        return lost;
    }

    /// <summary>Held by the completion gate and faulted like a completion; its leases count as leases.</summary>
    public override async Task<CompleteAndLeaseResult> CompleteAndLeaseAsync(TaskCompletion completion, string workerId, int maxCount, TimeSpan leaseDuration,
        CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _completeAndLeaseCalls);
        if (_completionGate is { } gate) await gate.Task.WaitAsync(cancellationToken);
        ThrowIfFaulted(ref _completionFaults, "complete and lease");
        var result = await Inner.CompleteAndLeaseAsync(completion, workerId, maxCount, leaseDuration, cancellationToken);
        if (result.Completed) Interlocked.Increment(ref _completed);
        Interlocked.Add(ref _chainLeased, result.Leases.Count);
        var leased = Interlocked.Add(ref _leased, result.Leases.Count);
        var unrecorded = leased - Completed;
        int max;
        while (unrecorded > (max = MaxUnrecorded) && Interlocked.CompareExchange(ref _maxUnrecorded, unrecorded, max) != max)
        {
        }
        return result;
    }

    public override async Task<FailResult> FailAsync(TaskLease lease, string error, FailOptions? options = null, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _failCalls);
        ThrowIfFaulted(ref _failFaults, "fail");
        return await Inner.FailAsync(lease, error, options, cancellationToken);
    }

    public override async Task<TaskLease> HeartbeatAsync(TaskLease lease, TimeSpan extension, CancellationToken cancellationToken = default)
    {
        if (_heartbeatGate is { } gate) await gate.Task.WaitAsync(cancellationToken);
        Interlocked.Increment(ref _heartbeatCalls);
        return await Inner.HeartbeatAsync(lease, extension, cancellationToken);
    }

    public override async Task<HeartbeatManyResult> HeartbeatManyAsync(IReadOnlyList<TaskLease> leases, TimeSpan extension, CancellationToken cancellationToken = default)
    {
        if (_heartbeatGate is { } gate) await gate.Task.WaitAsync(cancellationToken);
        Interlocked.Increment(ref _heartbeatManyCalls);
        ThrowIfFaulted(ref _heartbeatFaults, "heartbeat");
        return await Inner.HeartbeatManyAsync(leases, extension, cancellationToken);
    }

    private void ThrowIfFaulted(ref int faults, string operation)
    {
        int left;
        while ((left = Volatile.Read(ref faults)) > 0)
        {
            if (Interlocked.CompareExchange(ref faults, left - 1, left) == left)
                throw new StoreUnavailableException(Name, operation, new IOException("injected: connection reset"));
        }
    }
}
