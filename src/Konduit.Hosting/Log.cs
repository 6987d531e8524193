using Microsoft.Extensions.Logging;

namespace Konduit.Hosting;

/// <summary>Source-generated structured logs. Task id, queue and attempt are fields; payloads are never logged.</summary>
internal static partial class Log
{
    // Every log line written while a task runs, the handler's own included (scopes are shared by the host's loggers),
    // carries the task: TaskId, Queue and Attempt as scope properties.
    private static readonly Func<ILogger, Guid, string, int, IDisposable?> s_taskScope =
        LoggerMessage.DefineScope<Guid, string, int>("Task {TaskId} on {Queue}, attempt {Attempt}");

    public static IDisposable? TaskScope(ILogger logger, Guid taskId, string queue, int attempt) => s_taskScope(logger, taskId, queue, attempt);

    [LoggerMessage(1, LogLevel.Information, "Konduit store {StoreName} ready (store {Store}, push wake-up {PushWakeUp})")]
    public static partial void StoreReady(ILogger logger, string storeName, string store, bool pushWakeUp);

    [LoggerMessage(2, LogLevel.Information, "Worker {WorkerId} started on queue {Queue} (concurrency {Concurrency}, lease {Lease}, heartbeat {HeartbeatInterval})")]
    public static partial void WorkerStarted(ILogger logger, string workerId, string queue, int concurrency, TimeSpan lease, TimeSpan heartbeatInterval);

    [LoggerMessage(3, LogLevel.Information, "Worker on queue {Queue} stopping: {Running} task(s) running, grace period {GracePeriod}")]
    public static partial void WorkerStopping(ILogger logger, string queue, int running, TimeSpan gracePeriod);

    [LoggerMessage(4, LogLevel.Warning, "Grace period over on queue {Queue}: canceling {Running} handler(s); their leases are left to expire")]
    public static partial void GraceExpired(ILogger logger, string queue, int running);

    [LoggerMessage(5, LogLevel.Information, "Worker on queue {Queue} stopped")]
    public static partial void WorkerStopped(ILogger logger, string queue);

    [LoggerMessage(10, LogLevel.Debug, "Task {TaskId} leased from queue {Queue} (attempt {Attempt}/{MaxAttempts})")]
    public static partial void TaskLeased(ILogger logger, Guid taskId, string queue, int attempt, int maxAttempts);

    [LoggerMessage(11, LogLevel.Debug, "Task {TaskId} on queue {Queue} completed (attempt {Attempt}, {DurationMs} ms)")]
    public static partial void TaskCompleted(ILogger logger, Guid taskId, string queue, int attempt, double durationMs);

    [LoggerMessage(12, LogLevel.Warning, "Task {TaskId} on queue {Queue} failed on attempt {Attempt}; retry due at {NextRunAt}")]
    public static partial void TaskWillRetry(ILogger logger, Exception exception, Guid taskId, string queue, int attempt, DateTimeOffset? nextRunAt);

    [LoggerMessage(13, LogLevel.Error, "Task {TaskId} on queue {Queue} failed on attempt {Attempt} and was dead-lettered (non-retryable {NonRetryable})")]
    public static partial void TaskDeadLettered(ILogger logger, Exception exception, Guid taskId, string queue, int attempt, bool nonRetryable);

    [LoggerMessage(14, LogLevel.Warning, "Lease lost on task {TaskId} in queue {Queue} (attempt {Attempt}, state {State}): handler canceled, result discarded")]
    public static partial void LeaseLost(ILogger logger, Guid taskId, string queue, int attempt, TaskState? state);

    [LoggerMessage(15, LogLevel.Warning, "Heartbeat of {Count} lease(s) (lease {Lease}) failed; retrying in {Delay}")]
    public static partial void HeartbeatFailed(ILogger logger, Exception exception, int count, TimeSpan lease, TimeSpan delay);

    [LoggerMessage(27, LogLevel.Warning, "Task {TaskId} on queue {Queue} (attempt {Attempt}) ran longer than its execution timeout of {Timeout}; its handler was canceled and the attempt failed")]
    public static partial void TaskTimedOut(ILogger logger, Guid taskId, string queue, int attempt, TimeSpan timeout);

    [LoggerMessage(16, LogLevel.Information, "Task {TaskId} on queue {Queue} (attempt {Attempt}) abandoned at shutdown; its lease is left to expire")]
    public static partial void TaskAbandoned(ILogger logger, Guid taskId, string queue, int attempt);

    [LoggerMessage(17, LogLevel.Error, "Could not record the outcome of task {TaskId} on queue {Queue} (attempt {Attempt}); the lease will expire and the task will be retried")]
    public static partial void OutcomeFailed(ILogger logger, Exception exception, Guid taskId, string queue, int attempt);

    [LoggerMessage(18, LogLevel.Debug, "Leasing from queue {Queue} paused: {Outstanding} leased task(s) still await their recorded outcome")]
    public static partial void LeasingPaused(ILogger logger, string queue, int outstanding);

    [LoggerMessage(19, LogLevel.Warning, "Lease lost on task {TaskId} in queue {Queue} (attempt {Attempt}, state {State}) after its handler finished: the outcome was not recorded")]
    public static partial void OutcomeRefused(ILogger logger, Guid taskId, string queue, int attempt, TaskState? state);

    [LoggerMessage(26, LogLevel.Warning, "Recording the outcome of task {TaskId} on queue {Queue} (attempt {Attempt}) failed; retrying in {Delay} while the lease is valid")]
    public static partial void OutcomeRetrying(ILogger logger, Exception exception, Guid taskId, string queue, int attempt, TimeSpan delay);

    [LoggerMessage(33, LogLevel.Warning, "Completing task {TaskId} on queue {Queue} (attempt {Attempt}) with its slot's next lease failed; completing it alone")]
    public static partial void CompleteAndLeaseFailed(ILogger logger, Exception exception, Guid taskId, string queue, int attempt);

    [LoggerMessage(20, LogLevel.Error, "Leasing from queue {Queue} failed; backing off {Delay}")]
    public static partial void LeaseFailed(ILogger logger, Exception exception, string queue, TimeSpan delay);

    [LoggerMessage(21, LogLevel.Information, "Sweeper reclaimed {Count} expired lease(s) in store {Store}")]
    public static partial void Reclaimed(ILogger logger, int count, string store);

    [LoggerMessage(22, LogLevel.Error, "Sweeper failed on store {Store}")]
    public static partial void SweepFailed(ILogger logger, Exception exception, string store);

    [LoggerMessage(28, LogLevel.Warning, "Reading queue stats for the queue gauges failed on store {Store}; the gauges keep the last figures")]
    public static partial void QueueStatsFailed(ILogger logger, Exception exception, string store);

    [LoggerMessage(23, LogLevel.Error, "Worker on queue {Queue} could not start: the Konduit store did not become ready")]
    public static partial void StoreNotReady(ILogger logger, Exception exception, string queue);

    [LoggerMessage(24, LogLevel.Warning, "Upkeep of {Kind} {Component} failed; retrying at the next interval")]
    public static partial void MaintenanceFailed(ILogger logger, Exception exception, string kind, string component);

    [LoggerMessage(25, LogLevel.Information, "Sweeper purged {Count} finished task(s) in store {Store}")]
    public static partial void Purged(ILogger logger, int count, string store);

    [LoggerMessage(29, LogLevel.Warning, "{Key} is configured but this node has no handler for queue {Queue}: no worker runs it here (a typo in the queue name, or a producer-only node)")]
    public static partial void QueueWithoutHandler(ILogger logger, string key, string queue);

    [LoggerMessage(30, LogLevel.Debug, "Transactional enqueue of task {TaskId} not seen committed within {GiveUpAfter}: rolled back, or still open; no Enqueued event or metric for it")]
    public static partial void CommitNotSeen(ILogger logger, Guid taskId, TimeSpan giveUpAfter);

    [LoggerMessage(31, LogLevel.Warning, "Reading back transactionally enqueued task {TaskId} failed; retrying")]
    public static partial void CommitProbeFailed(ILogger logger, Exception exception, Guid taskId);

    [LoggerMessage(32, LogLevel.Warning, "More than {MaxPending} transactional enqueues wait for their commit; task {TaskId} gets no Enqueued event or metric")]
    public static partial void CommitWatchDropped(ILogger logger, Guid taskId, int maxPending);
}
