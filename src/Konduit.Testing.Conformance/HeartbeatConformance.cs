using Xunit;

#pragma warning disable CS1591 // Test methods: their names are the documentation.

namespace Konduit.Testing.Conformance;

/// <summary>Heartbeats, single and batched (<see cref="ITaskStore.HeartbeatManyAsync"/>): extending a valid lease, and refusing an expired, stale or finished one.</summary>
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

    [Fact]
    public virtual async Task HeartbeatMany_renews_every_valid_lease_to_the_extension_from_now_in_input_order()
    {
        var queue = Queue();
        for (var i = 0; i < 3; i++) await Enqueue(queue, $"p{i}");
        var leases = await Store.LeaseAsync(queue, "worker-1", 3, TimeSpan.FromSeconds(30), Ct);
        Assert.Equal(3, leases.Count);
        TaskLease[] batch = [leases[2], leases[0], leases[1]];

        var before = DateTimeOffset.UtcNow;
        var result = await Store.HeartbeatManyAsync(batch, TimeSpan.FromMinutes(10), Ct);
        var after = DateTimeOffset.UtcNow;

        Assert.Empty(result.Lost);
        Assert.Equal(batch.Select(l => l.TaskId), result.Renewed.Select(l => l.TaskId));
        for (var i = 0; i < batch.Length; i++)
        {
            var renewed = result.Renewed[i];
            Assert.Equal(batch[i].LeaseToken, renewed.LeaseToken);
            Assert.Equal(batch[i].Attempt, renewed.Attempt);
            AssertBetween(renewed.ExpiresAt, before + TimeSpan.FromMinutes(10), after + TimeSpan.FromMinutes(10), "renewed expiry");
            var task = await Store.GetAsync(renewed.TaskId, Ct);
            Assert.Equal(TaskState.Running, task.State);
            AssertSameTime(renewed.ExpiresAt, task.LeaseExpiresAt, "stored expiry");
        }
    }

    [Fact]
    public virtual async Task HeartbeatMany_keeps_short_leases_alive_past_their_first_expiry()
    {
        var queue = Queue();
        await Enqueue(queue, "a");
        await Enqueue(queue, "b");
        var leases = await Store.LeaseAsync(queue, "worker-1", 2, ShortLease, Ct);
        var result = await Store.HeartbeatManyAsync(leases, LongLease, Ct);
        Assert.Equal(2, result.Renewed.Count);

        await WaitUntilPast(leases.Max(l => l.ExpiresAt), "the original lease times have passed");
        await Store.ReclaimExpiredAsync(Ct);

        foreach (var renewed in result.Renewed)
        {
            var task = await Store.GetAsync(renewed.TaskId, Ct);
            Assert.Equal(TaskState.Running, task.State);
            Assert.Empty(task.Errors);
            await Store.CompleteAsync(renewed, null, Ct);
        }
        Assert.Equal(2, (await StatsOf(queue)).Succeeded);
    }

    [Fact]
    public virtual async Task HeartbeatMany_reports_expired_canceled_completed_forged_and_unknown_leases_lost_and_changes_nothing_for_them()
    {
        var queue = Queue();
        var expired = await EnqueueAndLease(queue, ShortLease);
        await WaitUntilPast(expired.ExpiresAt, "the short lease has expired");
        var valid = await EnqueueAndLease(queue);
        var canceled = await EnqueueAndLease(queue);
        Assert.True(await Store.CancelAsync(canceled.TaskId, Ct));
        var completed = await EnqueueAndLease(queue);
        await Store.CompleteAsync(completed, Bytes("done"), Ct);
        var other = await EnqueueAndLease(queue);
        var forged = other with { LeaseToken = other.LeaseToken + 1 };
        var ghost = valid with { TaskId = Guid.CreateVersion7() };
        TaskLease[] lostInOrder = [expired, canceled, forged, completed, ghost];
        var before = new Dictionary<Guid, TaskSnapshot>();
        foreach (var lease in lostInOrder.Take(4)) before[lease.TaskId] = await Store.GetAsync(lease.TaskId, Ct);

        var result = await Store.HeartbeatManyAsync([expired, canceled, valid, forged, completed, ghost], LongLease, Ct);

        Assert.Equal(valid.TaskId, Assert.Single(result.Renewed).TaskId);
        Assert.Equal(lostInOrder.Select(l => l.TaskId), result.Lost);
        foreach (var (id, snapshot) in before) AssertUnchanged(snapshot, await Store.GetAsync(id, Ct));
        AssertSameTime(result.Renewed[0].ExpiresAt, (await Store.GetAsync(valid.TaskId, Ct)).LeaseExpiresAt, "the valid lease's stored expiry");
        // The expired lease was refused, not revived: the sweeper still reclaims it.
        await Eventually(async () => { await Store.ReclaimExpiredAsync(Ct); return (await Store.GetAsync(expired.TaskId, Ct)).State == TaskState.Pending; },
            DefaultDeadline, "the expired lease is reclaimed");
    }

    [Fact]
    public virtual async Task HeartbeatMany_refuses_a_stale_lease_and_renews_the_current_one_of_the_same_task()
    {
        var queue = Queue();
        var stale = await EnqueueAndLease(queue, ShortLease);
        await WaitUntilPast(stale.ExpiresAt, "the first lease has expired");
        await Eventually(async () => { await Store.ReclaimExpiredAsync(Ct); return (await Store.GetAsync(stale.TaskId, Ct)).State == TaskState.Pending; },
            DefaultDeadline, "the expired lease is reclaimed");
        var current = await LeaseOne(queue, ShortLease);

        var result = await Store.HeartbeatManyAsync([stale, current], LongLease, Ct);

        Assert.Equal([stale.TaskId], result.Lost);
        var renewed = Assert.Single(result.Renewed);
        Assert.Equal(current.LeaseToken, renewed.LeaseToken);
        var task = await Store.GetAsync(stale.TaskId, Ct);
        Assert.Equal(current.LeaseToken, task.LeaseToken);
        AssertSameTime(renewed.ExpiresAt, task.LeaseExpiresAt, "the current lease's stored expiry");
        await AssertLeaseLost(() => Store.CompleteAsync(stale, null, Ct), stale, TaskState.Running);
        await Store.CompleteAsync(renewed, null, Ct);
    }

    [Fact]
    public virtual async Task HeartbeatMany_renews_a_lease_listed_twice_and_reports_both_copies_renewed()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue, TimeSpan.FromSeconds(30));

        var result = await Store.HeartbeatManyAsync([lease, lease], TimeSpan.FromMinutes(10), Ct);

        Assert.Empty(result.Lost);
        Assert.Equal(2, result.Renewed.Count);
        Assert.All(result.Renewed, r => Assert.Equal(lease.TaskId, r.TaskId));
        var task = await Store.GetAsync(lease.TaskId, Ct);
        Assert.Equal(TaskState.Running, task.State);
        Assert.Equal(lease.LeaseToken, task.LeaseToken);
        AssertSameTime(result.Renewed[1].ExpiresAt, task.LeaseExpiresAt, "stored expiry");
    }

    [Fact]
    public virtual async Task HeartbeatMany_of_an_empty_list_returns_an_empty_result()
    {
        var result = await Store.HeartbeatManyAsync([], LongLease, Ct);
        Assert.Empty(result.Renewed);
        Assert.Empty(result.Lost);
    }

    [Fact]
    public virtual async Task HeartbeatMany_rejects_a_null_entry_or_bad_arguments_and_renews_nothing()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue, TimeSpan.FromSeconds(30));
        var before = await Store.GetAsync(lease.TaskId, Ct);

        await AssertRejected<ArgumentException>(() => Store.HeartbeatManyAsync([lease, null!], LongLease, Ct), "leases");
        await AssertRejected<ArgumentNullException>(() => Store.HeartbeatManyAsync(null!, LongLease, Ct), "leases");
        await AssertRejected<ArgumentOutOfRangeException>(() => Store.HeartbeatManyAsync([lease], TimeSpan.Zero, Ct), "extension");
        await AssertRejected<ArgumentOutOfRangeException>(() => Store.HeartbeatManyAsync([lease], TimeSpan.FromSeconds(-5), Ct), "extension");

        AssertUnchanged(before, await Store.GetAsync(lease.TaskId, Ct));
        await Store.CompleteAsync(lease, null, Ct);
    }
}
