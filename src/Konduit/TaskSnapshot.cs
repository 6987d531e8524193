namespace Konduit;

/// <summary>A full, point-in-time view of one task, as returned by <see cref="ITaskStore.GetAsync"/> and queries.</summary>
public sealed record TaskSnapshot
{
    /// <summary>The task id (time-ordered UUIDv7, generated client-side).</summary>
    public required Guid Id { get; init; }
    /// <summary>The queue.</summary>
    public required string Queue { get; init; }
    /// <summary>The state.</summary>
    public required TaskState State { get; init; }
    /// <summary>The priority.</summary>
    public int Priority { get; init; }
    /// <summary>How many times the task has been leased since it was enqueued or last redriven.</summary>
    public int Attempts { get; init; }
    /// <summary>The maximum number of attempts.</summary>
    public int MaxAttempts { get; init; }
    /// <summary>The current fencing token (0 before the first lease).</summary>
    public long LeaseToken { get; init; }
    /// <summary>When the task is or was due (store clock).</summary>
    public DateTimeOffset RunAt { get; init; }
    /// <summary>When the task was enqueued (store clock).</summary>
    public DateTimeOffset EnqueuedAt { get; init; }
    /// <summary>When the task last changed state (store clock).</summary>
    public DateTimeOffset UpdatedAt { get; init; }
    /// <summary>When the task was first leased, if ever.</summary>
    public DateTimeOffset? StartedAt { get; init; }
    /// <summary>When the task reached its terminal state, if it has.</summary>
    public DateTimeOffset? FinishedAt { get; init; }
    /// <summary>The worker that holds or last held the lease.</summary>
    public string? WorkerId { get; init; }
    /// <summary>When the current lease expires; null unless <see cref="TaskState.Running"/>.</summary>
    public DateTimeOffset? LeaseExpiresAt { get; init; }
    /// <summary>The idempotency key, if any.</summary>
    public string? IdempotencyKey { get; init; }
    /// <summary>The tenant, if any.</summary>
    public string? Tenant { get; init; }
    /// <summary>The headers (never null).</summary>
    public IReadOnlyDictionary<string, string> Headers { get; init; } = TaskLease.EmptyHeaders;
    /// <summary>The payload bytes.</summary>
    public byte[] Payload { get; init; } = [];
    /// <summary>The result stored by <see cref="ITaskStore.CompleteAsync"/>, if any.</summary>
    public byte[]? Result { get; init; }
    /// <summary>Every failure recorded for the task, oldest first (kept across retries and redrives).</summary>
    public IReadOnlyList<TaskError> Errors { get; init; } = [];
}

/// <summary>One recorded failure.</summary>
/// <param name="Attempt">The attempt that failed (1-based).</param>
/// <param name="Message">The error text (truncated to <see cref="TaskValidation.MaxErrorLength"/>).</param>
/// <param name="OccurredAt">When it was recorded (store clock).</param>
public sealed record TaskError(int Attempt, string Message, DateTimeOffset OccurredAt);
