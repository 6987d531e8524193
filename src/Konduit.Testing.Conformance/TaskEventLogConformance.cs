using System.Runtime.CompilerServices;
using Xunit;

namespace Konduit.Testing.Conformance;

/// <summary>
/// The shared base of the event-log conformance areas: declares the class fixture, creates a log per test, and
/// offers event builders, unique queue names and <see cref="Eventually"/> (for the server's clock: expiry).
/// </summary>
/// <typeparam name="TFixture">The implementation's fixture.</typeparam>
public abstract class TaskEventLogConformance<TFixture> : IClassFixture<TFixture>, IAsyncLifetime
    where TFixture : TaskEventLogFixture
{
    private ITaskEventLog? _log;

    /// <summary>Creates the test class over the implementation's fixture.</summary>
    protected TaskEventLogConformance(TFixture fixture)
    {
        ArgumentNullException.ThrowIfNull(fixture);
        Fixture = fixture;
    }

    /// <summary>The implementation's fixture.</summary>
    protected TFixture Fixture { get; }

    /// <summary>The log under test (no expiry), created by <see cref="InitializeAsync"/>.</summary>
    protected ITaskEventLog Log => _log ?? throw new InvalidOperationException("The log is created in InitializeAsync.");

    /// <summary>The running test's cancellation token.</summary>
    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The short time to live the expiry tests use.</summary>
    protected virtual TimeSpan ShortTimeToLive => TimeSpan.FromSeconds(2);

    /// <summary>How long expiry may take beyond the time to live (the server's clock and its expiry granularity rule).</summary>
    protected virtual TimeSpan ExpiryDeadline => TimeSpan.FromSeconds(20);

    /// <summary>
    /// A fixed origin for event times, a few hours in the past and on a whole hour, so tests can spread events
    /// over several hour-sized time buckets without reaching the future.
    /// </summary>
    protected static DateTimeOffset Origin { get; } = new DateTimeOffset(
        DateTimeOffset.UtcNow.UtcDateTime.Date.AddHours(DateTimeOffset.UtcNow.UtcDateTime.Hour), TimeSpan.Zero).AddHours(-12);

    /// <summary>Creates the log under test.</summary>
    public virtual async ValueTask InitializeAsync() => _log = await Fixture.CreateLogAsync();

    /// <summary>Nothing to do: the fixture disposes the logs it created.</summary>
    public virtual ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>A queue name no other test uses, derived from the calling test's name.</summary>
    protected static string Queue([CallerMemberName] string test = "")
    {
        var prefix = test.Length > 60 ? test[..60] : test;
        return $"{prefix}.{Guid.NewGuid():N}";
    }

    /// <summary>A new event of <paramref name="taskId"/> at <paramref name="time"/> with typical fields.</summary>
    protected static TaskEvent Event(Guid taskId, string queue, DateTimeOffset time, TaskEventKind kind = TaskEventKind.Leased,
        int attempt = 1, long token = 1, string? worker = "worker-1", string? error = null, string? tenant = null) => new()
    {
        EventId = TaskEventId.NewId(time),
        TaskId = taskId,
        Queue = queue,
        Kind = kind,
        Attempt = attempt,
        LeaseToken = token,
        WorkerId = worker,
        Error = error,
        Tenant = tenant,
    };

    /// <summary>A task's typical life: enqueued, leased, failed with a retry, leased again, completed, <paramref name="step"/> apart.</summary>
    protected static List<TaskEvent> Lifecycle(Guid taskId, string queue, DateTimeOffset start, TimeSpan step, string? tenant = null) =>
    [
        Event(taskId, queue, start, TaskEventKind.Enqueued, attempt: 0, token: 0, worker: null, tenant: tenant),
        Event(taskId, queue, start + step, TaskEventKind.Leased, attempt: 1, token: 1, tenant: tenant),
        Event(taskId, queue, start + step * 2, TaskEventKind.Retried, attempt: 1, token: 1, error: "boom", tenant: tenant),
        Event(taskId, queue, start + step * 3, TaskEventKind.Leased, attempt: 2, token: 2, worker: "worker-2", tenant: tenant),
        Event(taskId, queue, start + step * 4, TaskEventKind.Completed, attempt: 2, token: 2, worker: "worker-2", tenant: tenant),
    ];

    /// <summary>The events in log order (event id, RFC byte order).</summary>
    protected static List<TaskEvent> InLogOrder(IEnumerable<TaskEvent> events) => [.. events.Order(EventOrder.Instance)];

    /// <summary>The list in a fixed, scrambled order (appends must not depend on arrival order).</summary>
    protected static List<T> Shuffled<T>(IReadOnlyList<T> items)
    {
        var copy = items.ToList();
        new Random(42).Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(copy));
        return copy;
    }

    /// <summary>Reads the whole window by following cursors with <paramref name="pageSize"/>; asserts each page respects the limit.</summary>
    protected async Task<List<TaskEvent>> ReadAll(string queue, DateTimeOffset from, DateTimeOffset to, int pageSize)
    {
        var all = new List<TaskEvent>();
        Guid? cursor = null;
        for (var pages = 0; ; pages++)
        {
            Assert.True(pages < 10_000, "paging does not terminate");
            var page = await Log.ReadQueueEventsAsync(queue, from, to, new TaskEventPageRequest(pageSize, cursor), Ct);
            Assert.True(page.Events.Count <= pageSize, $"a page of {page.Events.Count} exceeds the limit {pageSize}");
            all.AddRange(page.Events);
            if (page.NextCursor is null) return all;
            Assert.NotEmpty(page.Events);
            cursor = page.NextCursor;
        }
    }

    /// <summary>Asserts two event lists are equal, element by element, with a readable message.</summary>
    protected static void AssertEvents(IReadOnlyList<TaskEvent> expected, IReadOnlyList<TaskEvent> actual)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(actual);
        Assert.True(expected.Count == actual.Count,
            $"expected {expected.Count} events, got {actual.Count}: [{string.Join(", ", actual.Select(e => $"{e.Kind}@{e.Timestamp:HH:mm:ss.fff}"))}]");
        for (var i = 0; i < expected.Count; i++)
            Assert.Equal(expected[i], actual[i]);
    }

    /// <summary>Polls <paramref name="condition"/> until true, failing with <paramref name="because"/> after <paramref name="deadline"/>.</summary>
    protected static Task Eventually(Func<Task<bool>> condition, TimeSpan deadline, string because) =>
        Await.Until(condition, deadline, TimeSpan.FromMilliseconds(100), because);

    private sealed class EventOrder : IComparer<TaskEvent>
    {
        public static readonly EventOrder Instance = new();

        public int Compare(TaskEvent? x, TaskEvent? y) => TaskEventId.Comparer.Compare(x!.EventId, y!.EventId);
    }
}
