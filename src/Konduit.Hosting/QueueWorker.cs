using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Konduit.Hosting;

/// <summary>
/// The hosted worker of one queue: leases in batches up to its free concurrency, runs handlers concurrently,
/// heartbeats each running task, completes (batched) or fails it, and backs off when the queue is empty.
/// </summary>
/// <remarks>
/// Shutdown: leasing stops, running handlers get <see cref="KonduitOptions.ShutdownGracePeriod"/> to finish and are
/// then canceled; a canceled handler's task is neither completed nor failed, its lease is left to expire and the
/// sweeper of some node returns it to the queue (issue 4: never complete a task whose handler did not finish).
/// </remarks>
internal sealed class QueueWorker : IHostedService, IDisposable
{
    internal const int MaxCompletionBatch = 256;

    private readonly HandlerRegistration _registration;
    private readonly IServiceProvider _services;
    private readonly IServiceScopeFactory _scopes;
    private readonly KonduitStoreHost _storeHost;
    private readonly KonduitMetrics _metrics;
    private readonly LocalWakeUp _wakeUp;
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
    private readonly ConcurrentDictionary<long, Task> _running = new();
    private readonly Channel<PendingCompletion> _completions =
        Channel.CreateUnbounded<PendingCompletion>(new UnboundedChannelOptions { SingleReader = true });

    private ITaskStore _store = null!;
    private string _storeName = "";
    private Task? _loop;
    private Task? _completer;
    private long _nextRunId;

    public QueueWorker(
        HandlerRegistration registration,
        IServiceProvider services,
        IServiceScopeFactory scopes,
        KonduitStoreHost storeHost,
        IOptions<KonduitOptions> options,
        KonduitMetrics metrics,
        LocalWakeUp wakeUp,
        TimeProvider time,
        ILoggerFactory? loggerFactory = null)
    {
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
        Log.WorkerStarted(_logger, _workerId, _queue, _options.Concurrency, _leaseDuration, _heartbeatInterval);
        _completer = Task.Run(CompleteLoopAsync, CancellationToken.None);
        _loop = Task.Run(LeaseLoopAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_loop is null) return;
        await _stopLeasing.CancelAsync().ConfigureAwait(false);
        // The host's own shutdown timeout: past it, in-flight store calls are canceled too.
        using var hard = cancellationToken.Register(static s => ((CancellationTokenSource)s!).Cancel(), _hardStop);
        await Quietly(_loop.WaitAsync(cancellationToken)).ConfigureAwait(false);

        var running = _running.Values.ToArray();
        Log.WorkerStopping(_logger, _queue, running.Length, _gracePeriod);
        if (running.Length > 0)
        {
            var all = Task.WhenAll(running);
            try
            {
                await all.WaitAsync(_gracePeriod, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
            {
                Log.GraceExpired(_logger, _queue, _running.Count);
                await _abandon.CancelAsync().ConfigureAwait(false);
            }
            // Canceled handlers only need to unwind; one that ignores its token is left behind when the host gives up.
            await Quietly(all.WaitAsync(cancellationToken)).ConfigureAwait(false);
        }

        _completions.Writer.TryComplete();
        if (_completer is not null) await Quietly(_completer.WaitAsync(cancellationToken)).ConfigureAwait(false);
        Log.WorkerStopped(_logger, _queue);
    }

    public void Dispose()
    {
        _stopLeasing.Dispose();
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
            var want = 1;
            while (want < maxBatch && _slots.Wait(0))
            {
                if (_outstanding.Wait(0))
                {
                    want++;
                    continue;
                }
                _slots.Release();
                break;
            }

            IReadOnlyList<TaskLease> leases;
            try
            {
                // Not canceled by the stop signal: a lease call in flight at shutdown finishes, and its tasks run
                // within the grace period like the others instead of being leased and forgotten.
                leases = await _store.LeaseAsync(_queue, _workerId, want, _leaseDuration, _hardStop.Token).ConfigureAwait(false);
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
                var id = Interlocked.Increment(ref _nextRunId);
                var run = Task.Run(() => RunAsync(lease), CancellationToken.None);
                _running[id] = run;
                _ = run.ContinueWith((_, state) => ((ConcurrentDictionary<long, Task>)state!).TryRemove(id, out Task? _),
                    _running, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }
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
        var local = _wakeUp.WaitAsync(_queue);
        if (local.IsCompleted) return;
        // With push wake-up the store signals new work, so the poll timeout is only a safety net.
        var timeout = _store.Capabilities.PushWakeUp ? _options.MaxPollInterval : delay;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(stop);
        var storeWait = _store.WaitForWorkAsync(_queue, timeout, cts.Token);
        await Task.WhenAny(storeWait, local).ConfigureAwait(false);
        await cts.CancelAsync().ConfigureAwait(false);
        try
        {
            await storeWait.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex)
        {
            // The store could not wait (connection trouble): poll on the timer instead of spinning.
            Log.LeaseFailed(_logger, ex, _queue, delay);
            await Quietly(Task.Delay(delay, _time, stop)).ConfigureAwait(false);
        }
    }

    private async Task RunAsync(TaskLease lease)
    {
        var started = _time.GetTimestamp();
        _metrics.InFlight(_queue, _storeName, 1);
        // Both instants by the store's clock: the lease began ExpiresAt − duration; the task was due at RunAt.
        _metrics.QueueWait(_queue, _storeName, lease.ExpiresAt - _leaseDuration - lease.RunAt);
        Log.TaskLeased(_logger, lease.TaskId, _queue, lease.Attempt, lease.MaxAttempts);
        var state = new LeaseState(lease);
        var slotHeld = true;
        try
        {
            using var execution = CancellationTokenSource.CreateLinkedTokenSource(_abandon.Token);
            using var heartbeat = new Heartbeat(this, state, execution);
            using var activity = KonduitDiagnostics.StartProcess(lease, _storeName);

            Exception? error = null;
            byte[]? result = null;
            bool canceled;
            try
            {
                var scope = _scopes.CreateAsyncScope();
                await using (scope.ConfigureAwait(false))
                {
                    var context = new TaskContext(lease, scope.ServiceProvider);
                    await _registration.Invoke(scope.ServiceProvider, context, execution.Token).ConfigureAwait(false);
                    result = context.Result;
                }
                canceled = execution.IsCancellationRequested;
            }
            catch (Exception ex)
            {
                canceled = execution.IsCancellationRequested;
                error = ex;
            }

            // No heartbeat starts after this; one in flight completes before complete/fail.
            await heartbeat.StopAsync().ConfigureAwait(false);
            var elapsed = _time.GetElapsedTime(started);
            _metrics.Duration(_queue, _storeName, elapsed);
            // The handler is done: its slot goes to the next task while the outcome is recorded (completions are
            // batched, so holding the slot for the round trip would cap throughput at concurrency / latency).
            ReleaseSlot(ref slotHeld);

            if (state.Lost)
            {
                ReportLeaseLost(lease, state.LostState, activity);
            }
            else if (canceled)
            {
                // Canceled at shutdown before the handler returned: it did not finish, so the task is neither
                // completed nor failed. The lease expires and the sweeper hands the task out again.
                Log.TaskAbandoned(_logger, lease.TaskId, _queue, lease.Attempt);
                activity?.SetStatus(ActivityStatusCode.Error, "abandoned at shutdown");
            }
            else if (error is null)
            {
                if (await CompleteAsync(state.Lease, result).ConfigureAwait(false))
                {
                    _metrics.Completed(_queue, _storeName);
                    Log.TaskCompleted(_logger, lease.TaskId, _queue, lease.Attempt, elapsed.TotalMilliseconds);
                    activity?.SetStatus(ActivityStatusCode.Ok);
                }
                else
                {
                    ReportLeaseLost(lease, null, activity);
                }
            }
            else
            {
                await FailAsync(state.Lease, error, activity).ConfigureAwait(false);
            }
        }
        catch (LeaseLostException ex)
        {
            ReportLeaseLost(lease, ex.CurrentState, null);
        }
        catch (Exception ex)
        {
            Log.OutcomeFailed(_logger, ex, lease.TaskId, _queue, lease.Attempt);
        }
        finally
        {
            ReleaseSlot(ref slotHeld);
            // The outcome is recorded (or given up on): the lease loop may take another task.
            _outstanding.Release();
        }
    }

    private void ReleaseSlot(ref bool held)
    {
        if (!held) return;
        held = false;
        _metrics.InFlight(_queue, _storeName, -1);
        _slots.Release();
    }

    private void ReportLeaseLost(TaskLease lease, TaskState? state, Activity? activity)
    {
        _metrics.LeaseLost(_queue, _storeName);
        Log.LeaseLost(_logger, lease.TaskId, _queue, lease.Attempt, state);
        activity?.SetStatus(ActivityStatusCode.Error, "lease lost");
    }

    private async Task FailAsync(TaskLease lease, Exception error, Activity? activity)
    {
        var nonRetryable = error is NonRetryableException;
        var options = new FailOptions { Retryable = !nonRetryable, RetryPolicy = _retryPolicy };
        activity?.SetStatus(ActivityStatusCode.Error, error.GetType().Name);
        activity?.SetTag("error.type", error.GetType().FullName);
        var outcome = await _store.FailAsync(lease, error.ToString(), options, _hardStop.Token).ConfigureAwait(false);
        if (outcome.WillRetry)
        {
            _metrics.Retried(_queue, _storeName);
            Log.TaskWillRetry(_logger, error, lease.TaskId, _queue, lease.Attempt, outcome.NextRunAt);
        }
        else
        {
            _metrics.Failed(_queue, _storeName);
            Log.TaskDeadLettered(_logger, error, lease.TaskId, _queue, lease.Attempt, nonRetryable);
        }
    }

    private async Task<bool> CompleteAsync(TaskLease lease, byte[]? result)
    {
        var pending = new PendingCompletion(lease, result);
        if (!_completions.Writer.TryWrite(pending))
        {
            await _store.CompleteAsync(lease, result, _hardStop.Token).ConfigureAwait(false);
            return true;
        }
        return await pending.Outcome.Task.ConfigureAwait(false);
    }

    /// <summary>Completes finished tasks in batches: what accumulated while the previous round trip ran.</summary>
    private async Task CompleteLoopAsync()
    {
        var reader = _completions.Reader;
        var batch = new List<PendingCompletion>(MaxCompletionBatch);
        while (await reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
        {
            batch.Clear();
            while (batch.Count < MaxCompletionBatch && reader.TryRead(out var item)) batch.Add(item);
            if (batch.Count == 0) continue;
            try
            {
                if (batch.Count == 1)
                {
                    try
                    {
                        await _store.CompleteAsync(batch[0].Lease, batch[0].Result, _hardStop.Token).ConfigureAwait(false);
                        batch[0].Outcome.TrySetResult(true);
                    }
                    catch (LeaseLostException)
                    {
                        batch[0].Outcome.TrySetResult(false);
                    }
                    continue;
                }
                var completions = new TaskCompletion[batch.Count];
                for (var i = 0; i < batch.Count; i++) completions[i] = new TaskCompletion(batch[i].Lease, batch[i].Result);
                var lost = await _store.CompleteManyAsync(completions, _hardStop.Token).ConfigureAwait(false);
                var lostSet = lost.Count == 0 ? null : lost.ToHashSet();
                foreach (var item in batch) item.Outcome.TrySetResult(lostSet is null || !lostSet.Contains(item.Lease.TaskId));
            }
            catch (Exception ex)
            {
                foreach (var item in batch) item.Outcome.TrySetException(ex);
            }
        }
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

    /// <summary>
    /// One running task's heartbeat: a one-shot timer re-armed after each renewal (no loop, delay task or extra
    /// token source per task; most tasks finish before the first beat). A renewal the store refuses marks the lease
    /// lost and cancels the handler; failed renewals are retried at half the interval until a whole lease has gone
    /// by without one. No beat starts once the handler is done or canceled.
    /// </summary>
    private sealed class Heartbeat : IDisposable
    {
        private readonly QueueWorker _worker;
        private readonly LeaseState _state;
        private readonly CancellationTokenSource _execution;
        private readonly ITimer _timer;
        private readonly Lock _gate = new();
        private long _lastRenewed;
        private bool _stopped;
        private TaskCompletionSource? _beating;

        public Heartbeat(QueueWorker worker, LeaseState state, CancellationTokenSource execution)
        {
            _worker = worker;
            _state = state;
            _execution = execution;
            _lastRenewed = worker._time.GetTimestamp();
            _timer = worker._time.CreateTimer(static s => ((Heartbeat)s!).Fire(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _timer.Change(worker._heartbeatInterval, Timeout.InfiniteTimeSpan);
        }

        /// <summary>Stops the beats; the returned task completes when a beat in flight has finished.</summary>
        public Task StopAsync()
        {
            Task? beating;
            lock (_gate)
            {
                _stopped = true;
                beating = _beating?.Task;
            }
            _timer.Dispose();
            return beating ?? Task.CompletedTask;
        }

        public void Dispose()
        {
            lock (_gate) _stopped = true;
            _timer.Dispose();
        }

        private void Fire()
        {
            lock (_gate)
            {
                if (_stopped || _execution.IsCancellationRequested) return;
                _beating = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
            _ = BeatAsync();
        }

        private async Task BeatAsync()
        {
            var worker = _worker;
            TimeSpan? next = null;
            try
            {
                // Not canceled when the handler finishes: an in-flight heartbeat completes before complete/fail.
                _state.Lease = await worker._store.HeartbeatAsync(_state.Lease, worker._leaseDuration, worker._hardStop.Token).ConfigureAwait(false);
                _lastRenewed = worker._time.GetTimestamp();
                next = worker._heartbeatInterval;
            }
            catch (LeaseLostException ex)
            {
                _state.MarkLost(ex.CurrentState);
                await _execution.CancelAsync().ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (worker._hardStop.IsCancellationRequested)
            {
            }
            catch (Exception ex)
            {
                Log.HeartbeatFailed(worker._logger, ex, _state.Lease.TaskId, worker._queue, _state.Lease.Attempt);
                if (worker._time.GetElapsedTime(_lastRenewed) >= worker._leaseDuration)
                {
                    // No renewal for a whole lease: it has expired by now, whoever holds the task.
                    _state.MarkLost(null);
                    await _execution.CancelAsync().ConfigureAwait(false);
                }
                else
                {
                    next = worker._heartbeatInterval / 2;
                }
            }
            finally
            {
                TaskCompletionSource? done;
                lock (_gate)
                {
                    done = _beating;
                    _beating = null;
                    if (!_stopped && next is { } due) _timer.Change(due, Timeout.InfiniteTimeSpan);
                }
                done?.TrySetResult();
            }
        }
    }

    private sealed class LeaseState(TaskLease lease)
    {
        private volatile TaskLease _lease = lease;
        private volatile bool _lost;

        public TaskLease Lease { get => _lease; set => _lease = value; }
        public bool Lost => _lost;
        public TaskState? LostState { get; private set; }

        public void MarkLost(TaskState? state)
        {
            LostState = state;
            _lost = true;
        }
    }

    private sealed class PendingCompletion(TaskLease lease, byte[]? result)
    {
        public TaskLease Lease { get; } = lease;
        public byte[]? Result { get; } = result;
        public TaskCompletionSource<bool> Outcome { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
