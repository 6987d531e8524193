using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Konduit.Hosting;

/// <summary>What a <see cref="TaskExecution"/> needs to know about its queue's worker.</summary>
internal sealed record ExecutionSettings(string Queue, TimeSpan LeaseDuration, TimeSpan HeartbeatInterval, RetryPolicy? RetryPolicy, TimeSpan? ExecutionTimeout = null);

/// <summary>
/// The worker side of the unbatched path (issue 15, complete-and-lease-next): a queue that fetches one task at a time
/// lets a successful run record its completion and lease its slot's next task in one store call
/// (<see cref="ITaskStore.CompleteAndLeaseAsync"/>), and the next task runs on that slot without the lease loop.
/// </summary>
internal interface ISlotChain
{
    /// <summary>The worker id new leases are taken under.</summary>
    string WorkerId { get; }

    /// <summary>False once the worker stopped leasing: no chained lease is asked for after that.</summary>
    bool Leasing { get; }

    /// <summary>
    /// Runs <paramref name="next"/> on the slot and outstanding permit of the run that leased it, which ends without
    /// releasing either (instead of its handler-done and run-ended callbacks).
    /// </summary>
    void RunChained(TaskLease next);
}

/// <summary>
/// Runs one leased task: tracks its lease with the <see cref="ILeaseRenewer"/> from lease to recorded outcome, runs
/// the handler in its own scope, then records the outcome — completed through the <see cref="CompletionBatcher"/>,
/// or failed with the handler's error — retrying a store that cannot take it while the lease is valid. With an
/// <see cref="ISlotChain"/> (one task per fetch) a success is recorded with the slot's next lease in one call instead.
/// </summary>
/// <remarks>
/// <para>Heartbeats go on until the outcome is recorded, not only while the handler runs (issue 13 item 2), so a slow
/// completion does not find its lease expired.</para>
/// <para>A lease lost while the handler runs cancels it (<see cref="Log.LeaseLost"/>); a lease lost after the handler
/// finished, or an outcome the store refuses, is logged as such (<see cref="Log.OutcomeRefused"/>).</para>
/// <para>A failure the store cannot record is retried like a completion; from the second attempt the error text is
/// made safe for any store (no control characters or unpaired surrogates), so an error text the store cannot hold
/// never loses the failure or its <see cref="NonRetryableException"/> (issue 13 item 6).</para>
/// </remarks>
internal sealed class TaskExecution(
    HandlerRegistration registration,
    IServiceScopeFactory scopes,
    ITaskStore store,
    ILeaseRenewer renewer,
    CompletionBatcher completions,
    KonduitMetrics metrics,
    TimeProvider time,
    ILogger logger,
    ExecutionSettings settings,
    OutcomeBackoff backoff,
    CancellationToken abandon,
    CancellationToken hardStop,
    ISlotChain? chain = null)
{
    private readonly string _queue = settings.Queue;
    private readonly string _storeName = store.Name;
    // One delegate for every run, the lease passed as state: no closure per task.
    private readonly Action<object?> _releaseOnAbandon = tracked => renewer.Release((TrackedLease)tracked!);

    /// <summary>
    /// Runs the task, off the caller's thread. <paramref name="handlerDone"/> is called exactly once: when the handler
    /// has returned (its slot may go to the next task), or at the end when the run failed before that;
    /// <paramref name="runEnded"/> once the outcome is recorded or given up on. The worker passes the same two
    /// delegates to every run: no per-task closure or wrapper task (issue 15, allocations per task).
    /// </summary>
    public async Task RunAsync(TaskLease lease, Action handlerDone, Action runEnded)
    {
        // Off the lease loop at once: the handler and its outcome run on the thread pool, not inline in the loop.
        await Task.Yield();
        var slotPassed = false;
        TaskLease? next = null;
        try
        {
            using var logScope = Log.TaskScope(logger, lease.TaskId, _queue, lease.Attempt);
            var started = time.GetTimestamp();
            // Both instants by the store's clock: the lease began ExpiresAt − duration; the task was due at RunAt.
            metrics.QueueWait(_queue, _storeName, lease.ExpiresAt - settings.LeaseDuration - lease.RunAt);
            Log.TaskLeased(logger, lease.TaskId, _queue, lease.Attempt, lease.MaxAttempts);
            var tracked = new TrackedLease(lease, settings.LeaseDuration, settings.HeartbeatInterval);
            renewer.Track(tracked);
            try
            {
                using var activity = KonduitDiagnostics.StartProcess(lease, _storeName);
                // The execution timeout is one more reason to cancel the handler's token (by the runtime's clock).
                using var timeout = settings.ExecutionTimeout is { } limit ? new CancellationTokenSource(limit, time) : null;
                using var execution = timeout is null
                    ? CancellationTokenSource.CreateLinkedTokenSource(abandon, tracked.LostToken)
                    : CancellationTokenSource.CreateLinkedTokenSource(abandon, tracked.LostToken, timeout.Token);
                Exception? error = null;
                byte[]? result = null;
                bool canceled;
                var timedOut = false;
                // Past the grace period the handler is abandoned: its lease is left to expire, so renewal stops at once
                // even for a handler that ignores its token.
                var abandoned = abandon.Register(_releaseOnAbandon, tracked);
                var handler = InvokeAsync(lease, execution.Token);
                try
                {
                    // At the timeout the attempt fails at once, whether or not the handler honours its token: a hung
                    // handler must not keep its task (and its heartbeats) forever (issue 17, "what is stuck").
                    if (timeout is not null && !handler.IsCompleted)
                        timedOut = await Task.WhenAny(handler, Task.Delay(Timeout.Infinite, timeout.Token)).ConfigureAwait(false) != handler;
                    if (!timedOut) result = await handler.ConfigureAwait(false);
                    canceled = execution.IsCancellationRequested;
                }
    #pragma warning disable CA1031 // The handler's exception is the task's failure, recorded below.
                catch (Exception ex)
    #pragma warning restore CA1031
                {
                    canceled = execution.IsCancellationRequested;
                    error = ex;
                }
                finally
                {
                    await abandoned.DisposeAsync().ConfigureAwait(false);
                }
                // Canceled by the timeout alone (not by shutdown or a lost lease): the attempt failed, retryable.
                if (timeout is { IsCancellationRequested: true } && !abandon.IsCancellationRequested && !tracked.IsLost)
                {
                    timedOut = true;
                    error = new ExecutionTimeoutException(_queue, settings.ExecutionTimeout!.Value, error is OperationCanceledException ? null : error);
                    canceled = false;
                    Log.TaskTimedOut(logger, lease.TaskId, _queue, lease.Attempt, settings.ExecutionTimeout.Value);
                }

                var elapsed = time.GetElapsedTime(started);
                metrics.Duration(_queue, _storeName, elapsed);
                // A success on a one-task-per-fetch queue keeps its slot through the completion, which leases the slot's
                // next task in the same call; the slot is released at the end when nothing came (see the finally).
                // The in-flight gauge counts the slot as taken until then: the chained task takes it over.
                var chaining = chain is not null && error is null && !canceled && !tracked.IsLost && !timedOut && chain.Leasing;
                if (chaining)
                {
                    // The slot passes on in the finally below (to the chained task, or back to the lease loop).
                }
                else if (timedOut && !handler.IsCompleted)
                {
                    // The slot stays taken until the handler really returns (concurrency stays honest); its late outcome is ignored.
                    slotPassed = true;
                    _ = handler.ContinueWith(static (t, done) =>
                    {
                        _ = t.Exception;
                        ((Action)done!)();
                    }, handlerDone, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                }
                else
                {
                    slotPassed = true;
                    handlerDone();
                }

                if (canceled && tracked.IsLost)
                {
                    ReportLeaseLost(Log.LeaseLost, lease, tracked.LostState, activity);
                }
                else if (canceled)
                {
                    // Canceled at shutdown before the handler returned: it did not finish, so the task is neither
                    // completed nor failed. The lease expires and the sweeper hands the task out again.
                    Log.TaskAbandoned(logger, lease.TaskId, _queue, lease.Attempt);
                    activity?.SetStatus(ActivityStatusCode.Error, "abandoned at shutdown");
                }
                else if (tracked.IsLost)
                {
                    ReportLeaseLost(Log.OutcomeRefused, lease, tracked.LostState, activity);
                }
                else if (error is null)
                {
                    bool completed;
                    if (chaining) (completed, next) = await CompleteAndLeaseAsync(tracked, result).ConfigureAwait(false);
                    else completed = await completions.CompleteAsync(tracked, result).ConfigureAwait(false);
                    if (completed)
                    {
                        metrics.Completed(_queue, _storeName);
                        Log.TaskCompleted(logger, lease.TaskId, _queue, lease.Attempt, elapsed.TotalMilliseconds);
                        activity?.SetStatus(ActivityStatusCode.Ok);
                    }
                    else
                    {
                        ReportLeaseLost(Log.OutcomeRefused, lease, null, activity);
                    }
                }
                else
                {
                    await FailAsync(tracked, error, activity).ConfigureAwait(false);
                }
            }
    #pragma warning disable CA1031 // Nothing more can be done: the lease expires and the sweeper returns the task.
            catch (Exception ex)
    #pragma warning restore CA1031
            {
                Log.OutcomeFailed(logger, ex, lease.TaskId, _queue, lease.Attempt);
            }
            finally
            {
                renewer.Release(tracked);
            }
        }
        finally
        {
            if (next is not null)
            {
                // The next task inherits this run's slot and outstanding permit.
                chain!.RunChained(next);
            }
            else
            {
                // A chaining run that leased nothing (or failed) frees its slot only now.
                if (!slotPassed) handlerDone();
                runEnded();
            }
        }
    }

    // The completion and the slot's next lease in one store call. A failure of that call falls back to the completion
    // batcher, which retries the completion alone while the lease is valid; the slot then goes back to the lease loop.
    private async Task<(bool Completed, TaskLease? Next)> CompleteAndLeaseAsync(TrackedLease tracked, byte[]? result)
    {
        try
        {
            var outcome = await store.CompleteAndLeaseAsync(new TaskCompletion(tracked.Lease, result), chain!.WorkerId, 1, settings.LeaseDuration, hardStop)
                .ConfigureAwait(false);
            return (outcome.Completed, outcome.Leases.Count > 0 ? outcome.Leases[0] : null);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !hardStop.IsCancellationRequested)
        {
            Log.CompleteAndLeaseFailed(logger, ex, tracked.Lease.TaskId, _queue, tracked.Lease.Attempt);
            return (await completions.CompleteAsync(tracked, result).ConfigureAwait(false), null);
        }
    }

    // The handler in its own scope; returns the result it set.
    private async Task<byte[]?> InvokeAsync(TaskLease lease, CancellationToken cancellationToken)
    {
        var scope = scopes.CreateAsyncScope();
        // Disposed through the struct's own DisposeAsync: `await using (scope.ConfigureAwait(false))` boxed the scope
        // once per task (issue 15, allocations per task).
        try
        {
            var context = new TaskContext(lease, scope.ServiceProvider);
            await registration.Invoke(scope.ServiceProvider, context, cancellationToken).ConfigureAwait(false);
            return context.Result;
        }
        finally
        {
            await scope.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task FailAsync(TrackedLease tracked, Exception error, Activity? activity)
    {
        var lease = tracked.Lease;
        var nonRetryable = error is NonRetryableException;
        var options = new FailOptions { Retryable = !nonRetryable, RetryPolicy = settings.RetryPolicy };
        activity?.SetStatus(ActivityStatusCode.Error, error.GetType().Name);
        activity?.SetTag("error.type", error.GetType().FullName);
        var text = error.ToString();
        var delay = backoff.First;
        FailResult outcome;
        while (true)
        {
            try
            {
                outcome = await store.FailAsync(tracked.Lease, text, options, hardStop).ConfigureAwait(false);
                break;
            }
            catch (LeaseLostException ex)
            {
                ReportLeaseLost(Log.OutcomeRefused, lease, ex.CurrentState, activity);
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !hardStop.IsCancellationRequested)
            {
                // Whatever the store objected to, the next attempt carries a text every store can hold.
                var safe = SafeErrorText(text);
                var cured = !ReferenceEquals(safe, text);
                text = safe;
                if (!cured && !OutcomeBackoff.IsRetryable(ex, hardStop)) throw;
                if (tracked.IsLost || time.GetUtcNow() + delay >= tracked.Lease.ExpiresAt) throw new OutcomeNotRecordedException(ex);
                Log.OutcomeRetrying(logger, ex, lease.TaskId, _queue, lease.Attempt, delay);
                await Task.Delay(delay, time, hardStop).ConfigureAwait(false);
                delay = backoff.Next(delay);
            }
        }
        if (outcome.WillRetry)
        {
            metrics.Retried(_queue, _storeName);
            Log.TaskWillRetry(logger, error, lease.TaskId, _queue, lease.Attempt, outcome.NextRunAt);
        }
        else
        {
            metrics.Failed(_queue, _storeName);
            Log.TaskDeadLettered(logger, error, lease.TaskId, _queue, lease.Attempt, nonRetryable);
        }
    }

    private void ReportLeaseLost(Action<ILogger, Guid, string, int, TaskState?> log, TaskLease lease, TaskState? state, Activity? activity)
    {
        metrics.LeaseLost(_queue, _storeName);
        log(logger, lease.TaskId, _queue, lease.Attempt, state);
        activity?.SetStatus(ActivityStatusCode.Error, "lease lost");
    }

    /// <summary>
    /// <paramref name="text"/> without what some store cannot hold — control characters other than tab and line
    /// breaks become '?', unpaired surrogates U+FFFD — cut to <see cref="TaskValidation.MaxErrorLength"/>; the same
    /// instance when nothing had to change.
    /// </summary>
    internal static string SafeErrorText(string text)
    {
        StringBuilder? safe = null;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            char? replacement = null;
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                safe?.Append(c).Append(text[i + 1]);
                i++;
                continue;
            }
            if (char.IsSurrogate(c)) replacement = '\uFFFD';
            else if (char.IsControl(c) && c is not ('\t' or '\n' or '\r')) replacement = '?';
            if (replacement is { } r)
            {
                safe ??= new StringBuilder(text.Length).Append(text, 0, i);
                safe.Append(r);
            }
            else
            {
                safe?.Append(c);
            }
        }
        var result = safe?.ToString() ?? text;
        return result.Length <= TaskValidation.MaxErrorLength ? result : result[..TaskValidation.MaxErrorLength];
    }
}
