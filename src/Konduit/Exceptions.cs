namespace Konduit;

/// <summary>Base type of the exceptions Konduit throws for conditions other than bad arguments.</summary>
public class KonduitException : Exception
{
    /// <summary>Creates the exception.</summary>
    public KonduitException(string message) : base(message) { }

    /// <summary>Creates the exception with an inner cause.</summary>
    public KonduitException(string message, Exception? innerException) : base(message, innerException) { }
}

/// <summary>
/// The lease is no longer held: it expired (and may have been reclaimed or re-leased), the task was canceled,
/// or it was already completed or failed. The holder must stop working the task and must not retry the call.
/// </summary>
public sealed class LeaseLostException : KonduitException
{
    /// <summary>Creates the exception for the lease (<paramref name="taskId"/>, <paramref name="token"/>).</summary>
    /// <param name="taskId">The task.</param>
    /// <param name="token">The stale fencing token.</param>
    /// <param name="currentState">The task's state when the call was refused, if known (null when the task no longer exists).</param>
    public LeaseLostException(Guid taskId, long token, TaskState? currentState)
        : base(BuildMessage(taskId, token, currentState))
    {
        TaskId = taskId;
        LeaseToken = token;
        CurrentState = currentState;
    }

    /// <summary>The task.</summary>
    public Guid TaskId { get; }

    /// <summary>The fencing token that is no longer valid.</summary>
    public long LeaseToken { get; }

    /// <summary>The task's state when the call was refused; null when the task no longer exists.</summary>
    public TaskState? CurrentState { get; }

    private static string BuildMessage(Guid taskId, long token, TaskState? state) => state switch
    {
        null => $"Lease lost on task {taskId} (token {token}): the task no longer exists.",
        TaskState.Running => $"Lease lost on task {taskId} (token {token}): the lease expired or the task was leased again with a newer token.",
        TaskState.Pending => $"Lease lost on task {taskId} (token {token}): the lease expired and the task was reclaimed.",
        _ => $"Lease lost on task {taskId} (token {token}): the task is already {state}.",
    };
}

/// <summary>No task with the given id exists (it never did, or it was purged).</summary>
public sealed class TaskNotFoundException : KonduitException
{
    /// <summary>Creates the exception.</summary>
    public TaskNotFoundException(Guid taskId) : base($"Task {taskId} does not exist (it was never enqueued or has been purged).")
        => TaskId = taskId;

    /// <summary>The missing task's id.</summary>
    public Guid TaskId { get; }
}

/// <summary>The operation is not allowed in the task's current state (for example, redriving a pending task).</summary>
public sealed class InvalidTaskStateException : KonduitException
{
    /// <summary>Creates the exception.</summary>
    public InvalidTaskStateException(Guid taskId, TaskState currentState, string operation, IEnumerable<TaskState> allowedStates)
        : base($"Cannot {operation} task {taskId}: it is {currentState}; {operation} is allowed only from {string.Join(" or ", allowedStates)}.")
    {
        TaskId = taskId;
        CurrentState = currentState;
    }

    /// <summary>The task.</summary>
    public Guid TaskId { get; }

    /// <summary>Its state when the operation was refused.</summary>
    public TaskState CurrentState { get; }
}

/// <summary>
/// The store could not be reached or refused the call for a transient reason (connection refused or cut, server
/// restarting or shutting down, failover, timeout). The call's outcome is unknown unless the store says otherwise:
/// an enqueue may or may not have been stored, so retry it with an idempotency key. The driver's own exception is
/// the <see cref="Exception.InnerException"/>. Every store maps its driver's transient errors to this type.
/// </summary>
public sealed class StoreUnavailableException : KonduitException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="store">The store's <see cref="ITaskStore.Name"/> (or an event log's name).</param>
    /// <param name="operation">What was being done, e.g. <c>lease</c>.</param>
    /// <param name="innerException">The driver's exception.</param>
    public StoreUnavailableException(string store, string operation, Exception? innerException)
        : base($"The {store} store is unavailable ({operation}): {innerException?.Message ?? "no detail"}", innerException)
    {
        Store = store;
        Operation = operation;
    }

    /// <summary>The store's name.</summary>
    public string Store { get; }

    /// <summary>The operation that failed.</summary>
    public string Operation { get; }
}
