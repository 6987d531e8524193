using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Konduit.Hosting;

/// <summary>
/// The hosted worker of one queue, and its lease loop: leases in batches up to its free concurrency, hands each task
/// to a <see cref="TaskExecution"/> (which runs the handler, keeps the lease renewed through the
/// <see cref="ILeaseRenewer"/> until the outcome is recorded, and records it, completions through the
/// <see cref="CompletionBatcher"/>), and backs off when the queue is empty.
/// </summary>
/// <remarks>
/// Shutdown: leasing stops, running handlers get <see cref="KonduitOptions.ShutdownGracePeriod"/> to finish and are
/// then canceled; a canceled handler's task is neither completed nor failed, its lease is left to expire and the
/// sweeper of some node returns it to the queue (issue 4: never complete a task whose handler did not finish).
/// </remarks>
internal sealed class QueueWorker : IHostedService, IDisposable, ISlotChain
{
    internal const int MaxCompletionBatch = CompletionBatcher.MaxBatch;

    private readonly HandlerRegistration _registration;
    private readonly IServiceProvider _services;
    private readonly IServiceScopeFactory _scopes;
    private readonly KonduitStoreHost _storeHost;
    private readonly KonduitMetrics _metrics;
    private readonly QueueWakeUpSignals _wakeUp;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _queue;
    private readonly KonduitQueueOptions _options;
    private readonly TimeSpan _leaseDuration;
    private readonly TimeSpan _heartbeatInterval;
    private readonly TimeSpan _gracePeriod;
    private readonly RetryPolicy? _retryPolicy;
    private readonly string _workerId;
    private readonly SemaphoreSlim _slots;
    // Leased tasks whose outcome is not recorded yet (running, or finished and waiting for the completion batch).
    // Handler slots are freed before the outcome is recorded, so without this bound a store whose completions lag
    // (a slow round trip, a bad plan) lets the lease loop take the whole queue: leases then expire unrecorded, tasks
    // run twice, and on Postgres every lease makes the next completion batch slower (see QueueWorker tests).
    private readonly SemaphoreSlim _outstanding;
    private readonly int _maxOutstanding;
    private readonly CancellationTokenSource _stopLeasing = new();
    private readonly CancellationTokenSource _abandon = new();
    private readonly CancellationTokenSource _hardStop = new();
    // Task runs not finished yet, and the signal StopAsync waits on once leasing has stopped: a counter instead of a
    // set of tasks, so a run costs no set entry and no continuation (issue 15, allocations per task).
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _running;
    // Lease calls of this worker in flight now: a partial batch waits while there is one (see LeaseLoopAsync), until
    // the token of _leaseCallEnded is canceled (each call's end, or the stop, replaces and cancels it).
    private int _leaseCallsInFlight;
    private CancellationTokenSource _leaseCallEnded = new();
    private readonly Action _handlerDone;
    private readonly Action _runEnded;
    private int _loopEnded; // 1 once StopAsync saw the lease loop end: from then on no run starts

    private ITaskStore _store = null!;
    private string _storeName = "";
    private CompletionBatcher _completions = null!;
    private TaskExecution _execution = null!;
    private Task? _loop;

    public QueueWorker(
        HandlerRegistration registration,
        IServiceProvider services,
        IServiceScopeFactory scopes,
        KonduitStoreHost storeHost,
        IOptions<KonduitOptions> options,
        KonduitMetrics metrics,
        QueueWakeUpSignals wakeUp,
        TimeProvider time,
        ILoggerFactory? loggerFactory = null)
    {
        _handlerDone = HandlerDone;
        _runEnded = RunEnded;
        _registration = registration;
        _services = services;
        _scopes = scopes;
        _storeHost = storeHost;
        _metrics = metrics;
        _wakeUp = wakeUp;
        _time = time;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Konduit.Hosting.QueueWorker");
        _queue = registration.Queue;
        _options = options.Value.GetQueue(_queue);
        _leaseDuration = _options.Lease;
        _heartbeatInterval = _options.EffectiveHeartbeatInterval;
        _gracePeriod = options.Value.ShutdownGracePeriod;
        _retryPolicy = _options.Retry?.ToPolicy();
        _slots = new SemaphoreSlim(_options.Concurrency, _options.Concurrency);
        _maxOutstanding = MaxOutstanding(_options.Concurrency);
        _outstanding = new SemaphoreSlim(_maxOutstanding, _maxOutstanding);
        var prefix = options.Value.WorkerId ?? $"{Environment.MachineName}:{Environment.ProcessId}";
        var workerId = $"{prefix}:{Guid.NewGuid():N}";
        _workerId = workerId.Length <= TaskValidation.MaxNameLength ? workerId : workerId[..TaskValidation.MaxNameLength];
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _store = _services.GetRequiredService<ITaskStore>();
        _storeName = _store.Name;
        var renewer = _services.GetRequiredService<ILeaseRenewer>();
        _completions = new CompletionBatcher(_store, _time, OutcomeBackoff.Default, _hardStop.Token, _logger);
        _execution = new TaskExecution(_registration, _scopes, _store, renewer, _completions, _metrics, _time, _logger,
            new ExecutionSettings(_queue, _leaseDuration, _heartbeatInterval, _retryPolicy, _options.ExecutionTimeout), OutcomeBackoff.Default,
            _abandon.Token, _hardStop.Token,
            // One task per fetch: a completion leases its slot's next task in the same store call (issue 15).
            chain: _options.MaxBatchSize == 1 ? this : null);
        Log.WorkerStarted(_logger, _workerId, _queue, _options.Concurrency, _leaseDuration, _heartbeatInterval);
        _completions.Start();
        // More than one lease call in flight when the queue asks for it (one task per call, many handlers): each loop
        // takes free slots and leases for them; the slots and outstanding permits bound them all together.
        var loops = _options.EffectiveLeaseCallsInFlight;
        _loop = loops == 1
            ? Task.Run(LeaseLoopAsync, CancellationToken.None)
            : Task.WhenAll(Enumerable.Range(0, loops).Select(_ => Task.Run(LeaseLoopAsync, CancellationToken.None)));
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_loop is null) return;
        await _stopLeasing.CancelAsync().ConfigureAwait(false);
        WakePartialBatches();
        // The host's own shutdown timeout: past it, in-flight store calls are canceled too.
        using var hard = cancellationToken.Register(static s => ((CancellationTokenSource)s!).Cancel(), _hardStop);
        await Quietly(_loop.WaitAsync(cancellationToken)).ConfigureAwait(false);

        // The lease loop has ended, so no run starts any more: the last one to finish signals _drained. (Both sides
        // write with a full fence before they read the other's field, so one of them always sees the count at zero.)
        Interlocked.Exchange(ref _loopEnded, 1);
        var running = Volatile.Read(ref _running);
        if (running == 0) _drained.TrySetResult();
        Log.WorkerStopping(_logger, _queue, running, _gracePeriod);
        if (running > 0)
        {
            var all = _drained.Task;
            try
            {
                await all.WaitAsync(_gracePeriod, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
            {
                Log.GraceExpired(_logger, _queue, Volatile.Read(ref _running));
                await _abandon.CancelAsync().ConfigureAwait(false);
            }
            // Canceled handlers only need to unwind; one that ignores its token is left behind when the host gives up.
            await Quietly(all.WaitAsync(cancellationToken)).ConfigureAwait(false);
        }

        await Quietly(_completions.StopAsync().WaitAsync(cancellationToken)).ConfigureAwait(false);
        Log.WorkerStopped(_logger, _queue);
    }

    public void Dispose()
    {
        _stopLeasing.Dispose();
        _leaseCallEnded.Dispose();
        _abandon.Dispose();
        _hardStop.Dispose();
        _slots.Dispose();
        _outstanding.Dispose();
    }

    /// <summary>
    /// Most leased tasks without a recorded outcome: the running handlers plus one full completion batch waiting
    /// while the previous one is in flight, so batching never starves and a lagging store stops the leasing.
    /// </summary>
    internal static int MaxOutstanding(int concurrency) => concurrency + MaxCompletionBatch;

    private async Task LeaseLoopAsync()
    {
        var stop = _stopLeasing.Token;
        try
        {
            await _storeHost.Ready.WaitAsync(stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return;
        }
        catch (Exception ex)
        {
            Log.StoreNotReady(_logger, ex, _queue);
            return;
        }

        var maxBatch = Math.Min(_options.MaxBatchSize, TaskValidation.MaxLeaseCount);
        var delay = _options.PollInterval;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await _slots.WaitAsync(stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            if (!_outstanding.Wait(0))
            {
                Log.LeasingPaused(_logger, _queue, _maxOutstanding);
                try
                {
                    await _outstanding.WaitAsync(stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    _slots.Release();
                    break;
                }
            }
            var want = 1 + TakeFree(maxBatch - 1);
            // Nagle's rule for lease calls: while another lease call is in flight, a partial batch waits for more free
            // slots until that call returns. A round trip for a few tasks costs the server about as much as one for a
            // full batch, and the call in flight brings work anyway; without the rule, a second loop woken by the first
            // freed slot leased one task per call (issue 15, batched drain). With no call in flight nothing waits.
            while (want < maxBatch)
            {
                // The token first, then the count: a call that ends after this read cancels this token.
                var callEnded = Volatile.Read(ref _leaseCallEnded).Token;
                if (Volatile.Read(ref _leaseCallsInFlight) == 0 || stop.IsCancellationRequested) break;
                var slot = _slots.WaitAsync(callEnded);
                await slot.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                if (!slot.IsCompletedSuccessfully) continue; // a lease call ended (or the worker stops): look again
                if (!_outstanding.Wait(0))
                {
                    _slots.Release();
                    break;
                }
                want += 1 + TakeFree(maxBatch - want - 1);
            }
            if (stop.IsCancellationRequested)
            {
                // Stopping: a call not made yet is not made.
                Return(want);
                break;
            }

            IReadOnlyList<TaskLease> leases;
            try
            {
                // Not canceled by the stop signal: a lease call in flight at shutdown finishes, and its tasks run
                // within the grace period like the others instead of being leased and forgotten.
                Interlocked.Increment(ref _leaseCallsInFlight);
                try
                {
                    leases = await _store.LeaseAsync(_queue, _workerId, want, _leaseDuration, _hardStop.Token).ConfigureAwait(false);
                }
                finally
                {
                    Interlocked.Decrement(ref _leaseCallsInFlight);
                    WakePartialBatches();
                }
            }
            catch (OperationCanceledException) when (_hardStop.IsCancellationRequested)
            {
                Return(want);
                break;
            }
            catch (Exception ex)
            {
                Return(want);
                Log.LeaseFailed(_logger, ex, _queue, delay);
                await Quietly(Task.Delay(delay, _time, stop)).ConfigureAwait(false);
                delay = Next(delay);
                continue;
            }

            if (leases.Count < want) Return(want - leases.Count);
            if (leases.Count == 0)
            {
                await WaitForWorkAsync(delay, stop).ConfigureAwait(false);
                delay = Next(delay);
                continue;
            }

            delay = _options.PollInterval;
            _metrics.Leased(_queue, _storeName, leases.Count);
            foreach (var lease in leases)
            {
                Interlocked.Increment(ref _running);
                _metrics.InFlight(_queue, _storeName, 1);
                _ = _execution.RunAsync(lease, _handlerDone, _runEnded); // never faults: it ends every run in its finally
            }
        }
    }

    string ISlotChain.WorkerId => _workerId;

    bool ISlotChain.Leasing => !_stopLeasing.IsCancellationRequested;

    // The chained task takes over the slot, the outstanding permit, the running count and the in-flight gauge of the run
    // that leased it, so none of them is released or taken here: only the lease is counted.
    void ISlotChain.RunChained(TaskLease next)
    {
        _metrics.Leased(_queue, _storeName, 1);
        _ = _execution.RunAsync(next, _handlerDone, _runEnded); // never faults: it ends every run in its finally
    }

    /// <summary>Handler slots neither running a handler nor taken by a lease loop (for tests).</summary>
    internal int FreeSlots => _slots.CurrentCount;

    /// <summary>Wakes the lease loops that hold a partial batch: a lease call ended, or the worker stops.</summary>
    private void WakePartialBatches()
    {
        // Not disposed: a loop may have read the old source and not its token yet (Token throws once disposed). A
        // source without a timer holds nothing the GC does not reclaim.
        Interlocked.Exchange(ref _leaseCallEnded, new CancellationTokenSource()).Cancel();
    }

    /// <summary>Takes up to <paramref name="max"/> free slots with their outstanding permits, without waiting.</summary>
    private int TakeFree(int max)
    {
        var taken = 0;
        while (taken < max && _slots.Wait(0))
        {
            if (_outstanding.Wait(0))
            {
                taken++;
                continue;
            }
            _slots.Release();
            break;
        }
        return taken;
    }

    /// <summary>Gives back the slots and outstanding permits of tasks that were asked for but not leased.</summary>
    private void Return(int count)
    {
        _slots.Release(count);
        _outstanding.Release(count);
    }

    private TimeSpan Next(TimeSpan delay)
    {
        var doubled = delay * 2;
        return doubled > _options.MaxPollInterval ? _options.MaxPollInterval : doubled;
    }

    /// <summary>Waits for the store's signal (or its timeout) or a local enqueue, whichever comes first.</summary>
    private async Task WaitForWorkAsync(TimeSpan delay, CancellationToken stop)
    {
        if (await _wakeUp.WaitAsync(_queue, TimeSpan.Zero, stop).ConfigureAwait(false)) return;
        // With push wake-up the store signals new work, so the poll timeout is only a safety net.
        var timeout = _store.Capabilities.PushWakeUp ? _options.MaxPollInterval : delay;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(stop);
        // A local signal that arrives as this wait is canceled is latched again, never lost (QueueWakeUpSignals).
        var local = _wakeUp.WaitAsync(_queue, Timeout.InfiniteTimeSpan, cts.Token);
        var storeWait = _store.WaitForWorkAsync(_queue, timeout, cts.Token);
        await Task.WhenAny(storeWait, local).ConfigureAwait(false);
        await cts.CancelAsync().ConfigureAwait(false);
        await Quietly(local).ConfigureAwait(false);
        try
        {
            await storeWait.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
#pragma warning disable CA1031 // The store could not wait (connection trouble): poll on the timer instead of spinning.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.LeaseFailed(_logger, ex, _queue, delay);
            await Quietly(Task.Delay(delay, _time, stop)).ConfigureAwait(false);
        }
    }

    // The outcome is recorded (or given up on): the lease loop may take another task.
    private void RunEnded()
    {
        _outstanding.Release();
        if (Interlocked.Decrement(ref _running) == 0 && Volatile.Read(ref _loopEnded) == 1) _drained.TrySetResult();
    }

    // The handler has returned: its slot goes to the next task while the outcome is recorded (completions are batched,
    // so holding the slot for the round trip would cap throughput at concurrency / latency).
    private void HandlerDone()
    {
        _metrics.InFlight(_queue, _storeName, -1);
        _slots.Release();
    }

    private static async Task Quietly(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
