namespace Konduit;

/// <summary>
/// A lease a worker holds, as an <see cref="ILeaseRenewer"/> keeps it alive: the latest renewal, and whether (and
/// when) it was lost. Created by the worker; updated by the renewer and by the worker when the store refuses an
/// outcome. Thread-safe.
/// </summary>
public sealed class TrackedLease
{
    // Also the lock of the fields below: one object less per running task (issue 15, allocations per task).
    private readonly CancellationTokenSource _lost = new();
    private TaskLease _lease;
    private bool _isLost;
    private TaskState? _lostState;

    /// <summary>Tracks <paramref name="lease"/>.</summary>
    /// <param name="lease">The lease as handed out by the store.</param>
    /// <param name="extension">How far each renewal extends the lease (the worker's lease length).</param>
    /// <param name="interval">How often the lease should be renewed; less than <paramref name="extension"/>.</param>
    public TrackedLease(TaskLease lease, TimeSpan extension, TimeSpan interval)
    {
        ArgumentNullException.ThrowIfNull(lease);
        if (extension <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(extension), extension, "The extension must be positive.");
        if (interval <= TimeSpan.Zero || interval >= extension)
            throw new ArgumentOutOfRangeException(nameof(interval), interval, "The interval must be positive and shorter than the extension.");
        _lease = lease;
        Extension = extension;
        Interval = interval;
    }

    /// <summary>The lease with its latest known <see cref="TaskLease.ExpiresAt"/> (store clock).</summary>
    public TaskLease Lease
    {
        get
        {
            lock (_lost) return _lease;
        }
    }

    /// <summary>The task's id.</summary>
    public Guid TaskId => Lease.TaskId;

    /// <summary>How far each renewal extends the lease.</summary>
    public TimeSpan Extension { get; }

    /// <summary>How often the lease should be renewed.</summary>
    public TimeSpan Interval { get; }

    /// <summary>Whether the lease is known to be lost.</summary>
    public bool IsLost
    {
        get
        {
            lock (_lost) return _isLost;
        }
    }

    /// <summary>The task's state when the loss was detected, when the reporter knew it.</summary>
    public TaskState? LostState
    {
        get
        {
            lock (_lost) return _lostState;
        }
    }

    /// <summary>Fires (on a thread-pool thread) once the lease is known to be lost: the worker cancels the handler.</summary>
    public CancellationToken LostToken => _lost.Token;

    /// <summary>Reports a renewal; ignored once the lease is lost or when <paramref name="renewed"/> is another lease.</summary>
    public void Renewed(TaskLease renewed)
    {
        ArgumentNullException.ThrowIfNull(renewed);
        lock (_lost)
        {
            if (_isLost || renewed.TaskId != _lease.TaskId || renewed.LeaseToken != _lease.LeaseToken) return;
            if (renewed.ExpiresAt > _lease.ExpiresAt) _lease = renewed;
        }
    }

    /// <summary>Reports the lease lost (the first report wins); <paramref name="state"/> is the task's state when known.</summary>
    public void MarkLost(TaskState? state)
    {
        lock (_lost)
        {
            if (_isLost) return;
            _isLost = true;
            _lostState = state;
        }
        // Off the reporter's thread: canceling runs the handler's callbacks, which must not stall a heartbeat loop.
        ThreadPool.UnsafeQueueUserWorkItem(static s => s.Cancel(), _lost, preferLocal: false);
    }
}
