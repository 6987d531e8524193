using System.Collections.Concurrent;
using Xunit;

#pragma warning disable CS1591 // Test methods: their names are the documentation.

namespace Konduit.Testing.Conformance;

/// <summary>Leasing: which tasks are handed out, in which order, and never twice.</summary>
public abstract class LeaseConformance<TFixture>(TFixture fixture) : TaskStoreConformance<TFixture>(fixture)
    where TFixture : TaskStoreFixture
{
    [Fact]
    public virtual async Task Lease_returns_nothing_when_queue_is_empty()
    {
        var leases = await Store.LeaseAsync(Queue(), "w", 10, LongLease, Ct);

        Assert.Empty(leases);
    }

    [Fact]
    public virtual async Task Lease_makes_the_task_running_and_counts_the_attempt()
    {
        var queue = Queue();
        var id = await Enqueue(queue);
        var before = DateTimeOffset.UtcNow;
        var lease = await LeaseOne(queue, TimeSpan.FromMinutes(2), "worker-7");
        var after = DateTimeOffset.UtcNow;

        Assert.Equal(1, lease.Attempt);
        // Positive and increasing per task; not necessarily 1 (the Redis store derives tokens from the server clock
        // so that they never repeat after a rollback, issue 13 item 1).
        Assert.True(lease.LeaseToken > 0, $"token {lease.LeaseToken} > 0");
        AssertBetween(lease.ExpiresAt, before + TimeSpan.FromMinutes(2), after + TimeSpan.FromMinutes(2), "lease expiry");
        var task = await Store.GetAsync(id, Ct);
        Assert.Equal(TaskState.Running, task.State);
        Assert.Equal(1, task.Attempts);
        Assert.Equal(lease.LeaseToken, task.LeaseToken);
        Assert.Equal("worker-7", task.WorkerId);
        AssertSameTime(lease.ExpiresAt, task.LeaseExpiresAt, "snapshot lease expiry");
        AssertBetween(task.StartedAt, before, after, "StartedAt");
        Assert.Equal(1, (await StatsOf(queue)).Running);
    }

    [Fact]
    public virtual async Task Lease_prefers_higher_priority_then_enqueue_order()
    {
        if (!Store.Capabilities.StrictLeaseOrder)
            Assert.Skip($"{Store.Name} does not declare {nameof(StoreCapabilities.StrictLeaseOrder)}");
        var queue = Queue();
        var low1 = await Enqueue(queue, "low-1", priority: 0);
        var high1 = await Enqueue(queue, "high-1", priority: 5);
        var negative = await Enqueue(queue, "negative", priority: -3);
        var low2 = await Enqueue(queue, "low-2", priority: 0);
        var high2 = await Enqueue(queue, "high-2", priority: 5);
        var top = await Enqueue(queue, "top", priority: 100);

        var leased = new List<Guid>();
        for (var i = 0; i < 6; i++) leased.Add((await LeaseOne(queue)).TaskId);

        Assert.Equal([top, high1, high2, low1, low2, negative], leased);
    }

    [Fact]
    public virtual async Task Lease_orders_by_priority_then_run_at_then_enqueue_order()
    {
        if (!Store.Capabilities.OrdersByRunAt)
            Assert.Skip($"{Store.Name} does not declare {nameof(StoreCapabilities.OrdersByRunAt)}");
        var queue = Queue();
        var now = DateTimeOffset.UtcNow;
        var lowOld = await Enqueue(queue, "low", priority: 0, runAt: now.AddMinutes(-10));
        var highLate1 = await Enqueue(queue, "high-late-1", priority: 5, runAt: now.AddMinutes(-1));
        var highEarly = await Enqueue(queue, "high-early", priority: 5, runAt: now.AddMinutes(-5));
        var highLate2 = await Enqueue(queue, "high-late-2", priority: 5, runAt: now.AddMinutes(-1));
        var negative = await Enqueue(queue, "negative", priority: -3, runAt: now.AddMinutes(-60));
        var top = await Enqueue(queue, "top", priority: 100);

        var leased = new List<Guid>();
        for (var i = 0; i < 6; i++) leased.Add((await LeaseOne(queue)).TaskId);

        Assert.Equal([top, highEarly, highLate1, highLate2, lowOld, negative], leased);
    }

    [Fact]
    public virtual async Task Lease_returns_tasks_in_order_within_one_call()
    {
        var queue = Queue();
        var ids = new List<Guid>();
        for (var i = 0; i < 5; i++) ids.Add(await Enqueue(queue, priority: i));

        var leases = await Store.LeaseAsync(queue, "w", 5, LongLease, Ct);

        Assert.Equal(Enumerable.Reverse(ids), leases.Select(l => l.TaskId));
    }

    [Fact]
    public virtual async Task Lease_returns_at_most_max_count()
    {
        var queue = Queue();
        for (var i = 0; i < 7; i++) await Enqueue(queue);

        var first = await Store.LeaseAsync(queue, "w", 3, LongLease, Ct);
        var second = await Store.LeaseAsync(queue, "w", 10, LongLease, Ct);

        Assert.Equal(3, first.Count);
        Assert.Equal(4, second.Count);
        Assert.Empty(first.Select(l => l.TaskId).Intersect(second.Select(l => l.TaskId)));
    }

    [Fact]
    public virtual async Task Lease_skips_tasks_scheduled_in_the_future_without_blocking_due_ones()
    {
        var queue = Queue();
        var future = await Enqueue(queue, priority: 10, runAt: DateTimeOffset.UtcNow.AddHours(1));
        var due = await Enqueue(queue, priority: 0);

        var leases = await Store.LeaseAsync(queue, "w", 10, LongLease, Ct);

        Assert.Equal(due, Assert.Single(leases).TaskId);
        Assert.Equal(TaskState.Pending, (await Store.GetAsync(future, Ct)).State);
    }

    [Fact]
    public virtual async Task Lease_hands_out_a_scheduled_task_once_it_is_due()
    {
        var queue = Queue();
        var runAt = DateTimeOffset.UtcNow + TimeSpan.FromMilliseconds(400);
        var id = await Enqueue(queue, runAt: runAt);
        IReadOnlyList<TaskLease> leases = [];

        await Eventually(async () => (leases = await Store.LeaseAsync(queue, "w", 10, LongLease, Ct)).Count > 0,
            DefaultDeadline, "a task scheduled 400 ms ahead becomes leasable");

        Assert.Equal(id, Assert.Single(leases).TaskId);
        Assert.True(DateTimeOffset.UtcNow >= runAt - ClockTolerance, "it must not be handed out before its run-at");
    }

    [Fact]
    public virtual async Task Lease_never_hands_out_a_running_task_again()
    {
        var queue = Queue();
        await Enqueue(queue);
        await LeaseOne(queue);

        Assert.Empty(await Store.LeaseAsync(queue, "w2", 10, LongLease, Ct));
    }

    [Fact]
    public virtual async Task Lease_never_hands_out_terminal_tasks()
    {
        var queue = Queue();
        await EnqueueInState(queue, TaskState.Succeeded);
        await EnqueueInState(queue, TaskState.Failed);
        await EnqueueInState(queue, TaskState.Canceled);

        Assert.Empty(await Store.LeaseAsync(queue, "w", 10, LongLease, Ct));
        var stats = await StatsOf(queue);
        Assert.Equal((0, 1, 1, 1), (stats.Running, stats.Succeeded, stats.Failed, stats.Canceled));
    }

    [Fact]
    public virtual async Task Lease_takes_tasks_only_from_the_requested_queue()
    {
        var (mine, other) = (Queue(), Queue());
        await Enqueue(other);
        var id = await Enqueue(mine);

        var leases = await Store.LeaseAsync(mine, "w", 10, LongLease, Ct);

        Assert.Equal(id, Assert.Single(leases).TaskId);
        Assert.Equal(1, (await StatsOf(other)).Pending);
    }

    [Fact]
    public virtual async Task Concurrent_leasers_receive_every_task_exactly_once()
    {
        const int tasks = 1000, leasers = 16;
        var queue = Queue();
        var enqueued = await Store.EnqueueManyAsync(
            Enumerable.Range(0, tasks).Select(i => new EnqueueRequest(queue, Bytes($"{i}"))).ToList(), Ct);
        var received = new ConcurrentBag<Guid>();

        await Task.WhenAll(Enumerable.Range(0, leasers).Select(w => Task.Run(async () =>
        {
            while (true)
            {
                var batch = await Store.LeaseAsync(queue, $"w{w}", 10, LongLease, Ct);
                if (batch.Count == 0) return;
                foreach (var lease in batch) received.Add(lease.TaskId);
            }
        }, Ct)));

        Assert.Equal(tasks, received.Count);
        Assert.Equal(tasks, received.Distinct().Count());
        Assert.True(enqueued.Select(r => r.TaskId).ToHashSet().SetEquals(received));
        var stats = await StatsOf(queue);
        Assert.Equal((0L, (long)tasks), (stats.Pending, stats.Running));
    }
}
