using Xunit;

#pragma warning disable CS1591 // Test methods: their names are the documentation.

namespace Konduit.Testing.Conformance;

/// <summary>
/// Pause and resume per queue (<see cref="ITaskStore.PauseQueueAsync"/>): the state lives in the store, so a pause on
/// one node stops leasing on every node. The second node is <see cref="TaskStoreFixture.CreateOtherNodeAsync"/>.
/// </summary>
public abstract class PauseConformance<TFixture>(TFixture fixture) : TaskStoreConformance<TFixture>(fixture)
    where TFixture : TaskStoreFixture
{
    [Fact]
    public virtual async Task A_queue_paused_on_one_node_leases_nothing_on_any_node_until_resumed_on_another()
    {
        var (queue, other) = (Queue(), Queue());
        var node2 = await Fixture.CreateOtherNodeAsync(Store);
        var ids = new[] { await Enqueue(queue), await Enqueue(queue) };
        var elsewhere = await Enqueue(other);

        await Store.PauseQueueAsync(queue, Ct);

        Assert.Empty(await node2.LeaseAsync(queue, "node-2", 10, LongLease, Ct));
        Assert.Empty(await Store.LeaseAsync(queue, "node-1", 10, LongLease, Ct));
        Assert.Contains(queue, await node2.GetPausedQueuesAsync(Ct));
        Assert.DoesNotContain(other, await node2.GetPausedQueuesAsync(Ct));
        // Only that queue: another queue leases as before, and the paused one's tasks wait, due.
        Assert.Equal(elsewhere, Assert.Single(await node2.LeaseAsync(other, "node-2", 10, LongLease, Ct)).TaskId);
        Assert.Equal((2L, 2L), ((await StatsOf(queue)).Pending, (await StatsOf(queue)).PendingDue));

        await node2.ResumeQueueAsync(queue, Ct);

        Assert.DoesNotContain(queue, await Store.GetPausedQueuesAsync(Ct));
        var leased = await Store.LeaseAsync(queue, "node-1", 10, LongLease, Ct);
        Assert.Equal(ids.Order(), leased.Select(l => l.TaskId).Order());
    }

    [Fact]
    public virtual async Task Pause_and_resume_are_idempotent_and_a_paused_queue_keeps_every_other_operation()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue);

        await Store.PauseQueueAsync(queue, Ct);
        await Store.PauseQueueAsync(queue, Ct);
        var enqueued = await Enqueue(queue);
        var canceled = await Enqueue(queue);
        await Store.HeartbeatAsync(lease, LongLease, Ct);
        await Store.CompleteAsync(lease, null, Ct);
        Assert.True(await Store.CancelAsync(canceled, Ct));
        await Store.RedriveAsync(canceled, Ct);

        Assert.Empty(await Store.LeaseAsync(queue, "w", 10, LongLease, Ct));
        Assert.Equal((2L, 1L), ((await StatsOf(queue)).Pending, (await StatsOf(queue)).Succeeded));
        Assert.Single(await Store.GetPausedQueuesAsync(Ct), q => q == queue);

        await Store.ResumeQueueAsync(queue, Ct);
        await Store.ResumeQueueAsync(queue, Ct);
        Assert.Equal(new[] { enqueued, canceled }.Order(), (await Store.LeaseAsync(queue, "w", 10, LongLease, Ct)).Select(l => l.TaskId).Order());
    }

    [Fact]
    public virtual async Task A_queue_without_tasks_can_be_paused_and_paused_queues_are_listed_in_ordinal_order()
    {
        var suffix = Guid.NewGuid().ToString("N");
        string[] queues = [$"b-{suffix}", $"B-{suffix}", $"a-{suffix}"];
        foreach (var q in queues) await Store.PauseQueueAsync(q, Ct);

        var paused = await Store.GetPausedQueuesAsync(Ct);
        Assert.Equal(paused.Order(StringComparer.Ordinal), paused);
        Assert.Equal([$"B-{suffix}", $"a-{suffix}", $"b-{suffix}"], paused.Where(q => q.EndsWith(suffix, StringComparison.Ordinal)));
        // A queue paused before its first task holds that task back.
        await Enqueue(queues[0]);
        Assert.Empty(await Store.LeaseAsync(queues[0], "w", 1, LongLease, Ct));

        foreach (var q in queues) await Store.ResumeQueueAsync(q, Ct);
        Assert.DoesNotContain(await Store.GetPausedQueuesAsync(Ct), q => q.EndsWith(suffix, StringComparison.Ordinal));
        Assert.Single(await Store.LeaseAsync(queues[0], "w", 1, LongLease, Ct));
    }

    [Fact]
    public virtual async Task Pause_and_resume_reject_bad_queue_names()
    {
        await AssertRejected<ArgumentNullException>(() => Store.PauseQueueAsync(null!, Ct), "queue");
        await AssertRejected<ArgumentException>(() => Store.PauseQueueAsync("bad queue", Ct), "queue");
        await AssertRejected<ArgumentException>(() => Store.PauseQueueAsync("", Ct), "queue");
        await AssertRejected<ArgumentNullException>(() => Store.ResumeQueueAsync(null!, Ct), "queue");
        await AssertRejected<ArgumentException>(() => Store.ResumeQueueAsync("bad queue", Ct), "queue");
        Assert.DoesNotContain("bad queue", await Store.GetPausedQueuesAsync(Ct));
    }
}
