using StackExchange.Redis;

namespace Konduit.Redis;

// Wake-up (pub/sub, latched per queue, every queue woken after a reconnect) and disposal.
public sealed partial class RedisTaskStore
{
    private readonly QueueWakeUpSignals _signals = new();
    private readonly SemaphoreSlim _subscribeGate = new(1, 1);
    private ChannelMessageQueue? _subscription;
    private IConnectionMultiplexer? _subscribedConnection;
    private int _disposed;

    /// <inheritdoc />
    public async Task<bool> WaitForWorkAsync(string queue, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        try
        {
            TaskValidation.ValidateQueue(queue);
            TaskValidation.ValidateWaitTimeout(timeout);
            cancellationToken.ThrowIfCancellationRequested();
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            await EnsureSubscribedAsync().ConfigureAwait(false);

            return await _signals.WaitAsync(queue, timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw Unavailable("wait for work", ex);
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

    private void Signal(string queue) => _signals.Signal(queue);

    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType != ConnectionType.Subscription) return;
        _signals.SignalAll();
    }

    /// <summary>Releases waiters (they return false), unsubscribes, and closes the connection if the store opened it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        GC.SuppressFinalize(this);
        _signals.Close();
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
}
