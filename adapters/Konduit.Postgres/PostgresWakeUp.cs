using Npgsql;

namespace Konduit.Postgres;

/// <summary>
/// Push wake-up for one store: a dedicated connection LISTENs on the schema's channel (payload = queue name) and
/// latches a per-queue signal. Started by the first wait; reconnects with backoff; stopped by dispose.
/// </summary>
internal sealed class PostgresWakeUp : IAsyncDisposable
{
    private static readonly TimeSpan MinBackoff = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);
    // An idle LISTEN connection is probed this often, so a half-open TCP connection is noticed and replaced.
    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(30);
    // How long the listener waits for its UNLISTEN on the way out before giving the connection up as broken.
    private static readonly TimeSpan UnlistenTimeout = TimeSpan.FromSeconds(5);

    private readonly NpgsqlDataSource _dataSource;
    private readonly string _listenSql;
    private readonly QueueWakeUpSignals _signals = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _firstAttempt = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _gate = new();
    private Task? _loop;
    private bool _disposed;

    public PostgresWakeUp(NpgsqlDataSource dataSource, string listenSql)
    {
        _dataSource = dataSource;
        _listenSql = listenSql;
    }

    public async Task<bool> WaitAsync(string queue, TimeSpan timeout, CancellationToken cancellationToken)
    {
        // The first wait starts the listener and waits for its first connect attempt, so that a notification sent
        // after this call began is not lost to a LISTEN that is not in place yet.
        await EnsureStarted().WaitAsync(cancellationToken).ConfigureAwait(false);

        return await _signals.WaitAsync(queue, timeout, cancellationToken).ConfigureAwait(false);
    }

    private Task EnsureStarted()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _loop ??= Task.Run(() => RunAsync(_stop.Token));
            return _firstAttempt.Task;
        }
    }

    private async Task RunAsync(CancellationToken stop)
    {
        var backoff = MinBackoff;
        var connectedBefore = false;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                var connection = await _dataSource.OpenConnectionAsync(stop).ConfigureAwait(false);
                await using (connection.ConfigureAwait(false))
                {
                    try
                    {
                        connection.Notification += (_, e) => Signal(e.Payload);
                        using (var listen = new NpgsqlCommand(_listenSql, connection))
                            await listen.ExecuteNonQueryAsync(stop).ConfigureAwait(false);
                        // After a reconnect, notifications sent while we were away are lost: wake every waiter once so
                        // workers poll instead of sleeping through work that arrived in the gap.
                        if (connectedBefore) SignalAll();
                        connectedBefore = true;
                        backoff = MinBackoff;
                        _firstAttempt.TrySetResult();
                        while (true)
                        {
                            if (!await connection.WaitAsync(KeepAlive, stop).ConfigureAwait(false))
                            {
                                using var ping = new NpgsqlCommand("SELECT 1", connection);
                                await ping.ExecuteNonQueryAsync(stop).ConfigureAwait(false);
                            }
                        }
                    }
                    finally
                    {
                        await UnlistenAsync(connection).ConfigureAwait(false);
                    }
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                break;
            }
#pragma warning disable CA1031 // The listener must survive any connection failure: it reconnects.
            catch (Exception)
#pragma warning restore CA1031
            {
                // Waiters must not hang on a listener that cannot connect: they fall back to their timeouts.
                _firstAttempt.TrySetResult();
                try
                {
                    await Task.Delay(backoff, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            }
        }
        _firstAttempt.TrySetResult();
    }

    /// <summary>
    /// Ends the LISTEN before a healthy connection goes back to the pool: a pool that skips the reset of returned
    /// connections (the store's own data source, see <see cref="PostgresTaskStore"/>) would otherwise hand out a backend
    /// that stays subscribed while nobody reads its socket. A broken connection is not pooled, so it is left alone; a
    /// server that does not answer within the bound breaks the connection, which then is not pooled either.
    /// </summary>
    private static async Task UnlistenAsync(NpgsqlConnection connection)
    {
        if (connection.FullState != System.Data.ConnectionState.Open) return;
        try
        {
            using var bounded = new CancellationTokenSource(UnlistenTimeout);
            using var unlisten = new NpgsqlCommand("UNLISTEN *", connection);
            await unlisten.ExecuteNonQueryAsync(bounded.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is NpgsqlException or OperationCanceledException or InvalidOperationException)
        {
            // The connection is broken (or being broken by the cancellation): it does not return to the pool.
        }
    }

    private void Signal(string queue) => _signals.Signal(queue);

    private void SignalAll() => _signals.SignalAll();

    public async ValueTask DisposeAsync()
    {
        Task? loop;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            loop = _loop;
        }
        // Close wakes every waiter with false, so none outlives the store.
        _signals.Close();
        await _stop.CancelAsync().ConfigureAwait(false);
        if (loop is not null) await loop.ConfigureAwait(false);
        // _stop is not disposed: waiters still in flight read it, and without a timer it holds nothing to free.
    }
}
