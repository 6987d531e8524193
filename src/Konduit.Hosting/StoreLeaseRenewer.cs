using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Konduit.Hosting;

/// <summary>
/// The default <see cref="ILeaseRenewer"/>: renews through the store, one <see cref="HeartbeatLoop"/> (one
/// <see cref="ITaskStore.HeartbeatManyAsync"/> per interval) for each lease length and interval in use, so all the
/// running tasks of a queue's workers share one statement per interval.
/// </summary>
internal sealed class StoreLeaseRenewer(ITaskStore store, TimeProvider time, ILoggerFactory? loggerFactory = null) : ILeaseRenewer, IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<(TimeSpan Interval, TimeSpan Extension), HeartbeatLoop> _loops = [];
    private readonly ILogger _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Konduit.Hosting.Heartbeat");
    private bool _disposed;

    public void Track(TrackedLease lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        HeartbeatLoop loop;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var key = (lease.Interval, lease.Extension);
            if (!_loops.TryGetValue(key, out loop!))
            {
                loop = new HeartbeatLoop(store, lease.Interval, lease.Extension, time, _logger);
                _loops.Add(key, loop);
            }
        }
        loop.Add(lease);
    }

    public void Release(TrackedLease lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        HeartbeatLoop? loop;
        lock (_gate) _loops.TryGetValue((lease.Interval, lease.Extension), out loop);
        loop?.Remove(lease);
    }

    public async ValueTask DisposeAsync()
    {
        HeartbeatLoop[] loops;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            loops = [.. _loops.Values];
            _loops.Clear();
        }
        foreach (var loop in loops) await loop.DisposeAsync().ConfigureAwait(false);
    }
}
