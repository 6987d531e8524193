namespace Konduit.Heartbeats;

/// <summary>Settings of a <see cref="LeaseMonitor"/>.</summary>
public sealed class LeaseMonitorOptions
{
    /// <summary>
    /// How long a lease may go without a heartbeat before the monitor ends it (<see cref="ITaskStore.ExpireLeaseAsync"/>).
    /// Several heartbeat intervals; far below the store lease length (the ceiling). Default 10 s.
    /// </summary>
    public TimeSpan LivenessTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often silent leases are looked for. Default: a quarter of <see cref="LivenessTimeout"/>.</summary>
    public TimeSpan? CheckInterval { get; set; }

    /// <summary>Called (on the monitor's loop) for every lease the monitor ended, with how long it had been silent.</summary>
    public Action<ReclaimedTask, TimeSpan>? Expired { get; set; }

    /// <summary>Called when a store call of the monitor failed (it is retried at the next check).</summary>
    public Action<Exception>? Failed { get; set; }

    /// <summary>Checks the settings; throws <see cref="ArgumentException"/> naming the bad one.</summary>
    public void Validate()
    {
        if (LivenessTimeout <= TimeSpan.Zero || LivenessTimeout > TimeSpan.FromDays(1))
            throw new ArgumentOutOfRangeException(nameof(LivenessTimeout), LivenessTimeout, "LivenessTimeout must be positive and at most one day.");
        if (CheckInterval is { } check && (check <= TimeSpan.Zero || check > LivenessTimeout))
            throw new ArgumentOutOfRangeException(nameof(CheckInterval), check, "CheckInterval must be positive and at most LivenessTimeout.");
    }
}

/// <summary>
/// Consumes a heartbeat channel and ends, in the store, the leases whose heartbeats stopped (issue 12, ADR 009): the
/// latest heartbeat of every live lease is kept; a lease silent for longer than
/// <see cref="LeaseMonitorOptions.LivenessTimeout"/> is ended with the fenced <see cref="ITaskStore.ExpireLeaseAsync"/>,
/// which never touches a newer lease, so a slow, restarted or duplicated monitor cannot let two workers finish a task.
/// </summary>
/// <remarks>
/// <para>A monitor judges no lease of a partition until it has held that partition for one liveness window (after its
/// start and every assignment): every live lease has sent a heartbeat by then, so a restart or rebalance never
/// reports a live lease dead.</para>
/// <para>Before ending a silent lease it reads the task: a lease the worker renewed in the store within the window
/// (its fallback while publishing fails) is alive; a finished or re-leased task is dropped.</para>
/// <para>Leases are judged one by one, by (task, token): a heartbeat with an older token never keeps a newer lease
/// alive, nor a newer token an older one.</para>
/// </remarks>
public sealed class LeaseMonitor : IAsyncDisposable
{
    private readonly IHeartbeatChannel _channel;
    private readonly ITaskStore _store;
    private readonly TimeProvider _time;
    private readonly TimeSpan _timeout;
    private readonly TimeSpan _checkInterval;
    private readonly Action<ReclaimedTask, TimeSpan>? _expired;
    private readonly Action<Exception>? _failed;
    private readonly Lock _gate = new();
    private readonly Dictionary<(Guid TaskId, long LeaseToken), Entry> _leases = [];
    private readonly Dictionary<int, DateTimeOffset> _heldSince = [];
    private readonly CancellationTokenSource _stop = new();
    private Task _consume = Task.CompletedTask;
    private Task _check = Task.CompletedTask;
    private long _observed;
    private long _expiredCount;
    private int _started;
    private int _disposed;

    /// <summary>Creates a monitor of <paramref name="channel"/> that ends silent leases in <paramref name="store"/>.</summary>
    public LeaseMonitor(IHeartbeatChannel channel, ITaskStore store, LeaseMonitorOptions options, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(channel);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _channel = channel;
        _store = store;
        _time = timeProvider ?? TimeProvider.System;
        _timeout = options.LivenessTimeout;
        _checkInterval = options.CheckInterval ?? options.LivenessTimeout / 4;
        _expired = options.Expired;
        _failed = options.Failed;
    }

    /// <summary>Heartbeats received so far.</summary>
    public long HeartbeatsObserved => Interlocked.Read(ref _observed);

    /// <summary>Leases ended by this monitor so far.</summary>
    public long LeasesExpired => Interlocked.Read(ref _expiredCount);

    /// <summary>Live leases currently tracked.</summary>
    public int TrackedLeases
    {
        get
        {
            lock (_gate) return _leases.Count;
        }
    }

    /// <summary>Partitions this monitor holds now.</summary>
    public int HeldPartitions
    {
        get
        {
            lock (_gate) return _heldSince.Count;
        }
    }

    /// <summary>Starts consuming and checking in the background (once); returns at once.</summary>
    public void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) != 0) return;
        var observer = new Observer(this);
        _consume = Task.Run(() => ConsumeLoopAsync(observer, _stop.Token));
        _check = Task.Run(() => CheckLoopAsync(_stop.Token));
    }

    /// <summary>Stops consuming and checking.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(_consume, _check).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }

    private async Task ConsumeLoopAsync(Observer observer, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await _channel.ConsumeAsync(observer, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // The consumer is restarted; the failure is reported.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                _failed?.Invoke(ex);
            }
            // A restarted consumer is a new member: everything it held is judged again after a window.
            lock (_gate)
            {
                _heldSince.Clear();
                _leases.Clear();
            }
            try
            {
                await Task.Delay(_checkInterval, _time, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task CheckLoopAsync(CancellationToken stop)
    {
        while (true)
        {
            try
            {
                await Task.Delay(_checkInterval, _time, stop).ConfigureAwait(false);
                await CheckAsync(stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // One failed check must not stop the monitor; it is reported and retried.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                _failed?.Invoke(ex);
            }
        }
    }

    /// <summary>One pass: ends every lease silent for longer than the liveness timeout (exposed for tests).</summary>
    internal async Task CheckAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        List<Entry> silent;
        lock (_gate)
        {
            silent = [.. _leases.Values.Where(e =>
                now - e.LastSeen > _timeout && _heldSince.TryGetValue(e.Partition, out var since) && now - since > _timeout)];
        }
        foreach (var entry in silent)
        {
            cancellationToken.ThrowIfCancellationRequested();
            TaskSnapshot task;
            try
            {
                task = await _store.GetAsync(entry.TaskId, cancellationToken).ConfigureAwait(false);
            }
            catch (TaskNotFoundException)
            {
                Forget(entry);
                continue;
            }
            if (task.State != TaskState.Running || task.LeaseToken != entry.LeaseToken)
            {
                Forget(entry);
                continue;
            }
            // Renewed in the store within the window: the worker fell back to store heartbeats, so it is alive.
            if (task.LeaseExpiresAt is { } expiresAt && expiresAt - entry.Extension > now - _timeout)
            {
                lock (_gate)
                {
                    if (_leases.TryGetValue(entry.Key, out var current) && ReferenceEquals(current, entry) && expiresAt - entry.Extension > current.LastSeen)
                        _leases[entry.Key] = current with { LastSeen = expiresAt - entry.Extension };
                }
                continue;
            }
            lock (_gate)
            {
                // A heartbeat that arrived during the read keeps the lease alive.
                if (!_leases.TryGetValue(entry.Key, out var current) || !ReferenceEquals(current, entry)) continue;
            }
            var expired = await _store.ExpireLeaseAsync(entry.TaskId, entry.LeaseToken, cancellationToken).ConfigureAwait(false);
            Forget(entry);
            if (expired is not null)
            {
                Interlocked.Increment(ref _expiredCount);
                _expired?.Invoke(expired, now - entry.LastSeen);
            }
        }
    }

    private void Forget(Entry entry)
    {
        lock (_gate)
        {
            if (_leases.TryGetValue(entry.Key, out var current) && ReferenceEquals(current, entry)) _leases.Remove(entry.Key);
        }
    }

    private void Observe(LeaseHeartbeat heartbeat, int partition)
    {
        Interlocked.Increment(ref _observed);
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            var key = (heartbeat.TaskId, heartbeat.LeaseToken);
            // Each lease is judged by its own heartbeats only: another token's never keeps it alive, either way.
            if (heartbeat.Released) _leases.Remove(key);
            else _leases[key] = new Entry(heartbeat.TaskId, heartbeat.LeaseToken, partition, heartbeat.Extension, now);
        }
    }

    private void Assigned(IReadOnlyCollection<int> partitions)
    {
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            foreach (var p in partitions) _heldSince[p] = now;
        }
    }

    private void Revoked(IReadOnlyCollection<int> partitions)
    {
        lock (_gate)
        {
            foreach (var p in partitions) _heldSince.Remove(p);
            foreach (var gone in _leases.Values.Where(e => partitions.Contains(e.Partition)).ToList()) _leases.Remove(gone.Key);
        }
    }

    private sealed record Entry(Guid TaskId, long LeaseToken, int Partition, TimeSpan Extension, DateTimeOffset LastSeen)
    {
        public (Guid, long) Key => (TaskId, LeaseToken);
    }

    private sealed class Observer(LeaseMonitor monitor) : IHeartbeatObserver
    {
        public void OnHeartbeat(LeaseHeartbeat heartbeat, int partition)
        {
            ArgumentNullException.ThrowIfNull(heartbeat);
            monitor.Observe(heartbeat, partition);
        }

        public void OnAssigned(IReadOnlyCollection<int> partitions) => monitor.Assigned(partitions);

        public void OnRevoked(IReadOnlyCollection<int> partitions) => monitor.Revoked(partitions);
    }
}
