namespace Konduit.Storage;

/// <summary>
/// Per-queue, latched wake-up signals: the building block of <see cref="ITaskStore.WaitForWorkAsync"/> for stores
/// with <see cref="StoreCapabilities.PushWakeUp"/>. A signal wakes every waiter of its queue, or is latched when
/// none waits, so a signal that arrives between two waits is never missed; a signal handed to a waiter just as it
/// timed out or was canceled is kept (returned or re-latched), never dropped. Thread-safe.
/// </summary>
public sealed class QueueWakeUpSignals
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, QueueSignal> _signals = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private bool _closed;

    /// <summary>Creates the signals.</summary>
    /// <param name="timeProvider">The clock wait timeouts run on; <see cref="TimeProvider.System"/> when null.</param>
    public QueueWakeUpSignals(TimeProvider? timeProvider = null) => _time = timeProvider ?? TimeProvider.System;

    /// <summary>Wakes the waiters of <paramref name="queue"/>, or latches the signal when none waits.</summary>
    public void Signal(string queue)
    {
        lock (_gate)
        {
            if (_closed) return;
            var signal = SignalFor(queue);
            if (signal.Waiters.Count == 0)
            {
                signal.Latched = true;
                return;
            }
            foreach (var waiter in signal.Waiters) waiter.TrySetResult(true);
            signal.Waiters.Clear();
        }
    }

    /// <summary>Signals every queue seen so far (e.g. after a reconnect, when notifications may have been lost).</summary>
    public void SignalAll()
    {
        string[] queues;
        lock (_gate) queues = [.. _signals.Keys];
        foreach (var queue in queues) Signal(queue);
    }

    /// <summary>
    /// Waits for a signal of <paramref name="queue"/> (true) or the timeout (false); a latched signal returns at once
    /// and is consumed. After <see cref="Close"/> returns false at once. Arguments are the caller's to validate.
    /// </summary>
    public async Task<bool> WaitAsync(string queue, TimeSpan timeout, CancellationToken cancellationToken)
    {
        TaskCompletionSource<bool> waiter;
        lock (_gate)
        {
            if (_closed) return false;
            var signal = SignalFor(queue);
            if (signal.Latched)
            {
                signal.Latched = false;
                return true;
            }
            if (timeout == TimeSpan.Zero) return false;
            waiter = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            signal.Waiters.Add(waiter);
        }
        try
        {
            return await waiter.Task.WaitAsync(timeout, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            lock (_gate)
            {
                if (_signals.TryGetValue(queue, out var signal)) signal.Waiters.Remove(waiter);
                // A signal handed to this waiter just as it gave up is kept, never dropped.
                if (waiter.Task.IsCompletedSuccessfully && waiter.Task.Result)
                {
                    if (ex is TimeoutException) return true;
                    if (signal is not null) signal.Latched = true;
                }
            }
            if (ex is TimeoutException) return false;
            throw;
        }
    }

    /// <summary>Releases every waiter (they return false); later waits return false at once and signals are ignored.</summary>
    public void Close()
    {
        lock (_gate)
        {
            if (_closed) return;
            _closed = true;
            foreach (var signal in _signals.Values)
            {
                foreach (var waiter in signal.Waiters) waiter.TrySetResult(false);
                signal.Waiters.Clear();
            }
        }
    }

    private QueueSignal SignalFor(string queue)
    {
        if (!_signals.TryGetValue(queue, out var signal))
        {
            signal = new QueueSignal();
            _signals.Add(queue, signal);
        }
        return signal;
    }

    private sealed class QueueSignal
    {
        public bool Latched { get; set; }

        public List<TaskCompletionSource<bool>> Waiters { get; } = [];
    }
}
