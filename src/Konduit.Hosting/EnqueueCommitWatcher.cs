using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Konduit.Hosting;

/// <summary>
/// Waits for the caller's transaction behind a transactional enqueue to commit, then runs what a plain enqueue does at
/// once (the Enqueued events, the enqueue metric, the local wake-up). A rolled-back enqueue gets none of them.
/// </summary>
/// <remarks>
/// A <see cref="System.Data.Common.DbTransaction"/> raises nothing on commit, and Npgsql reuses its transaction objects,
/// so the one store-neutral sign of a commit is the task becoming visible to another connection: the watcher reads
/// one created task back with <see cref="ITaskStore.GetAsync"/>, soon after the call and then with a doubling interval,
/// for at most <see cref="GiveUpAfter"/>. A transaction still open after that, or a task purged before it was seen,
/// loses its Enqueued event and metric, never the task. Pending confirmations die with the process.
/// </remarks>
internal sealed class EnqueueCommitWatcher : IAsyncDisposable
{
    /// <summary>How long a transaction may stay open after the enqueue and still have its events recorded.</summary>
    public static readonly TimeSpan GiveUpAfter = TimeSpan.FromMinutes(10);

    /// <summary>More pending transactions than this are not watched (their events and metric are dropped, with a warning).</summary>
    public const int MaxPending = 100_000;

    private static readonly TimeSpan FirstProbe = TimeSpan.FromMilliseconds(5);
    private static readonly TimeSpan MaxProbeInterval = TimeSpan.FromSeconds(2);

    private readonly Channel<PendingCommit> _incoming = Channel.CreateUnbounded<PendingCommit>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stopping = new();
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _startLock = new();
    private Task? _loop;
    private int _pending;

    public EnqueueCommitWatcher(TimeProvider time, ILoggerFactory? loggerFactory = null)
    {
        _time = time;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Konduit.Client");
    }

    /// <summary>Runs <paramref name="onCommitted"/> once task <paramref name="taskId"/> is visible in <paramref name="store"/>.</summary>
    public void Watch(ITaskStore store, Guid taskId, Action onCommitted)
    {
        if (Interlocked.Increment(ref _pending) > MaxPending)
        {
            Interlocked.Decrement(ref _pending);
            Log.CommitWatchDropped(_logger, taskId, MaxPending);
            return;
        }
        EnsureStarted();
        var now = _time.GetUtcNow();
        _incoming.Writer.TryWrite(new PendingCommit(store, taskId, onCommitted, now + GiveUpAfter) { NextProbeAt = now + FirstProbe, Interval = FirstProbe });
    }

    /// <summary>How many transactional enqueues are waiting for their commit to be seen (for tests).</summary>
    public int Pending => Volatile.Read(ref _pending);

    private void EnsureStarted()
    {
        if (_loop is not null) return;
        lock (_startLock) _loop ??= Task.Run(() => RunAsync(_stopping.Token));
    }

    private async Task RunAsync(CancellationToken stoppingToken)
    {
        var pending = new List<PendingCommit>();
        while (!stoppingToken.IsCancellationRequested)
        {
            while (_incoming.Reader.TryRead(out var added)) pending.Add(added);
            if (pending.Count == 0)
            {
                if (!await _incoming.Reader.WaitToReadAsync(stoppingToken).ConfigureAwait(false)) return;
                continue;
            }

            var now = _time.GetUtcNow();
            for (var i = pending.Count - 1; i >= 0; i--)
            {
                var p = pending[i];
                if (p.NextProbeAt > now) continue;
                if (await IsVisibleAsync(p, stoppingToken).ConfigureAwait(false))
                {
                    Run(p);
                    Remove(pending, i);
                }
                else if (now >= p.GiveUpAt)
                {
                    Log.CommitNotSeen(_logger, p.TaskId, GiveUpAfter);
                    Remove(pending, i);
                }
                else
                {
                    p.Interval = TimeSpan.FromTicks(Math.Min(p.Interval.Ticks * 2, MaxProbeInterval.Ticks));
                    p.NextProbeAt = now + p.Interval;
                }
            }

            if (pending.Count == 0) continue;
            var wait = pending.Min(p => p.NextProbeAt) - _time.GetUtcNow();
            if (wait <= TimeSpan.Zero) continue;
            using var probeDue = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            var delay = Task.Delay(wait, _time, probeDue.Token);
            // A new enqueue is probed at its own first-probe time, not at the end of a long backoff.
            var arrival = _incoming.Reader.WaitToReadAsync(probeDue.Token).AsTask();
            await Task.WhenAny(delay, arrival).ConfigureAwait(false);
            // The loser ends canceled, which is never an unobserved fault.
            await probeDue.CancelAsync().ConfigureAwait(false);
        }
    }

    private async Task<bool> IsVisibleAsync(PendingCommit p, CancellationToken stoppingToken)
    {
        try
        {
            await p.Store.GetAsync(p.TaskId, stoppingToken).ConfigureAwait(false);
            return true;
        }
        catch (TaskNotFoundException)
        {
            return false;
        }
#pragma warning disable CA1031 // A failed read (store down) is retried at the next probe; it must not end the loop.
        catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
#pragma warning restore CA1031
        {
            Log.CommitProbeFailed(_logger, ex, p.TaskId);
            return false;
        }
    }

    private void Run(PendingCommit p)
    {
        try
        {
            p.OnCommitted();
        }
#pragma warning disable CA1031 // Recording and metrics never throw by contract; a bug there must not stop other confirmations.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.CommitProbeFailed(_logger, ex, p.TaskId);
        }
    }

    private void Remove(List<PendingCommit> pending, int index)
    {
        pending[index] = pending[^1];
        pending.RemoveAt(pending.Count - 1);
        Interlocked.Decrement(ref _pending);
    }

    public async ValueTask DisposeAsync()
    {
        _incoming.Writer.TryComplete();
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_loop is { } loop)
        {
            try
            {
                await loop.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
        _stopping.Dispose();
    }

    private sealed class PendingCommit(ITaskStore store, Guid taskId, Action onCommitted, DateTimeOffset giveUpAt)
    {
        public ITaskStore Store { get; } = store;
        public Guid TaskId { get; } = taskId;
        public Action OnCommitted { get; } = onCommitted;
        public DateTimeOffset GiveUpAt { get; } = giveUpAt;
        public DateTimeOffset NextProbeAt { get; set; }
        public TimeSpan Interval { get; set; }
    }
}
