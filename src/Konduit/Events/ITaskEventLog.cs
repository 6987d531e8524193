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
