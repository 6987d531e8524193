using System.Collections.Concurrent;

namespace Konduit.Hosting;

/// <summary>
/// In-process, latched wake-up per queue: the client signals after an enqueue so a local idle worker leases at
/// once, even on stores without <see cref="StoreCapabilities.PushWakeUp"/>. Other nodes rely on the store.
/// </summary>
internal sealed class LocalWakeUp
{
    private readonly ConcurrentDictionary<string, Signal> _signals = new(StringComparer.Ordinal);

    public void Set(string queue)
    {
        if (_signals.TryGetValue(queue, out var signal)) signal.Set();
    }

    /// <summary>A task that completes on the next <see cref="Set"/> (or at once if one arrived since the last wait).</summary>
    public Task WaitAsync(string queue) => _signals.GetOrAdd(queue, static _ => new Signal()).Take();

    private sealed class Signal
    {
        private readonly Lock _gate = new();
        private TaskCompletionSource _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Set()
        {
            lock (_gate) _tcs.TrySetResult();
        }

        public Task Take()
        {
            lock (_gate)
            {
                if (_tcs.Task.IsCompleted)
                {
                    // Consume the latched signal, then report it.
                    _tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    return Task.CompletedTask;
                }
                return _tcs.Task;
            }
        }
    }
}
