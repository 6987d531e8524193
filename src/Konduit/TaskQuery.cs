namespace Konduit;

/// <summary>
/// Filters for <see cref="ITaskStore.QueryAsync"/>; every set field must match. Example — all failed tasks
/// for tenant X that failed in the last 24 h: <c>new TaskQuery { Tenant = "X", States = [TaskState.Failed], FinishedFrom = now.AddDays(-1) }</c>
/// (a task created three days ago that failed today is found by its finish time, not its creation time).
/// </summary>
public sealed record TaskQuery
{
    /// <summary>Only this queue.</summary>
    public string? Queue { get; init; }
    /// <summary>Only these states (null or empty = any).</summary>
    public IReadOnlyCollection<TaskState>? States { get; init; }
    /// <summary>Only this tenant.</summary>
    public string? Tenant { get; init; }
    /// <summary>Only tasks created at or after this time (inclusive).</summary>
    public DateTimeOffset? EnqueuedFrom { get; init; }
    /// <summary>Only tasks created before this time (exclusive).</summary>
    public DateTimeOffset? EnqueuedTo { get; init; }
    /// <summary>
    /// Only tasks that finished (<see cref="TaskSnapshot.FinishedAt"/>) at or after this time (inclusive); tasks that have
    /// not finished never match.
    /// </summary>
    public DateTimeOffset? FinishedFrom { get; init; }
    /// <summary>Only tasks that finished before this time (exclusive); tasks that have not finished never match.</summary>
    public DateTimeOffset? FinishedTo { get; init; }
}

/// <summary>Keyset paging: results come newest first (by task id, which is time-ordered).</summary>
/// <param name="Limit">Page size, 1–1000.</param>
/// <param name="After">The <see cref="TaskPage.NextCursor"/> of the previous page; null for the first page.</param>
public sealed record PageRequest(int Limit = 100, Guid? After = null)
{
    /// <summary>The first page of 100.</summary>
    public static PageRequest First { get; } = new();
}

/// <summary>One page of query results.</summary>
/// <param name="Items">Tasks, newest first.</param>
/// <param name="NextCursor">Pass as <see cref="PageRequest.After"/> to get the next page; null when this is the last page.</param>
public sealed record TaskPage(IReadOnlyList<TaskSnapshot> Items, Guid? NextCursor);

/// <summary>Task counts for one queue.</summary>
/// <remarks>
/// <see cref="Pending"/> = <see cref="PendingDue"/> + <see cref="PendingScheduled"/>, split by the store clock at the
/// moment of the read: a queue's depth is its due tasks; scheduled ones (a future run-at, a retry's backoff) wait by design.
/// </remarks>
public sealed record QueueStats(string Queue, long Pending, long Running, long Succeeded, long Failed, long Canceled)
{
    /// <summary>Pending tasks that are due (run-at at or before the store's now): what workers can lease right away.</summary>
    public long PendingDue { get; init; }

    /// <summary>Pending tasks scheduled for later (run-at after the store's now).</summary>
    public long PendingScheduled { get; init; }

    /// <summary>
    /// The run-at of the oldest due pending task (how long the head of the queue has waited); null when nothing is due.
    /// On a store without <see cref="StoreCapabilities.OrdersByRunAt"/>, the oldest among the tasks at the head of each
    /// priority band (due tasks wait there in the order they became due).
    /// </summary>
    public DateTimeOffset? OldestDueAt { get; init; }

    /// <summary>The count for one state.</summary>
    public long this[TaskState state] => state switch
    {
        TaskState.Pending => Pending,
        TaskState.Running => Running,
        TaskState.Succeeded => Succeeded,
        TaskState.Failed => Failed,
        TaskState.Canceled => Canceled,
        _ => throw new ArgumentOutOfRangeException(nameof(state)),
    };

    /// <summary>All tasks in the queue.</summary>
    public long Total => Pending + Running + Succeeded + Failed + Canceled;
}
