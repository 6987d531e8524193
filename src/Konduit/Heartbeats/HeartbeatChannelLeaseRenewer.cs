namespace Konduit.Heartbeats;

/// <summary>
/// An <see cref="ILeaseRenewer"/> that keeps leases alive through a heartbeat channel instead of the store (issue 12,
/// ADR 009). Workers take their store leases with a long ceiling (the queue's lease length); every
/// <c>heartbeatInterval</c> each tracked lease's heartbeat is published, and the store is written only when a lease
/// nears its ceiling (a task running longer than the queue's heartbeat interval) or while publishing fails: then every
/// lease is renewed through <see cref="ITaskStore.HeartbeatManyAsync"/> at once, each beat, so a channel outage never
/// lets a lease expire.
/// </summary>
public sealed class HeartbeatChannelLeaseRenewer : ILeaseRenewer, IAsyncDisposable
{
    private readonly ITaskStore _store;
    private readonly IHeartbeatChannel _channel;
    private readonly TimeSpan _interval;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly HashSet<TrackedLease> _tracked = new(ReferenceEqualityComparer.Instance);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _published;
    private long _storeRenewals;
    private long _fallbackBeats;
    private int _disposed;

    /// <summary>Starts the renewal loop.</summary>
    /// <param name="store">The store, for the ceiling renewals and the fallback.</param>
    /// <param name="channel">The channel heartbeats are published to.</param>
    /// <param name="heartbeatInterval">How often each lease's heartbeat is published (well below the monitor's liveness timeout).</param>
    /// <param name="timeProvider">The clock; <see cref="TimeProvider.System"/> when null.</param>
    public HeartbeatChannelLeaseRenewer(ITaskStore store, IHeartbeatChannel channel, TimeSpan heartbeatInterval, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(channel);
        if (heartbeatInterval <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(heartbeatInterval), heartbeatInterval, "The heartbeat interval must be positive.");
        _store = store;
        _channel = channel;
        _interval = heartbeatInterval;
        _time = timeProvider ?? TimeProvider.System;
        _loop = Task.Run(() => LoopAsync(_stop.Token));
    }

    /// <summary>Heartbeats handed to the channel so far.</summary>
    public long HeartbeatsPublished => Interlocked.Read(ref _published);

    /// <summary>Store renewal calls (<see cref="ITaskStore.HeartbeatManyAsync"/>) made so far, for the ceiling or the fallback.</summary>
    public long StoreRenewals => Interlocked.Read(ref _storeRenewals);

    /// <summary>Beats at which publishing failed and the store renewed every lease instead.</summary>
    public long FallbackBeats => Interlocked.Read(ref _fallbackBeats);

    /// <inheritdoc />
    public void Track(TrackedLease lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        lock (_gate) _tracked.Add(lease);
        // The first heartbeat at once, so a monitor learns about the lease before its first window ends.
        if (_channel.TryPublish(Beat(lease, released: false))) Interlocked.Increment(ref _published);
    }

    /// <inheritdoc />
    public void Release(TrackedLease lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        bool removed;
        lock (_gate) removed = _tracked.Remove(lease);
        // Tells monitors to stop tracking it; a lost message only costs the monitor one store read later.
        if (removed) _channel.TryPublish(Beat(lease, released: true));
    }

    /// <summary>Stops the loop (leases still tracked are no longer renewed).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }

    private LeaseHeartbeat Beat(TrackedLease lease, bool released)
    {
        var current = lease.Lease;
        return new LeaseHeartbeat(current.TaskId, current.LeaseToken, current.WorkerId, _time.GetUtcNow(), lease.Extension, released);
    }

    private async Task LoopAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_interval, _time, stop).ConfigureAwait(false);
                await BeatAsync(stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // A failed beat is retried at the next; leases past their expiry are marked lost there.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
    }

    /// <summary>One beat: publish every lease's heartbeat, renew in the store the ones that need it.</summary>
    internal async Task BeatAsync(CancellationToken cancellationToken)
    {
        TrackedLease[] leases;
        lock (_gate)
        {
            _tracked.RemoveWhere(l => l.IsLost);
            leases = [.. _tracked];
        }
        if (leases.Length == 0) return;
        var now = _time.GetUtcNow();
        var renew = new List<TrackedLease>();
        var fellBack = false;
        foreach (var lease in leases)
        {
            // Published even while failing: a delivery that succeeds again is what ends the fallback.
            var published = _channel.TryPublish(Beat(lease, released: false));
            if (published) Interlocked.Increment(ref _published);
            if (published && _channel.IsPublishing)
            {
                // The ceiling path: a task running for longer than the queue's heartbeat interval renews its store lease.
                if (lease.Lease.ExpiresAt - now <= lease.Extension - lease.Interval) renew.Add(lease);
            }
            else
            {
                fellBack = true;
                renew.Add(lease);
            }
        }
        if (fellBack) Interlocked.Increment(ref _fallbackBeats);
        foreach (var group in renew.GroupBy(l => l.Extension))
        {
            var batch = group.ToList();
            try
            {
                Interlocked.Increment(ref _storeRenewals);
                var result = await _store.HeartbeatManyAsync([.. batch.Select(l => l.Lease)], group.Key, cancellationToken).ConfigureAwait(false);
                foreach (var renewed in result.Renewed)
                    batch.Find(l => l.TaskId == renewed.TaskId)?.Renewed(renewed);
                foreach (var lost in result.Lost)
                    batch.Find(l => l.TaskId == lost)?.MarkLost(null);
            }
#pragma warning disable CA1031 // Any store failure: retried at the next beat.
            catch (Exception) when (!cancellationToken.IsCancellationRequested)
#pragma warning restore CA1031
            {
                // Store unreachable: a lease whose store expiry passed is lost, whoever holds the task now.
                foreach (var lease in batch.Where(l => l.Lease.ExpiresAt <= _time.GetUtcNow())) lease.MarkLost(null);
            }
        }
    }
}
