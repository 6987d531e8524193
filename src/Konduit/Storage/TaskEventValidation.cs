namespace Konduit.Storage;

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
