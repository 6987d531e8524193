namespace Konduit;

/// <summary>What happened to a task. Every transition a store accepts maps to one kind.</summary>
public enum TaskEventKind
{
    /// <summary>A new task was stored (idempotent repeats are not events).</summary>
    Enqueued = 0,

    /// <summary>A worker leased the task (attempt and token are the lease's).</summary>
    Leased = 1,

    /// <summary>A lease was extended.</summary>
    Heartbeat = 2,

    /// <summary>The task succeeded.</summary>
    Completed = 3,

    /// <summary>The attempt failed and the task was dead-lettered (no retry).</summary>
    Failed = 4,

    /// <summary>The attempt failed and a retry was scheduled.</summary>
    Retried = 5,

    /// <summary>The sweeper returned an expired lease to the queue (or dead-lettered it).</summary>
    Reclaimed = 6,

    /// <summary>The task was canceled.</summary>
    Canceled = 7,

    /// <summary>A failed or canceled task was redriven back to pending.</summary>
    Redriven = 8,

    /// <summary>The finished task was purged from the store.</summary>
    Purged = 9,
}

/// <summary>
/// One transition of one task, as recorded by an <see cref="ITaskEventLog"/>. Immutable; its identity is
/// <see cref="EventId"/>, fixed by the producer before the first send, so a re-sent event is stored once.
/// </summary>
/// <remarks>
/// The event's time is the time embedded in its id (<see cref="Timestamp"/>, millisecond precision): a log orders
/// a task's history and a queue's window by event id, so ordering and time never disagree. Create events with
/// <see cref="Create"/>, which stamps a new <see cref="TaskEventId"/>.
/// </remarks>
public sealed record TaskEvent
{
    /// <summary>The event id: a UUIDv7 (<see cref="TaskEventId"/>) whose time is the event's time.</summary>
    public required Guid EventId { get; init; }

    /// <summary>The task.</summary>
    public required Guid TaskId { get; init; }

    /// <summary>The task's queue.</summary>
    public required string Queue { get; init; }

    /// <summary>What happened.</summary>
    public required TaskEventKind Kind { get; init; }

    /// <summary>The task's tenant, if any.</summary>
    public string? Tenant { get; init; }

    /// <summary>The attempt number the event concerns (0 before the first lease).</summary>
    public int Attempt { get; init; }

    /// <summary>The fencing token of the lease the event concerns (0 when none).</summary>
    public long LeaseToken { get; init; }

    /// <summary>The worker that held the lease, if any.</summary>
    public string? WorkerId { get; init; }

    /// <summary>The error message of a failure, retry or reclaim, if any.</summary>
    public string? Error { get; init; }

    /// <summary>When the event happened: the time embedded in <see cref="EventId"/> (UTC, millisecond precision).</summary>
    public DateTimeOffset Timestamp => TaskEventId.GetTimestamp(EventId);

    /// <summary>Creates an event stamped with a new <see cref="TaskEventId"/> for <paramref name="timestamp"/>.</summary>
    /// <param name="kind">What happened.</param>
    /// <param name="taskId">The task.</param>
    /// <param name="queue">The task's queue.</param>
    /// <param name="timestamp">When it happened.</param>
    /// <returns>The event.</returns>
    public static TaskEvent Create(TaskEventKind kind, Guid taskId, string queue, DateTimeOffset timestamp) => new()
    {
        EventId = TaskEventId.NewId(timestamp),
        TaskId = taskId,
        Queue = queue,
        Kind = kind,
    };
}

/// <summary>One page of a queue's events, oldest first.</summary>
/// <param name="Events">The events, in event-id (time) order.</param>
/// <param name="NextCursor">Pass as <see cref="TaskEventPageRequest.After"/> for the next page; null when this was the last page.</param>
public sealed record TaskEventPage(IReadOnlyList<TaskEvent> Events, Guid? NextCursor);

/// <summary>Keyset paging over a queue's events.</summary>
/// <param name="Limit">Page size, 1–<see cref="TaskEventValidation.MaxPageSize"/>.</param>
/// <param name="After">The previous page's <see cref="TaskEventPage.NextCursor"/>; null for the first page.</param>
public sealed record TaskEventPageRequest(int Limit = 100, Guid? After = null)
{
    /// <summary>The first page of 100.</summary>
    public static TaskEventPageRequest First { get; } = new();
}

/// <summary>Optional features an event log declares; the conformance suite branches on these, never on the backend.</summary>
public sealed record TaskEventLogCapabilities
{
    /// <summary>Events expire after the log's configured time to live.</summary>
    public bool Expiry { get; init; }
}
