using Microsoft.Extensions.Logging;

namespace Konduit.Hosting;

/// <summary>
/// Renews every tracked lease of one lease length with one <see cref="ITaskStore.HeartbeatManyAsync"/> per interval
/// (issue 11 item 3: one statement for all of a worker's running tasks, not one per task). A one-shot timer is armed
/// while leases are tracked and re-armed after each beat, so an idle worker sends nothing.
/// </summary>
/// <remarks>
/// A lease tracked just after a beat is renewed at the next one, so no lease goes longer than one interval without a
/// renewal. A lease the store reports lost is marked lost (its handler is canceled) and dropped. When a beat fails
/// (store unreachable), the next one comes after half an interval; a lease not renewed for a whole lease length has
/// expired by then, whoever holds the task, so it is marked lost.
/// </remarks>
internal sealed class HeartbeatLoop : IAsyncDisposable
{
    private readonly ITaskStore _store;
    private readonly TimeSpan _interval;
    private readonly TimeSpan _extension;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ITimer _timer;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private readonly Dictionary<TrackedLease, long> _tracked = new(ReferenceEqualityComparer.Instance);
    private Task _beat = Task.CompletedTask;
    private bool _armed;
    private bool _beating;
    private bool _disposed;
    private int _beats;

    public HeartbeatLoop(ITaskStore store, TimeSpan interval, TimeSpan extension, TimeProvider time, ILogger logger)
    {
        _store = store;
        _interval = interval;
        _extension = extension;
        _time = time;
        _logger = logger;
        _timer = time.CreateTimer(static s => ((HeartbeatLoop)s!).Fire(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Leases currently tracked.</summary>
    public int Count
    {
        get
        {
            lock (_gate) return _tracked.Count;
        }
    }

    /// <summary>Beats finished so far (successful or not): lets tests step a fake clock beat by beat.</summary>
    internal int Beats => Volatile.Read(ref _beats);

    /// <summary>Starts renewing <paramref name="lease"/> at the next beat.</summary>
    public void Add(TrackedLease lease)
    {
        lock (_gate)
        {
            if (_disposed) return;
            _tracked.TryAdd(lease, _time.GetTimestamp());
            ArmLocked(_interval);
        }
    }

    /// <summary>Stops renewing <paramref name="lease"/>; a beat in flight may still report on it (ignored by the worker).</summary>
    public void Remove(TrackedLease lease)
    {
        lock (_gate) _tracked.Remove(lease);
    }

    public async ValueTask DisposeAsync()
    {
        Task beat;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _tracked.Clear();
            beat = _beat;
        }
        await _timer.DisposeAsync().ConfigureAwait(false);
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await beat.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }

    private void ArmLocked(TimeSpan due)
    {
        if (_armed || _beating || _disposed) return;
        _armed = true;
        _timer.Change(due, Timeout.InfiniteTimeSpan);
    }

    private void Fire()
    {
        lock (_gate)
        {
            _armed = false;
            if (_disposed || _tracked.Count == 0) return;
            _beating = true;
            _beat = BeatAsync();
        }
    }

    private async Task BeatAsync()
    {
        await Task.Yield(); // off the timer's thread, and out of Fire's lock
        KeyValuePair<TrackedLease, long>[] batch;
        lock (_gate) batch = [.. _tracked];
        var next = _interval;
        try
        {
            var leases = new TaskLease[batch.Length];
            for (var i = 0; i < batch.Length; i++) leases[i] = batch[i].Key.Lease;
            var result = await _store.HeartbeatManyAsync(leases, _extension, _stop.Token).ConfigureAwait(false);
            var now = _time.GetTimestamp();
            var renewed = new HashSet<TrackedLease>(ReferenceEqualityComparer.Instance);
            var byLease = new Dictionary<(Guid, long), TrackedLease>(batch.Length);
            foreach (var (tracked, _) in batch) byLease[(tracked.Lease.TaskId, tracked.Lease.LeaseToken)] = tracked;
            foreach (var lease in result.Renewed)
            {
                if (!byLease.TryGetValue((lease.TaskId, lease.LeaseToken), out var tracked)) continue;
                tracked.Renewed(lease);
                renewed.Add(tracked);
                lock (_gate)
                {
                    if (_tracked.ContainsKey(tracked)) _tracked[tracked] = now;
                }
            }
            if (result.Lost.Count > 0)
            {
                var lost = result.Lost.ToHashSet();
                foreach (var (tracked, _) in batch)
                {
                    if (renewed.Contains(tracked) || !lost.Contains(tracked.TaskId)) continue;
                    tracked.MarkLost(null);
                    Remove(tracked);
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            return;
        }
#pragma warning disable CA1031 // A failed beat is retried; the loop must outlive any store error.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            next = _interval / 2;
            Log.HeartbeatFailed(_logger, ex, batch.Length, _extension, next);
            foreach (var (tracked, since) in batch)
            {
                // No renewal for a whole lease: it has expired by now, whoever holds the task.
                long last;
                lock (_gate)
                {
                    if (!_tracked.TryGetValue(tracked, out last)) continue;
                }
                if (_time.GetElapsedTime(Math.Max(last, since)) < _extension) continue;
                tracked.MarkLost(null);
                Remove(tracked);
            }
        }
        finally
        {
            lock (_gate)
            {
                _beating = false;
                if (_tracked.Count > 0) ArmLocked(next);
            }
            Interlocked.Increment(ref _beats);
        }
    }
}
