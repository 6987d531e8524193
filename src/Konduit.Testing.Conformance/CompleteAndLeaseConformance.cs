using Xunit;

#pragma warning disable CS1591 // Test methods: their names are the documentation.

namespace Konduit.Testing.Conformance;

/// <summary>
/// Complete-and-lease (<see cref="ITaskStore.CompleteAndLeaseAsync"/>, issue 15): the unbatched worker's cycle. The
/// completion is judged like <see cref="ITaskStore.CompleteManyAsync"/> and the lease half is <see cref="ITaskStore.LeaseAsync"/>
/// of the completed lease's queue, whether the call is one round trip (Postgres) or the default two.
/// </summary>
public abstract class CompleteAndLeaseConformance<TFixture>(TFixture fixture) : TaskStoreConformance<TFixture>(fixture)
    where TFixture : TaskStoreFixture
{
    [Fact]
    public virtual async Task Complete_and_lease_completes_the_task_and_leases_the_next_of_its_queue_in_lease_order()
    {
        var (queue, other) = (Queue(), Queue());
        var done = await EnqueueAndLease(queue);
        var low = await Enqueue(queue, priority: 0);
        var high = await Enqueue(queue, priority: 5);
        var last = await Enqueue(queue, priority: 0);
        await Enqueue(other, priority: 9);
        var before = DateTimeOffset.UtcNow;

        var result = await Store.CompleteAndLeaseAsync(new TaskCompletion(done, Bytes("r")), "worker-2", 2, LongLease, Ct);
        var after = DateTimeOffset.UtcNow;

        Assert.True(result.Completed);
        var finished = await Store.GetAsync(done.TaskId, Ct);
        Assert.Equal(TaskState.Succeeded, finished.State);
        Assert.Equal(Bytes("r"), finished.Result);
        AssertBetween(finished.FinishedAt, before, after, "FinishedAt");
        Assert.Equal(2, result.Leases.Count);
        if (Store.Capabilities.StrictLeaseOrder) Assert.Equal([high, low], result.Leases.Select(l => l.TaskId));
        else Assert.Subset(new HashSet<Guid> { low, high, last }, result.Leases.Select(l => l.TaskId).ToHashSet());
        foreach (var lease in result.Leases)
        {
            Assert.Equal(queue, lease.Queue);
            Assert.Equal("worker-2", lease.WorkerId);
            Assert.Equal(1, lease.Attempt);
            AssertBetween(lease.ExpiresAt, before + LongLease, after + LongLease, "ExpiresAt");
            var task = await Store.GetAsync(lease.TaskId, Ct);
            Assert.Equal(TaskState.Running, task.State);
            Assert.Equal(lease.LeaseToken, task.LeaseToken);
        }
        var stats = await StatsOf(queue);
        Assert.Equal((1L, 2L, 1L), (stats.Succeeded, stats.Running, stats.Pending));
        Assert.Equal(1L, (await StatsOf(other)).Pending);
        // The new leases are ordinary leases: they complete like any other.
        Assert.Empty(await Store.CompleteManyAsync([.. result.Leases.Select(l => new TaskCompletion(l))], Ct));
    }

    [Fact]
    public virtual async Task Complete_and_lease_on_an_empty_queue_completes_and_leases_nothing()
    {
        var queue = Queue();
        var done = await EnqueueAndLease(queue);

        var result = await Store.CompleteAndLeaseAsync(new TaskCompletion(done), "w", 10, LongLease, Ct);

        Assert.True(result.Completed);
        Assert.Empty(result.Leases);
        Assert.Equal(TaskState.Succeeded, (await Store.GetAsync(done.TaskId, Ct)).State);
    }

    [Fact]
    public virtual async Task Complete_and_lease_with_a_stale_token_leases_anyway_and_completes_nothing()
    {
        var queue = Queue();
        var stale = await EnqueueAndLease(queue, ShortLease);
        await WaitUntilPast(stale.ExpiresAt, "the first lease has expired");
        await Eventually(async () => { await Store.ReclaimExpiredAsync(Ct); return (await Store.GetAsync(stale.TaskId, Ct)).State == TaskState.Pending; },
            DefaultDeadline, "the expired lease is reclaimed");
        var current = await LeaseOne(queue);
        Assert.Equal(stale.TaskId, current.TaskId);
        var next = await Enqueue(queue);
        var before = await Store.GetAsync(stale.TaskId, Ct);

        var result = await Store.CompleteAndLeaseAsync(new TaskCompletion(stale, Bytes("late")), "w", 5, LongLease, Ct);

        Assert.False(result.Completed);
        Assert.Equal(next, Assert.Single(result.Leases).TaskId);
        var task = await Store.GetAsync(stale.TaskId, Ct);
        AssertUnchanged(before, task);
        Assert.Null(task.Result);
        // The current holder still completes.
        await Store.CompleteAsync(current, null, Ct);
        Assert.Equal(TaskState.Succeeded, (await Store.GetAsync(stale.TaskId, Ct)).State);
    }

    [Fact]
    public virtual async Task Complete_and_lease_on_a_paused_queue_completes_and_leases_nothing()
    {
        var queue = Queue();
        var done = await EnqueueAndLease(queue);
        var waiting = await Enqueue(queue);
        await Store.PauseQueueAsync(queue, Ct);

        var result = await Store.CompleteAndLeaseAsync(new TaskCompletion(done), "w", 10, LongLease, Ct);

        Assert.True(result.Completed);
        Assert.Empty(result.Leases);
        Assert.Equal(TaskState.Succeeded, (await Store.GetAsync(done.TaskId, Ct)).State);
        Assert.Equal(TaskState.Pending, (await Store.GetAsync(waiting, Ct)).State);
        await Store.ResumeQueueAsync(queue, Ct);
        Assert.Equal(waiting, (await LeaseOne(queue)).TaskId);
    }

    [Fact]
    public virtual async Task Complete_and_lease_rejects_bad_input_and_changes_nothing()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue);
        var waiting = await Enqueue(queue);
        var before = await Store.GetAsync(lease.TaskId, Ct);
        var completion = new TaskCompletion(lease);

        await AssertRejected<ArgumentException>(() => Store.CompleteAndLeaseAsync(default, "w", 1, LongLease, Ct), "completion");
        await AssertRejected<ArgumentNullException>(() => Store.CompleteAndLeaseAsync(completion, null!, 1, LongLease, Ct), "workerId");
        await AssertRejected<ArgumentException>(() => Store.CompleteAndLeaseAsync(completion, "", 1, LongLease, Ct), "workerId");
        await AssertRejected<ArgumentException>(() => Store.CompleteAndLeaseAsync(completion, new string('w', TaskValidation.MaxNameLength + 1), 1, LongLease, Ct), "workerId");
        await AssertRejected<ArgumentOutOfRangeException>(() => Store.CompleteAndLeaseAsync(completion, "w", 0, LongLease, Ct), "maxCount");
        await AssertRejected<ArgumentOutOfRangeException>(() => Store.CompleteAndLeaseAsync(completion, "w", TaskValidation.MaxLeaseCount + 1, LongLease, Ct), "maxCount");
        await AssertRejected<ArgumentOutOfRangeException>(() => Store.CompleteAndLeaseAsync(completion, "w", 1, TimeSpan.Zero, Ct), "leaseDuration");
        await AssertRejected<ArgumentOutOfRangeException>(() => Store.CompleteAndLeaseAsync(completion, "w", 1, TaskValidation.MaxLeaseDuration + TimeSpan.FromSeconds(1), Ct), "leaseDuration");
        foreach (var name in new[] { "", "has space", new string('q', TaskValidation.MaxQueueLength + 1) })
            await AssertRejected<ArgumentException>(() => Store.CompleteAndLeaseAsync(new TaskCompletion(lease with { Queue = name }), "w", 1, LongLease, Ct), "queue");

        AssertUnchanged(before, await Store.GetAsync(lease.TaskId, Ct));
        Assert.Equal(TaskState.Pending, (await Store.GetAsync(waiting, Ct)).State);
        var result = await Store.CompleteAndLeaseAsync(completion, "w", 1, LongLease, Ct);
        Assert.True(result.Completed);
        Assert.Equal(waiting, Assert.Single(result.Leases).TaskId);
    }

    [Fact]
    public virtual async Task Concurrent_complete_and_lease_calls_never_hand_out_one_task_twice()
    {
        var queue = Queue();
        const int workers = 4, tasks = 40;
        for (var i = 0; i < tasks; i++) await Enqueue(queue);
        var starts = await Store.LeaseAsync(queue, "w", workers, LongLease, Ct);
        Assert.Equal(workers, starts.Count);
        var seen = new System.Collections.Concurrent.ConcurrentDictionary<Guid, int>();
        foreach (var s in starts) seen[s.TaskId] = 1;

        await Task.WhenAll(starts.Select(start => Task.Run(async () =>
        {
            var lease = start;
            while (true)
            {
                var result = await Store.CompleteAndLeaseAsync(new TaskCompletion(lease), $"w-{start.TaskId:N}", 1, LongLease, Ct);
                Assert.True(result.Completed);
                if (result.Leases.Count == 0) return;
                lease = Assert.Single(result.Leases);
                Assert.True(seen.TryAdd(lease.TaskId, 1), $"task {lease.TaskId} was handed out twice");
            }
        }, Ct)));

        Assert.Equal(tasks, seen.Count);
        Assert.Equal((long)tasks, (await StatsOf(queue)).Succeeded);
    }
}
