namespace Konduit.InMemory;

/// <summary>
/// The reference <see cref="ITaskEventLog"/>: sorted in-process collections behind one lock. Events expire
/// <see cref="InMemoryTaskEventLogOptions.TimeToLive"/> after they were appended, by the given
/// <see cref="TimeProvider"/> (so tests can drive expiry with a fake clock). Nothing survives the process.
/// </summary>
public sealed class InMemoryTaskEventLog : ITaskEventLog
{
    private readonly Lock _gate = new();
    private readonly Dictionary<Guid, SortedDictionary<Guid, Entry>> _byTask = [];
    private readonly Dictionary<string, SortedDictionary<Guid, Entry>> _byQueue = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private readonly TimeSpan? _timeToLive;

    /// <summary>Creates an empty log.</summary>
    /// <param name="options">The time to live; none when null.</param>
    /// <param name="timeProvider">The clock that decides expiry; <see cref="TimeProvider.System"/> when null.</param>
    public InMemoryTaskEventLog(InMemoryTaskEventLogOptions? options = null, TimeProvider? timeProvider = null)
    {
        options ??= new InMemoryTaskEventLogOptions();
        options.Validate();
        _timeToLive = options.TimeToLive;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <inheritdoc />
    public string Name => "inmemory";

    /// <inheritdoc />
    public TaskEventLogCapabilities Capabilities { get; } = new() { Expiry = true };

    /// <inheritdoc />
    public Task AppendAsync(IReadOnlyList<TaskEvent> events, CancellationToken cancellationToken = default)
    {
        TaskEventValidation.ValidateAppend(events);
        cancellationToken.ThrowIfCancellationRequested();
        var now = _time.GetUtcNow();
        var expiresAt = _timeToLive is { } ttl ? now + ttl : DateTimeOffset.MaxValue;
        lock (_gate)
        {
            foreach (var e in events)
            {
                // A re-sent event replaces itself (same id, same content) and, like a Cassandra upsert, restarts its TTL.
                var entry = new Entry(e, expiresAt);
                Index(_byTask, e.TaskId)[e.EventId] = entry;
                Index(_byQueue, e.Queue)[e.EventId] = entry;
            }
        }
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<TaskEvent>> ReadTaskHistoryAsync(Guid taskId, CancellationToken cancellationToken = default)
    {
        TaskEventValidation.ValidateTaskId(taskId);
        cancellationToken.ThrowIfCancellationRequested();
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            IReadOnlyList<TaskEvent> history = _byTask.TryGetValue(taskId, out var events)
                ? [.. events.Values.Where(e => e.ExpiresAt > now).Select(e => e.Event)]
                : [];
            return Task.FromResult(history);
        }
    }

    /// <inheritdoc />
    public Task<TaskEventPage> ReadQueueEventsAsync(string queue, DateTimeOffset from, DateTimeOffset to, TaskEventPageRequest? page = null, CancellationToken cancellationToken = default)
    {
        page = TaskEventValidation.ValidateQueueRead(queue, from, to, page);
        cancellationToken.ThrowIfCancellationRequested();
        var now = _time.GetUtcNow();
        var lower = TaskEventId.MinFor(from);
        var upper = TaskEventId.MinFor(to);
        var comparer = TaskEventId.Comparer;
        lock (_gate)
        {
            if (!_byQueue.TryGetValue(queue, out var events)) return Task.FromResult(new TaskEventPage([], null));
            var items = events
                .SkipWhile(p => comparer.Compare(p.Key, lower) < 0 || (page.After is { } after && comparer.Compare(p.Key, after) <= 0))
                .TakeWhile(p => comparer.Compare(p.Key, upper) < 0)
                .Where(p => p.Value.ExpiresAt > now)
                .Take(page.Limit + 1)
                .Select(p => p.Value.Event)
                .ToList();
            if (items.Count <= page.Limit) return Task.FromResult(new TaskEventPage(items, null));
            items.RemoveAt(items.Count - 1);
            return Task.FromResult(new TaskEventPage(items, items[^1].EventId));
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private static SortedDictionary<Guid, Entry> Index<TKey>(Dictionary<TKey, SortedDictionary<Guid, Entry>> index, TKey key)
        where TKey : notnull
    {
        if (!index.TryGetValue(key, out var events))
            index[key] = events = new SortedDictionary<Guid, Entry>(TaskEventId.Comparer);
        return events;
    }

    private sealed record Entry(TaskEvent Event, DateTimeOffset ExpiresAt);
}

/// <summary>Options of <see cref="InMemoryTaskEventLog"/> (<c>Konduit:InMemoryEventLog</c> in configuration).</summary>
public sealed class InMemoryTaskEventLogOptions
{
    /// <summary>How long events are kept after they were appended; null (default) keeps them for the process's life.</summary>
    public TimeSpan? TimeToLive { get; set; }

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The time to live is not positive.</exception>
    public void Validate()
    {
        if (TimeToLive is { } ttl && ttl <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(TimeToLive), ttl, "The time to live must be positive.");
    }
}
