using System.Collections.Concurrent;
using Npgsql;

namespace Konduit.Postgres;

/// <summary>
/// Wakes listening workers after the store's own enqueues have committed. Signals coalesce: while one NOTIFY
/// round trip is in flight, queues signalled meanwhile are collected and sent together in the next one, so a
/// burst of enqueues costs a handful of notifications instead of one notifying commit each. A notifying
/// transaction holds a database-wide lock through its commit; keeping NOTIFY out of the enqueue transaction
/// lets concurrent enqueues commit (and group-commit their fsyncs) in parallel (see ADR 001).
/// </summary>
/// <remarks>
/// Best effort by design: a lost notification only delays pickup until a worker's next poll, so failures are
/// swallowed here and the polling fallback covers them.
/// </remarks>
internal sealed class PostgresNotifier(NpgsqlDataSource dataSource, string channel, string notifySql, bool prepare = false) : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, byte> _pending = new(StringComparer.Ordinal);
    private int _flushing;
    private Task _flush = Task.CompletedTask;
    private volatile bool _disposed;

    /// <summary>Schedules a wake-up for <paramref name="queue"/>; returns at once.</summary>
    public void Signal(string queue)
    {
        if (_disposed) return;
        _pending.TryAdd(queue, 0);
        if (Interlocked.CompareExchange(ref _flushing, 1, 0) == 0)
            _flush = Task.Run(FlushAsync);
    }

    /// <summary>
    /// Claims the notifier for an inline notification when none is in flight: the caller then sends
    /// the NOTIFY in the same round trip as its (self-committing) enqueue,
    /// as a separate transaction after it, and must call <see cref="EndInline"/>. False while a notification is in
    /// flight: the caller signals after its commit as usual, and the burst coalesces.
    /// </summary>
    public bool TryBeginInline() => !_disposed && Interlocked.CompareExchange(ref _flushing, 1, 0) == 0;

    /// <summary>
    /// Ends an inline notification (sent or not): signals that arrived meanwhile found the notifier busy and left
    /// their queues pending, so they are flushed now.
    /// </summary>
    public void EndInline()
    {
        Volatile.Write(ref _flushing, 0);
        if (!_pending.IsEmpty && !_disposed && Interlocked.CompareExchange(ref _flushing, 1, 0) == 0)
            _flush = Task.Run(FlushAsync);
    }

    private async Task FlushAsync()
    {
        while (true)
        {
            var queues = Drain();
            if (queues.Length == 0)
            {
                Volatile.Write(ref _flushing, 0);
                // A signal that arrived after the drain but before the flag dropped found the flag set and left its
                // queue for us: take the flag back and go round again, unless another flusher already has.
                if (_pending.IsEmpty || Interlocked.CompareExchange(ref _flushing, 1, 0) != 0) return;
                continue;
            }
            try
            {
                var connection = await dataSource.OpenConnectionAsync().ConfigureAwait(false);
                await using (connection.ConfigureAwait(false))
                {
                    using var cmd = new NpgsqlCommand(notifySql, connection);
                    cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = channel });
                    cmd.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = queues });
                    // Prepared (once per physical connection): a busy single producer sends one per enqueue.
                    if (prepare) await cmd.PrepareAsync().ConfigureAwait(false);
                    await cmd.ExecuteNonQueryAsync().ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or ObjectDisposedException)
            {
                // Best effort: workers poll as a fallback (see remarks).
            }
        }
    }

    /// <summary>Takes the pending queues (usually one: a one-element array without a list in between).</summary>
    private string[] Drain()
    {
        string? first = null;
        List<string>? more = null;
        foreach (var queue in _pending.Keys)
        {
            if (!_pending.TryRemove(queue, out _)) continue;
            if (first is null) first = queue;
            else (more ??= []).Add(queue);
        }
        if (first is null) return [];
        if (more is null) return [first];
        more.Insert(0, first);
        return [.. more];
    }

    /// <summary>Lets an in-flight notification finish; later signals are ignored.</summary>
    public async ValueTask DisposeAsync()
    {
        _disposed = true;
        await _flush.ConfigureAwait(false);
    }
}
