namespace Konduit;

/// <summary>
/// An append-only, time-ordered log of task transitions (issue 6): the history of every task and of every queue
/// over time, kept beside the store (which holds only the current state) and expiring by time to live. The
/// conformance suite (<c>TaskEventLogConformance</c> in <c>Konduit.Testing.Conformance</c>) is its executable
/// specification.
/// </summary>
/// <remarks>
/// <para>Appends are idempotent by <see cref="TaskEvent.EventId"/>: sending an event again (after a timeout, a
/// retry, a crash before the acknowledgement) leaves one event. Delivery through a log is therefore safe to
/// retry with the same event objects; never mint new ids for a re-send.</para>
/// <para>Order is event-id order, which is time order (<see cref="TaskEventId"/>).</para>
/// <para>Every method validates its arguments first (<see cref="TaskEventValidation"/>); bad input throws an
/// <see cref="ArgumentException"/> (<see cref="InvalidTaskEventException"/> for a bad event) and writes nothing.</para>
/// <para>Implementations are safe for concurrent use.</para>
/// </remarks>
public interface ITaskEventLog : IAsyncDisposable
{
    /// <summary>A short lowercase name for metrics and logs, e.g. <c>cassandra</c>.</summary>
    string Name { get; }

    /// <summary>The optional features this log implements.</summary>
    TaskEventLogCapabilities Capabilities { get; }

    /// <summary>
    /// Stores <paramref name="events"/> (in any order, from any tasks and queues; an empty list does nothing). All
    /// events are validated before any is written. When this returns, every event is durable; when it throws
    /// after validation, any subset may have been stored, and sending the same events again is the remedy.
    /// </summary>
    Task AppendAsync(IReadOnlyList<TaskEvent> events, CancellationToken cancellationToken = default);

    /// <summary>Every unexpired event of the task, oldest first (event-id order). Empty for an unknown task.</summary>
    Task<IReadOnlyList<TaskEvent>> ReadTaskHistoryAsync(Guid taskId, CancellationToken cancellationToken = default);

    /// <summary>
    /// The unexpired events of <paramref name="queue"/> whose time lies in [<paramref name="from"/>,
    /// <paramref name="to"/>), oldest first, keyset-paged by event id: following <see cref="TaskEventPage.NextCursor"/>
    /// returns every event of the window exactly once.
    /// </summary>
    Task<TaskEventPage> ReadQueueEventsAsync(string queue, DateTimeOffset from, DateTimeOffset to, TaskEventPageRequest? page = null, CancellationToken cancellationToken = default);
}

/// <summary>An event passed to <see cref="ITaskEventLog.AppendAsync"/> is invalid; nothing was written.</summary>
public sealed class InvalidTaskEventException : ArgumentException
{
    /// <summary>Creates the exception for the event at <paramref name="index"/>.</summary>
    public InvalidTaskEventException(int index, string problem, string paramName = "events")
        : base($"Event {index}: {problem}", paramName) => Index = index;

    /// <summary>The position of the offending event in the list.</summary>
    public int Index { get; }
}

/// <summary>The argument rules of <see cref="ITaskEventLog"/>, shared by every implementation.</summary>
public static class TaskEventValidation
{
    /// <summary>The largest page <see cref="ITaskEventLog.ReadQueueEventsAsync"/> returns.</summary>
    public const int MaxPageSize = 1000;

    /// <summary>The longest worker id kept (characters).</summary>
    public const int MaxWorkerLength = 256;

    /// <summary>The longest error message accepted (characters).</summary>
    public const int MaxErrorLength = 16 * 1024;

    /// <summary>Validates an append: a non-null list of valid events.</summary>
    /// <exception cref="ArgumentNullException">The list is null.</exception>
    /// <exception cref="InvalidTaskEventException">An event is null or invalid.</exception>
    public static void ValidateAppend(IReadOnlyList<TaskEvent>? events, string paramName = "events")
    {
        ArgumentNullException.ThrowIfNull(events, paramName);
        for (var i = 0; i < events.Count; i++)
        {
            var e = events[i];
            if (e is null) throw new InvalidTaskEventException(i, "is null.", paramName);
            if (!TaskEventId.IsVersion7(e.EventId)) throw new InvalidTaskEventException(i, $"event id {e.EventId} is not a UUIDv7 (use TaskEventId.NewId).", paramName);
            if (e.TaskId == Guid.Empty) throw new InvalidTaskEventException(i, "the task id is empty.", paramName);
            if (!Enum.IsDefined(e.Kind)) throw new InvalidTaskEventException(i, $"kind {(int)e.Kind} is not a TaskEventKind.", paramName);
            try
            {
                TaskValidation.ValidateQueue(e.Queue, paramName);
            }
            catch (ArgumentException ex)
            {
                throw new InvalidTaskEventException(i, $"invalid queue: {ex.Message}", paramName);
            }
            if (e.Attempt < 0) throw new InvalidTaskEventException(i, "the attempt is negative.", paramName);
            if (e.LeaseToken < 0) throw new InvalidTaskEventException(i, "the token is negative.", paramName);
            if (e.Tenant is { Length: 0 or > 128 }) throw new InvalidTaskEventException(i, "the tenant must be null or 1–128 characters.", paramName);
            if (e.WorkerId is { Length: > MaxWorkerLength }) throw new InvalidTaskEventException(i, $"the worker id is longer than {MaxWorkerLength} characters.", paramName);
            if (e.Error is { Length: > MaxErrorLength }) throw new InvalidTaskEventException(i, $"the error is longer than {MaxErrorLength} characters.", paramName);
        }
    }

    /// <summary>Validates a history read.</summary>
    /// <exception cref="ArgumentException">The task id is empty.</exception>
    public static void ValidateTaskId(Guid taskId, string paramName = "taskId")
    {
        if (taskId == Guid.Empty) throw new ArgumentException("The task id is empty.", paramName);
    }

    /// <summary>Validates a queue window read and returns the effective page request.</summary>
    /// <exception cref="ArgumentException">Bad queue, an empty or inverted window, or a cursor that is not an event id.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The page size is outside 1–<see cref="MaxPageSize"/>.</exception>
    public static TaskEventPageRequest ValidateQueueRead(string? queue, DateTimeOffset from, DateTimeOffset to, TaskEventPageRequest? page)
    {
        TaskValidation.ValidateQueue(queue, nameof(queue));
        if (to <= from) throw new ArgumentException($"The window [{from:O}, {to:O}) is empty: 'to' must be later than 'from'.", nameof(to));
        if (from.ToUnixTimeMilliseconds() < 0) throw new ArgumentOutOfRangeException(nameof(from), from, "Event times start at 1970-01-01.");
        page ??= TaskEventPageRequest.First;
        if (page.Limit is < 1 or > MaxPageSize)
            throw new ArgumentOutOfRangeException(nameof(page), page.Limit, $"The page size must be 1–{MaxPageSize}.");
        if (page.After is { } after && !TaskEventId.IsVersion7(after))
            throw new ArgumentException($"The cursor {after} is not an event id.", nameof(page));
        return page;
    }
}
