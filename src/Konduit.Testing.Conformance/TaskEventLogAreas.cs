using Xunit;

#pragma warning disable CS1591 // Test methods: their names are the documentation.

namespace Konduit.Testing.Conformance;

/// <summary>A task's history: every event of the task, oldest first, with every field kept.</summary>
public abstract class TaskEventHistoryConformance<TFixture>(TFixture fixture) : TaskEventLogConformance<TFixture>(fixture)
    where TFixture : TaskEventLogFixture
{
    [Fact]
    public virtual async Task History_returns_a_tasks_events_in_order_whatever_the_append_order()
    {
        var (queue, task) = (Queue(), Guid.NewGuid());
        var events = Lifecycle(task, queue, Origin, TimeSpan.FromSeconds(1));

        await Log.AppendAsync(Shuffled(events), Ct);

        AssertEvents(events, await Log.ReadTaskHistoryAsync(task, Ct));
    }

    [Fact]
    public virtual async Task History_keeps_the_order_of_events_within_one_millisecond()
    {
        var (queue, task) = (Queue(), Guid.NewGuid());
        var events = Lifecycle(task, queue, Origin.AddMinutes(1), TimeSpan.Zero);

        await Log.AppendAsync(Shuffled(events), Ct);

        AssertEvents(events, await Log.ReadTaskHistoryAsync(task, Ct));
    }

    [Fact]
    public virtual async Task History_keeps_every_field_including_nulls()
    {
        var (queue, task) = (Queue(), Guid.NewGuid());
        var full = Event(task, queue, Origin, TaskEventKind.Failed, attempt: 7, token: long.MaxValue - 1, worker: "host-1:42:w3",
            error: "Ünïcode ✓ failure\nwith a second line", tenant: "tenant-a");
        var bare = Event(task, queue, Origin.AddMilliseconds(1), TaskEventKind.Redriven, attempt: 0, token: 0, worker: null, error: null, tenant: null);

        await Log.AppendAsync([full, bare], Ct);

        var history = await Log.ReadTaskHistoryAsync(task, Ct);
        AssertEvents([full, bare], history);
        Assert.Equal(Origin, history[0].Timestamp);
    }

    [Fact]
    public virtual async Task History_records_every_kind()
    {
        var (queue, task) = (Queue(), Guid.NewGuid());
        var events = Enum.GetValues<TaskEventKind>().Select((kind, i) => Event(task, queue, Origin.AddSeconds(i), kind)).ToList();

        await Log.AppendAsync(events, Ct);

        AssertEvents(events, await Log.ReadTaskHistoryAsync(task, Ct));
    }

    [Fact]
    public virtual async Task History_holds_only_that_tasks_events_across_appends()
    {
        var queue = Queue();
        var (a, b) = (Guid.NewGuid(), Guid.NewGuid());
        var ofA = Lifecycle(a, queue, Origin, TimeSpan.FromMinutes(30));
        var ofB = Lifecycle(b, queue, Origin.AddMinutes(10), TimeSpan.FromMinutes(30));

        foreach (var e in Shuffled([.. ofA, .. ofB]))
            await Log.AppendAsync([e], Ct);

        AssertEvents(ofA, await Log.ReadTaskHistoryAsync(a, Ct));
        AssertEvents(ofB, await Log.ReadTaskHistoryAsync(b, Ct));
    }

    [Fact]
    public virtual async Task History_of_an_unknown_task_is_empty()
    {
        Assert.Empty(await Log.ReadTaskHistoryAsync(Guid.NewGuid(), Ct));
    }

    [Fact]
    public virtual async Task Appending_an_empty_list_does_nothing()
    {
        await Log.AppendAsync([], Ct);
    }
}

/// <summary>A queue's events over a time window: keyset-paged, oldest first, no gaps, no duplicates.</summary>
public abstract class TaskEventQueueConformance<TFixture>(TFixture fixture) : TaskEventLogConformance<TFixture>(fixture)
    where TFixture : TaskEventLogFixture
{
    [Fact]
    public virtual async Task Queue_window_pages_without_gaps_or_duplicates_across_time_buckets()
    {
        var queue = Queue();
        // 8 tasks spread over 7 hours, with an empty hour in the middle: events cross many hour buckets.
        var events = new List<TaskEvent>();
        for (var t = 0; t < 8; t++)
        {
            var start = Origin.AddMinutes(t * 50 + (t >= 4 ? 90 : 0));
            events.AddRange(Lifecycle(Guid.NewGuid(), queue, start, TimeSpan.FromMinutes(7)));
        }
        await Log.AppendAsync(Shuffled(events), Ct);
        var expected = InLogOrder(events);

        foreach (var pageSize in new[] { 1, 3, 7, 40, 1000 })
            AssertEvents(expected, await ReadAll(queue, Origin, Origin.AddHours(8), pageSize));
    }

    [Fact]
    public virtual async Task Queue_window_includes_from_and_excludes_to()
    {
        var (queue, task) = (Queue(), Guid.NewGuid());
        var from = Origin.AddMinutes(5);
        var to = Origin.AddHours(2);
        var before = Event(task, queue, from.AddMilliseconds(-1));
        var atFrom = Event(task, queue, from);
        var inside = Event(task, queue, Origin.AddHours(1));
        var lastInside = Event(task, queue, to.AddMilliseconds(-1));
        var atTo = Event(task, queue, to);

        await Log.AppendAsync([before, atFrom, inside, lastInside, atTo], Ct);

        AssertEvents([atFrom, inside, lastInside], await ReadAll(queue, from, to, 2));
    }

    [Fact]
    public virtual async Task Queue_window_holds_only_that_queue()
    {
        var (mine, other) = (Queue(), Queue());
        var events = Lifecycle(Guid.NewGuid(), mine, Origin, TimeSpan.FromMinutes(1));
        await Log.AppendAsync([.. events, .. Lifecycle(Guid.NewGuid(), other, Origin, TimeSpan.FromMinutes(1))], Ct);

        AssertEvents(events, await ReadAll(mine, Origin, Origin.AddHours(1), 100));
    }

    [Fact]
    public virtual async Task A_window_smaller_than_the_page_comes_back_whole_with_no_cursor()
    {
        var queue = Queue();
        var events = Lifecycle(Guid.NewGuid(), queue, Origin.AddMinutes(3), TimeSpan.FromSeconds(2));
        await Log.AppendAsync(events, Ct);

        var page = await Log.ReadQueueEventsAsync(queue, Origin, Origin.AddHours(1), new TaskEventPageRequest(10), Ct);

        AssertEvents(events, page.Events);
        Assert.Null(page.NextCursor);
    }

    [Fact]
    public virtual async Task An_empty_window_returns_an_empty_page()
    {
        var queue = Queue();
        await Log.AppendAsync(Lifecycle(Guid.NewGuid(), queue, Origin.AddHours(3), TimeSpan.FromSeconds(1)), Ct);

        var page = await Log.ReadQueueEventsAsync(queue, Origin, Origin.AddHours(2), null, Ct);

        Assert.Empty(page.Events);
        Assert.Null(page.NextCursor);
    }

    [Fact]
    public virtual async Task Events_appended_behind_the_cursor_do_not_disturb_the_pages_after_it()
    {
        var (queue, task) = (Queue(), Guid.NewGuid());
        var early = Event(task, queue, Origin.AddMinutes(1));
        var late = Lifecycle(Guid.NewGuid(), queue, Origin.AddMinutes(30), TimeSpan.FromMinutes(20));
        await Log.AppendAsync([early, .. late], Ct);

        var first = await Log.ReadQueueEventsAsync(queue, Origin, Origin.AddHours(3), new TaskEventPageRequest(2), Ct);
        await Log.AppendAsync([Event(task, queue, Origin.AddMinutes(2))], Ct);
        var rest = await ReadAllAfter(queue, first.NextCursor);

        AssertEvents([early, .. late], [.. first.Events, .. rest]);
    }

    private async Task<List<TaskEvent>> ReadAllAfter(string queue, Guid? cursor)
    {
        var all = new List<TaskEvent>();
        while (cursor is not null)
        {
            var page = await Log.ReadQueueEventsAsync(queue, Origin, Origin.AddHours(3), new TaskEventPageRequest(2, cursor), Ct);
            all.AddRange(page.Events);
            cursor = page.NextCursor;
        }
        return all;
    }
}

/// <summary>Idempotent append: an event re-sent with the same id stays one event.</summary>
public abstract class TaskEventIdempotencyConformance<TFixture>(TFixture fixture) : TaskEventLogConformance<TFixture>(fixture)
    where TFixture : TaskEventLogFixture
{
    [Fact]
    public virtual async Task Appending_the_same_event_twice_stores_it_once()
    {
        var (queue, task) = (Queue(), Guid.NewGuid());
        var e = Event(task, queue, Origin.AddMinutes(4));

        await Log.AppendAsync([e], Ct);
        await Log.AppendAsync([e], Ct);

        AssertEvents([e], await Log.ReadTaskHistoryAsync(task, Ct));
        AssertEvents([e], await ReadAll(queue, Origin, Origin.AddHours(1), 10));
    }

    [Fact]
    public virtual async Task Resending_a_batch_after_a_partial_write_stores_each_event_once()
    {
        var (queue, task) = (Queue(), Guid.NewGuid());
        var events = Lifecycle(task, queue, Origin.AddMinutes(50), TimeSpan.FromMinutes(6));

        await Log.AppendAsync([events[1], events[3]], Ct);
        await Log.AppendAsync(events, Ct);
        await Log.AppendAsync(events, Ct);

        AssertEvents(events, await Log.ReadTaskHistoryAsync(task, Ct));
        AssertEvents(events, await ReadAll(queue, Origin, Origin.AddHours(2), 2));
    }

    [Fact]
    public virtual async Task An_event_repeated_within_one_batch_is_stored_once()
    {
        var (queue, task) = (Queue(), Guid.NewGuid());
        var e = Event(task, queue, Origin.AddMinutes(8));

        await Log.AppendAsync([e, e, e], Ct);

        AssertEvents([e], await Log.ReadTaskHistoryAsync(task, Ct));
    }
}

/// <summary>Expiry: a log with a time to live forgets events that long after they were written.</summary>
public abstract class TaskEventExpiryConformance<TFixture>(TFixture fixture) : TaskEventLogConformance<TFixture>(fixture)
    where TFixture : TaskEventLogFixture
{
    [Fact]
    public virtual async Task Events_expire_after_the_time_to_live()
    {
        if (!Log.Capabilities.Expiry) Assert.Skip("The log does not declare TaskEventLogCapabilities.Expiry.");
        var log = await Fixture.CreateLogAsync(ShortTimeToLive);
        var (queue, task) = (Queue(), Guid.NewGuid());
        var now = DateTimeOffset.UtcNow;
        var events = Lifecycle(task, queue, now.AddMinutes(-1), TimeSpan.FromSeconds(1));

        await log.AppendAsync(events, Ct);
        AssertEvents(events, await log.ReadTaskHistoryAsync(task, Ct));

        await Eventually(async () =>
            (await log.ReadTaskHistoryAsync(task, Ct)).Count == 0
            && (await log.ReadQueueEventsAsync(queue, now.AddHours(-1), now.AddHours(1), null, Ct)).Events.Count == 0,
            ExpiryDeadline, $"events written with a {ShortTimeToLive.TotalSeconds} s time to live are gone");
    }

    [Fact]
    public virtual async Task A_log_without_a_time_to_live_keeps_events()
    {
        var (queue, task) = (Queue(), Guid.NewGuid());
        var e = Event(task, queue, Origin);
        await Log.AppendAsync([e], Ct);

        // The short-lived log expires its own events only, not those of a log without a time to live.
        if (Log.Capabilities.Expiry)
        {
            var shortLived = await Fixture.CreateLogAsync(ShortTimeToLive);
            var other = Event(Guid.NewGuid(), queue, Origin.AddSeconds(1));
            await shortLived.AppendAsync([other], Ct);
            await Eventually(async () => (await shortLived.ReadTaskHistoryAsync(other.TaskId, Ct)).Count == 0, ExpiryDeadline, "the short-lived event expires");
        }

        AssertEvents([e], await Log.ReadTaskHistoryAsync(task, Ct));
    }
}

/// <summary>Bad input: typed exceptions, and nothing of a rejected batch is written.</summary>
public abstract class TaskEventValidationConformance<TFixture>(TFixture fixture) : TaskEventLogConformance<TFixture>(fixture)
    where TFixture : TaskEventLogFixture
{
    [Fact]
    public virtual async Task Append_rejects_a_null_list()
    {
        await Assert.ThrowsAsync<ArgumentNullException>(() => Log.AppendAsync(null!, Ct));
    }

    public static TheoryData<string> BadEvents() => ["null", "v4 id", "empty id", "empty task", "bad queue", "bad kind", "negative attempt", "negative token", "empty tenant", "huge error"];

    [Theory]
    [MemberData(nameof(BadEvents))]
    public virtual async Task Append_rejects_a_bad_event_and_writes_none_of_the_batch(string problem)
    {
        var (queue, task) = (Queue(), Guid.NewGuid());
        var good = Event(task, queue, Origin.AddMinutes(20));
        var template = Event(task, queue, Origin.AddMinutes(21));
        TaskEvent? bad = problem switch
        {
            "null" => null,
            "v4 id" => template with { EventId = Guid.NewGuid() },
            "empty id" => template with { EventId = Guid.Empty },
            "empty task" => template with { TaskId = Guid.Empty },
            "bad queue" => template with { Queue = "no spaces allowed" },
            "bad kind" => template with { Kind = (TaskEventKind)99 },
            "negative attempt" => template with { Attempt = -1 },
            "negative token" => template with { LeaseToken = -1 },
            "empty tenant" => template with { Tenant = "" },
            "huge error" => template with { Error = new string('x', TaskEventValidation.MaxErrorLength + 1) },
            _ => throw new ArgumentOutOfRangeException(nameof(problem)),
        };

        var ex = await Assert.ThrowsAsync<InvalidTaskEventException>(() => Log.AppendAsync([good, bad!], Ct));

        Assert.Equal(1, ex.Index);
        Assert.Equal("events", ex.ParamName);
        Assert.Empty(await Log.ReadTaskHistoryAsync(task, Ct));
    }

    [Fact]
    public virtual async Task History_rejects_an_empty_task_id()
    {
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => Log.ReadTaskHistoryAsync(Guid.Empty, Ct));
        Assert.Equal("taskId", ex.ParamName);
    }

    [Fact]
    public virtual async Task Queue_read_rejects_a_bad_queue_an_empty_window_a_bad_page_size_and_a_bad_cursor()
    {
        var queue = Queue();
        Assert.Equal("queue", (await Assert.ThrowsAsync<ArgumentException>(() => Log.ReadQueueEventsAsync("", Origin, Origin.AddHours(1), null, Ct))).ParamName);
        Assert.Equal("queue", (await Assert.ThrowsAsync<ArgumentNullException>(() => Log.ReadQueueEventsAsync(null!, Origin, Origin.AddHours(1), null, Ct))).ParamName);
        Assert.Equal("to", (await Assert.ThrowsAsync<ArgumentException>(() => Log.ReadQueueEventsAsync(queue, Origin, Origin, null, Ct))).ParamName);
        Assert.Equal("to", (await Assert.ThrowsAsync<ArgumentException>(() => Log.ReadQueueEventsAsync(queue, Origin, Origin.AddHours(-1), null, Ct))).ParamName);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Log.ReadQueueEventsAsync(queue, Origin, Origin.AddHours(1), new TaskEventPageRequest(0), Ct));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Log.ReadQueueEventsAsync(queue, Origin, Origin.AddHours(1), new TaskEventPageRequest(TaskEventValidation.MaxPageSize + 1), Ct));
        Assert.Equal("page", (await Assert.ThrowsAsync<ArgumentException>(() => Log.ReadQueueEventsAsync(queue, Origin, Origin.AddHours(1), new TaskEventPageRequest(10, Guid.NewGuid()), Ct))).ParamName);
    }
}
