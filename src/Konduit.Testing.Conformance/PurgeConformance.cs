using Xunit;

#pragma warning disable CS1591 // Test methods: their names are the documentation.

namespace Konduit.Testing.Conformance;

/// <summary>Purge: deletes finished terminal tasks by age, state and queue, and frees their idempotency keys.</summary>
public abstract class PurgeConformance<TFixture>(TFixture fixture) : TaskStoreConformance<TFixture>(fixture)
    where TFixture : TaskStoreFixture
{
    [Fact]
    public virtual async Task Purge_deletes_terminal_tasks_and_frees_their_idempotency_keys()
    {
        var queue = Queue();
        var succeeded = await EnqueueInState(queue, TaskState.Succeeded, key: "s");
        var failed = await EnqueueInState(queue, TaskState.Failed, key: "f");
        var canceled = await EnqueueInState(queue, TaskState.Canceled, key: "c", tenant: "acme");

        var purged = await Store.PurgeAsync(TimeSpan.Zero, null, queue, Ct);

        Assert.Equal(
            new[] { new PurgedTask(succeeded, queue, null, TaskState.Succeeded), new PurgedTask(failed, queue, null, TaskState.Failed), new PurgedTask(canceled, queue, "acme", TaskState.Canceled) },
            purged.OrderBy(p => p.TaskId));

        foreach (var id in new[] { succeeded, failed, canceled })
            await Assert.ThrowsAsync<TaskNotFoundException>(() => Store.GetAsync(id, Ct));
        var again = await Store.EnqueueAsync(new EnqueueRequest(queue, Bytes("again")) { IdempotencyKey = "s" }, Ct);
        Assert.True(again.Created);
        Assert.NotEqual(succeeded, again.TaskId);
    }

    [Fact]
    public virtual async Task Purge_never_deletes_pending_or_running_tasks()
    {
        var queue = Queue();
        var running = await EnqueueInState(queue, TaskState.Running);
        var pending = await EnqueueInState(queue, TaskState.Pending);

        Assert.Empty(await Store.PurgeAsync(TimeSpan.Zero, null, queue, Ct));

        Assert.Equal(TaskState.Pending, (await Store.GetAsync(pending, Ct)).State);
        Assert.Equal(TaskState.Running, (await Store.GetAsync(running, Ct)).State);
    }

    [Fact]
    public virtual async Task Purge_respects_the_queue_filter()
    {
        var (a, b) = (Queue(), Queue());
        await EnqueueInState(a, TaskState.Succeeded);
        var kept = await EnqueueInState(b, TaskState.Succeeded);

        Assert.Equal(a, Assert.Single(await Store.PurgeAsync(TimeSpan.Zero, null, a, Ct)).Queue);

        Assert.Equal(TaskState.Succeeded, (await Store.GetAsync(kept, Ct)).State);
        Assert.DoesNotContain(await Store.GetStatsAsync(Ct), s => s.Queue == a);
    }

    [Fact]
    public virtual async Task Purge_respects_the_states_filter()
    {
        var queue = Queue();
        var succeeded = await EnqueueInState(queue, TaskState.Succeeded);
        var failed = await EnqueueInState(queue, TaskState.Failed);
        var canceled = await EnqueueInState(queue, TaskState.Canceled);

        Assert.Equal([failed, canceled], (await Store.PurgeAsync(TimeSpan.Zero, [TaskState.Failed, TaskState.Canceled], queue, Ct)).Select(p => p.TaskId).Order());

        Assert.Equal(TaskState.Succeeded, (await Store.GetAsync(succeeded, Ct)).State);
        await Assert.ThrowsAsync<TaskNotFoundException>(() => Store.GetAsync(failed, Ct));
        await Assert.ThrowsAsync<TaskNotFoundException>(() => Store.GetAsync(canceled, Ct));
    }

    [Fact]
    public virtual async Task Purge_keeps_tasks_that_finished_more_recently_than_older_than()
    {
        var queue = Queue();
        var id = await EnqueueInState(queue, TaskState.Succeeded);

        Assert.Empty(await Store.PurgeAsync(TimeSpan.FromHours(1), null, queue, Ct));

        Assert.Equal(TaskState.Succeeded, (await Store.GetAsync(id, Ct)).State);
    }

    [Fact]
    public virtual async Task Purge_refuses_non_terminal_states_and_deletes_nothing()
    {
        var queue = Queue();
        var id = await EnqueueInState(queue, TaskState.Succeeded);

        await AssertRejected<ArgumentException>(() => Store.PurgeAsync(TimeSpan.Zero, [TaskState.Succeeded, TaskState.Pending], queue, Ct), "states");
        await AssertRejected<ArgumentException>(() => Store.PurgeAsync(TimeSpan.Zero, [TaskState.Running], queue, Ct), "states");
        await AssertRejected<ArgumentOutOfRangeException>(() => Store.PurgeAsync(TimeSpan.FromSeconds(-1), null, queue, Ct), "olderThan");

        Assert.Equal(TaskState.Succeeded, (await Store.GetAsync(id, Ct)).State);
    }

    [Fact]
    public virtual async Task Apply_retention_keeps_recent_tasks_and_validates_its_age_like_purge()
    {
        var queue = Queue();
        var done = await EnqueueInState(queue, TaskState.Succeeded);
        var pending = (await Store.EnqueueAsync(new EnqueueRequest(queue, [1]), Ct)).TaskId;

        // Finished a moment ago: a retention of a day keeps it, whatever the store's granularity; a live task is never
        // deleted. (A zero retention is not tried here: it would delete other tests' finished tasks in a shared store.)
        Assert.DoesNotContain(await Store.ApplyRetentionAsync(TimeSpan.FromDays(1), Ct), p => p.TaskId == done || p.TaskId == pending);
        Assert.DoesNotContain(await Store.ApplyRetentionAsync(TaskValidation.MaxPurgeAge, Ct), p => p.TaskId == done);
        foreach (var age in new[] { TimeSpan.FromSeconds(-1), TaskValidation.MaxPurgeAge + TimeSpan.FromDays(1), TimeSpan.MaxValue })
            await AssertRejected<ArgumentOutOfRangeException>(() => Store.ApplyRetentionAsync(age, Ct), "olderThan");
        Assert.Equal(TaskState.Succeeded, (await Store.GetAsync(done, Ct)).State);
        Assert.Equal(TaskState.Pending, (await Store.GetAsync(pending, Ct)).State);
    }
}
