using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace Konduit.Hosting;

/// <summary>
/// Completes finished tasks in batches: what accumulated while the previous round trip ran goes in the next
/// <see cref="ITaskStore.CompleteManyAsync"/> (one <see cref="ITaskStore.CompleteAsync"/> for a batch of one).
/// A batch the store could not take (<see cref="StoreUnavailableException"/>, a driver error) is retried with backoff
/// while each lease is still valid, instead of being dropped (issue 13 item 2: a dropped completion let the lease
/// expire and the finished task run again).
/// </summary>
internal sealed class CompletionBatcher
{
    internal const int MaxBatch = 256;

    private readonly ITaskStore _store;
    private readonly TimeProvider _time;
    private readonly OutcomeBackoff _backoff;
    private readonly CancellationToken _hardStop;
    private readonly ILogger _logger;
    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private Task? _loop;
    private int _retries;

    /// <param name="store">Where completions go.</param>
    /// <param name="time">The clock of the backoff and of the lease-validity check.</param>
    /// <param name="backoff">Delays between attempts.</param>
    /// <param name="hardStop">Cancels store calls and backoff waits (the host gave up on shutdown).</param>
    /// <param name="logger">Where retries are logged.</param>
    public CompletionBatcher(ITaskStore store, TimeProvider time, OutcomeBackoff backoff, CancellationToken hardStop, ILogger logger)
    {
        _logger = logger;
        _store = store;
        _time = time;
        _backoff = backoff;
        _hardStop = hardStop;
    }

    /// <summary>Retries so far (counted once each backoff wait has started).</summary>
    public int Retries => Volatile.Read(ref _retries);

    public void Start() => _loop ??= Task.Run(LoopAsync, CancellationToken.None);

    /// <summary>Stops taking completions and waits for the batches in flight.</summary>
    public async Task StopAsync()
    {
        _queue.Writer.TryComplete();
        if (_loop is not null) await _loop.ConfigureAwait(false);
    }

    /// <summary>
    /// Records the completion of <paramref name="lease"/>: true when the store accepted it, false when the lease was
    /// lost. Throws the store's last error when it gave up: the lease is no longer valid (lost, or expired by the
    /// local clock), the error cannot be cured by retrying (bad arguments), or the host stopped.
    /// </summary>
    /// <remarks>
    /// Not an async method: the completion source is the task the caller awaits, and the batch loop retries a failed
    /// batch itself, so a completion costs no state machine of its own (issue 15, allocations per task).
    /// </remarks>
    public Task<bool> CompleteAsync(TrackedLease lease, byte[]? result)
    {
        var pending = new Pending(lease, result, _backoff.First);
        if (!_queue.Writer.TryWrite(pending)) _ = CompleteAloneAsync(pending); // stopped: the batch loop is gone
        return pending.Task;
    }

    /// <summary>One completion on its own, retried like a batch (after the batch loop stopped).</summary>
    private async Task CompleteAloneAsync(Pending pending)
    {
        while (true)
        {
            try
            {
                await _store.CompleteAsync(pending.Lease.Lease, pending.Result, _hardStop).ConfigureAwait(false);
                pending.TrySetResult(true);
                return;
            }
            catch (LeaseLostException)
            {
                pending.TrySetResult(false);
                return;
            }
#pragma warning disable CA1031 // The error goes to the waiting caller, or the completion is retried.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                if (await RetryAfterAsync(pending, ex).ConfigureAwait(false) is null) return;
            }
        }
    }

    /// <summary>
    /// After <paramref name="error"/>: either fails <paramref name="pending"/> (not retryable, or its lease will not
    /// outlive the next delay) and returns null, or waits the backoff delay and returns the completion to try again.
    /// </summary>
    private async Task<Pending?> RetryAfterAsync(Pending pending, Exception error)
    {
        if (!OutcomeBackoff.IsRetryable(error, _hardStop))
        {
            pending.TrySetException(error);
            return null;
        }
        var delay = pending.Delay;
        if (!StillValid(pending.Lease, delay))
        {
            pending.TrySetException(new OutcomeNotRecordedException(error));
            return null;
        }
        var lease = pending.Lease;
        Log.OutcomeRetrying(_logger, error, lease.TaskId, lease.Lease.Queue, lease.Lease.Attempt, delay);
        var wait = Task.Delay(delay, _time, _hardStop);
        Interlocked.Increment(ref _retries);
        try
        {
            await wait.ConfigureAwait(false);
        }
        catch (OperationCanceledException ex)
        {
            pending.TrySetException(ex);
            return null;
        }
        pending.Delay = _backoff.Next(delay);
        return pending;
    }

    /// <summary>A failed batch item goes back in the queue after its backoff delay (or alone, once the loop stopped).</summary>
    private async Task RequeueAsync(Pending pending, Exception error)
    {
        if (await RetryAfterAsync(pending, error).ConfigureAwait(false) is null) return;
        if (!_queue.Writer.TryWrite(pending)) await CompleteAloneAsync(pending).ConfigureAwait(false);
    }

    /// <summary>Whether the lease is still worth a retry after <paramref name="delay"/>: not lost, not expired by then.</summary>
    private bool StillValid(TrackedLease lease, TimeSpan delay) =>
        !lease.IsLost && _time.GetUtcNow() + delay < lease.Lease.ExpiresAt;

    private async Task LoopAsync()
    {
        var reader = _queue.Reader;
        var batch = new List<Pending>(MaxBatch);
        while (await reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
        {
            batch.Clear();
            while (batch.Count < MaxBatch && reader.TryRead(out var item)) batch.Add(item);
            if (batch.Count == 0) continue;
            try
            {
                if (batch.Count == 1)
                {
                    try
                    {
                        await _store.CompleteAsync(batch[0].Lease.Lease, batch[0].Result, _hardStop).ConfigureAwait(false);
                        batch[0].TrySetResult(true);
                    }
                    catch (LeaseLostException)
                    {
                        batch[0].TrySetResult(false);
                    }
                    continue;
                }
                var completions = new TaskCompletion[batch.Count];
                for (var i = 0; i < batch.Count; i++) completions[i] = new TaskCompletion(batch[i].Lease.Lease, batch[i].Result);
                var lost = await _store.CompleteManyAsync(completions, _hardStop).ConfigureAwait(false);
                var lostSet = lost.Count == 0 ? null : lost.ToHashSet();
                foreach (var item in batch) item.TrySetResult(lostSet is null || !lostSet.Contains(item.Lease.TaskId));
            }
#pragma warning disable CA1031 // Each waiting completion gets the error, or is retried.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                foreach (var item in batch) _ = RequeueAsync(item, ex);
            }
        }
    }

    // The completion source itself carries the lease and its next backoff delay: one object per completion.
    private sealed class Pending(TrackedLease lease, byte[]? result, TimeSpan delay) : TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        public TrackedLease Lease { get; } = lease;
        public byte[]? Result { get; } = result;
        public TimeSpan Delay { get; set; } = delay;
    }
}

/// <summary>The outcome of a lease could not be recorded: the store kept failing until the lease was no longer valid (or the host stopped).</summary>
internal sealed class OutcomeNotRecordedException(Exception last) : Exception("The outcome could not be recorded before the lease ran out: " + last.Message, last);

/// <summary>Backoff between attempts to record an outcome, and which errors are worth another attempt.</summary>
internal sealed class OutcomeBackoff(TimeSpan first, TimeSpan max)
{
    /// <summary>The default: 100 ms doubling up to 2 s, so a short outage is bridged many times within a lease.</summary>
    public static OutcomeBackoff Default { get; } = new(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(2));

    public TimeSpan First { get; } = first;

    public TimeSpan Next(TimeSpan delay)
    {
        var doubled = delay * 2;
        return doubled > max ? max : doubled;
    }

    /// <summary>
    /// Everything but a lost lease (the answer), bad arguments (the same call fails again), a disposed store, and
    /// cancellation by the host giving up is worth retrying: transient errors arrive as
    /// <see cref="StoreUnavailableException"/>, but a store may still let a raw driver error through.
    /// </summary>
    public static bool IsRetryable(Exception ex, CancellationToken hardStop) => ex switch
    {
        LeaseLostException or ArgumentException or ObjectDisposedException => false,
        OperationCanceledException => !hardStop.IsCancellationRequested,
        _ => !hardStop.IsCancellationRequested,
    };
}
