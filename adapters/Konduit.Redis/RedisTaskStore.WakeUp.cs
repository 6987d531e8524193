using StackExchange.Redis;

namespace Konduit.Redis;

// Wake-up (pub/sub, latched per queue, every queue woken after a reconnect) and disposal.
public sealed partial class RedisTaskStore
{
    private readonly Lock _signalGate = new();
    private readonly Dictionary<string, QueueSignal> _signals = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _subscribeGate = new(1, 1);
    private ChannelMessageQueue? _subscription;
    private IConnectionMultiplexer? _subscribedConnection;
    private int _disposed;

    /// <inheritdoc />
    public async Task<bool> WaitForWorkAsync(string queue, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        TaskValidation.ValidateQueue(queue);
        TaskValidation.ValidateWaitTimeout(timeout);
        cancellationToken.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        await EnsureSubscribedAsync().ConfigureAwait(false);

        TaskCompletionSource<bool> waiter;
        lock (_signalGate)
        {
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
            return await waiter.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            lock (_signalGate)
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

    private async Task EnsureSubscribedAsync()
    {
        if (Volatile.Read(ref _subscription) is not null) return;
        await _subscribeGate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_subscription is not null) return;
            var connection = await _connection.Value.ConfigureAwait(false);
            var subscription = await connection.GetSubscriber().SubscribeAsync(RedisChannel.Literal(_wakeChannel)).ConfigureAwait(false);
            subscription.OnMessage(message =>
            {
                Signal((string)message.Message!);
                return Task.CompletedTask;
            });
            // Messages published while the subscription was down are lost: on reconnect, wake every queue
            // (a spurious wake-up is allowed; a lost one would leave workers waiting out their timeout).
            connection.ConnectionRestored += OnConnectionRestored;
            _subscribedConnection = connection;
            Volatile.Write(ref _subscription, subscription);
        }
        finally
        {
            _subscribeGate.Release();
        }
    }

    private void Signal(string queue)
    {
        lock (_signalGate)
        {
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

    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType != ConnectionType.Subscription) return;
        string[] queues;
        lock (_signalGate) queues = [.. _signals.Keys];
        foreach (var queue in queues) Signal(queue);
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

    /// <summary>Releases waiters (they return false), unsubscribes, and closes the connection if the store opened it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        GC.SuppressFinalize(this);
        lock (_signalGate)
        {
            foreach (var signal in _signals.Values)
            {
                foreach (var waiter in signal.Waiters) waiter.TrySetResult(false);
                signal.Waiters.Clear();
            }
        }
        if (_subscribedConnection is { } subscribed) subscribed.ConnectionRestored -= OnConnectionRestored;
        if (_subscription is { } subscription) await subscription.UnsubscribeAsync().ConfigureAwait(false);
        if (_ownsConnection && _connection.IsValueCreated)
        {
            try
            {
                var connection = await _connection.Value.ConfigureAwait(false);
                await connection.DisposeAsync().ConfigureAwait(false);
            }
#pragma warning disable CA1031 // A connection that never came up has nothing to close.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
        _subscribeGate.Dispose();
    }

    /// <summary>A per-queue latched wake-up signal.</summary>
    private sealed class QueueSignal
    {
        public bool Latched { get; set; }
        public List<TaskCompletionSource<bool>> Waiters { get; } = [];
    }
}
