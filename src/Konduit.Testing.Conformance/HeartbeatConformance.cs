using Xunit;

#pragma warning disable CS1591 // Test methods: their names are the documentation.

namespace Konduit.Testing.Conformance;

/// <summary>Heartbeats: extending a valid lease, and refusing an expired or finished one.</summary>
public abstract class HeartbeatConformance<TFixture>(TFixture fixture) : TaskStoreConformance<TFixture>(fixture)
    where TFixture : TaskStoreFixture
{
    [Fact]
    public virtual async Task Heartbeat_extends_the_lease_to_the_extension_from_now()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue, TimeSpan.FromSeconds(30));
        var before = DateTimeOffset.UtcNow;
        var extended = await Store.HeartbeatAsync(lease, TimeSpan.FromMinutes(10), Ct);
        var after = DateTimeOffset.UtcNow;

        AssertBetween(extended.ExpiresAt, before + TimeSpan.FromMinutes(10), after + TimeSpan.FromMinutes(10), "extended expiry");
        Assert.Equal(lease.TaskId, extended.TaskId);
        Assert.Equal(lease.LeaseToken, extended.LeaseToken);
        Assert.Equal(lease.Attempt, extended.Attempt);
        var task = await Store.GetAsync(lease.TaskId, Ct);
        AssertSameTime(extended.ExpiresAt, task.LeaseExpiresAt, "stored expiry");
        Assert.Equal(lease.LeaseToken, task.LeaseToken);
    }

    [Fact]
    public virtual async Task Heartbeat_keeps_a_short_lease_alive_past_its_first_expiry()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue, ShortLease);
        var extended = await Store.HeartbeatAsync(lease, LongLease, Ct);

        await WaitUntilPast(lease.ExpiresAt, "the original lease time has passed");
        await Store.ReclaimExpiredAsync(Ct);

        var task = await Store.GetAsync(lease.TaskId, Ct);
        Assert.Equal(TaskState.Running, task.State);
        Assert.Empty(task.Errors);
        await Store.CompleteAsync(extended, null, Ct);
        Assert.Equal(TaskState.Succeeded, (await Store.GetAsync(lease.TaskId, Ct)).State);
    }

    [Fact]
    public virtual async Task Heartbeat_after_expiry_is_refused_even_before_the_sweeper_runs()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue, ShortLease);
        await WaitUntilPast(lease.ExpiresAt, "the lease has expired");
        var before = await Store.GetAsync(lease.TaskId, Ct);

        await AssertLeaseLost(() => Store.HeartbeatAsync(lease, LongLease, Ct), lease, TaskState.Running);
        await AssertLeaseLost(() => Store.CompleteAsync(lease, null, Ct), lease, TaskState.Running);

        AssertUnchanged(before, await Store.GetAsync(lease.TaskId, Ct));
    }

    [Fact]
    public virtual async Task Heartbeat_on_a_completed_task_is_refused()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue);
        await Store.CompleteAsync(lease, null, Ct);

        await AssertLeaseLost(() => Store.HeartbeatAsync(lease, LongLease, Ct), lease, TaskState.Succeeded);
        Assert.Null((await Store.GetAsync(lease.TaskId, Ct)).LeaseExpiresAt);
    }
}
