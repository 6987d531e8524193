namespace Konduit.Hosting;

/// <summary>
/// Works the tasks of one queue. Registered with <see cref="KonduitBuilderExtensions.AddHandler{THandler}(IKonduitBuilder, string)"/>;
/// resolved from a new DI scope for every task.
/// </summary>
/// <remarks>
/// Returning normally completes the task. Throwing fails the attempt: the task is retried according to the
/// queue's retry policy until its attempts run out, or dead-lettered at once when the exception is a
/// <see cref="NonRetryableException"/>. The <see cref="CancellationToken"/> fires when the lease is lost
/// (heartbeat refused, task canceled) or when the host shuts down past its grace period; a task whose
/// handler was canceled is never completed.
/// </remarks>
public interface ITaskHandler
{
    /// <summary>Works one task.</summary>
    Task HandleAsync(TaskContext context, CancellationToken cancellationToken);
}

/// <summary>
/// Works tasks whose payload is <typeparamref name="TPayload"/> as UTF-8 JSON. A payload that does not
/// deserialize dead-letters the task (it would fail the same way on every attempt).
/// </summary>
public interface ITaskHandler<in TPayload>
{
    /// <summary>Works one task.</summary>
    Task HandleAsync(TPayload payload, TaskContext context, CancellationToken cancellationToken);
}

/// <summary>
/// Thrown by a handler (or wrapping its error) to dead-letter the task at once, whatever attempts remain:
/// the failure will not go away by retrying (bad input, a permanent rejection).
/// </summary>
public class NonRetryableException : Exception
{
    /// <summary>Creates the exception.</summary>
    public NonRetryableException() : base("The task failed with a non-retryable error.") { }

    /// <summary>Creates the exception.</summary>
    public NonRetryableException(string message) : base(message) { }

    /// <summary>Creates the exception with its cause.</summary>
    public NonRetryableException(string message, Exception? innerException) : base(message, innerException) { }
}

/// <summary>
/// The error an attempt fails with when its handler runs longer than the queue's
/// <see cref="KonduitQueueOptions.ExecutionTimeout"/>: the handler's token was canceled and the attempt recorded as
/// failed (retryable: the retry policy applies).
/// </summary>
public class ExecutionTimeoutException : TimeoutException
{
    /// <summary>Creates the exception.</summary>
    public ExecutionTimeoutException() : base("The handler ran longer than the queue's execution timeout and was canceled.") { }

    /// <summary>Creates the exception.</summary>
    public ExecutionTimeoutException(string message) : base(message) { }

    /// <summary>Creates the exception with its cause.</summary>
    public ExecutionTimeoutException(string message, Exception? innerException) : base(message, innerException) { }

    /// <summary>Creates the exception for a handler of <paramref name="queue"/> that ran past <paramref name="timeout"/>.</summary>
    public ExecutionTimeoutException(string queue, TimeSpan timeout, Exception? innerException = null)
        : base($"The handler ran longer than the execution timeout of {timeout} (Konduit:Queues:{queue}:ExecutionTimeout) and was canceled; the attempt failed and the retry policy applies.", innerException)
    {
        Timeout = timeout;
    }

    /// <summary>The timeout that was exceeded (null when not given).</summary>
    public TimeSpan? Timeout { get; }
}
