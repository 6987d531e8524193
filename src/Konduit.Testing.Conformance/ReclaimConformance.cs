using Xunit;

#pragma warning disable CS1591 // Test methods: their names are the documentation.

namespace Konduit.Testing.Conformance;

/// <summary>The sweeper: expired leases go back to Pending (or Failed when out of attempts), each exactly once.</summary>
public abstract class ReclaimConformance<TFixture>(TFixture fixture) : TaskStoreConformance<TFixture>(fixture)
    where TFixture : TaskStoreFixture
{
    /// <summary>
    /// Runs the sweeper until <paramref name="taskId"/> leaves Running; returns what the calls reported for that task
    /// (other tests share the store, so their tasks may appear in the same calls).
    /// </summary>
    private async Task<List<ReclaimedTask>> ReclaimUntilNotRunning(Guid taskId)
    {
        var reported = new List<ReclaimedTask>();
        await Eventually(async () =>
        {
            reported.AddRange((await Store.ReclaimExpiredAsync(Ct)).Where(r => r.TaskId == taskId));
            return (await Store.GetAsync(taskId, Ct)).State != TaskState.Running;
        }, DefaultDeadline, $"task {taskId}'s expired lease is reclaimed");
        return reported;
    }

    [Fact]
    public virtual async Task Expired_lease_is_reclaimed_to_pending_with_an_error_entry()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue, ShortLease, tenant: "acme");

        var reclaimed = await ReclaimUntilNotRunning(lease.TaskId);

        Assert.Equal(new ReclaimedTask(lease.TaskId, queue, "acme", 1, lease.LeaseToken, lease.WorkerId, TaskState.Pending), Assert.Single(reclaimed));
        var task = await Store.GetAsync(lease.TaskId, Ct);
        Assert.Equal(TaskState.Pending, task.State);
        Assert.Equal(1, task.Attempts);
        Assert.Null(task.LeaseExpiresAt);
        var error = Assert.Single(task.Errors);
        Assert.Equal(1, error.Attempt);
        Assert.Contains("expired", error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.True(task.RunAt <= error.OccurredAt + TimePrecision, "a reclaimed task is due at once");

        var again = await LeaseOne(queue);
        Assert.Equal(2, again.Attempt);
        Assert.True(again.LeaseToken > lease.LeaseToken);
    }

    [Fact]
    public virtual async Task Reclaim_leaves_unexpired_leases_alone()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue, LongLease);

        Assert.DoesNotContain(await Store.ReclaimExpiredAsync(Ct), r => r.TaskId == lease.TaskId);

        var task = await Store.GetAsync(lease.TaskId, Ct);
        Assert.Equal(TaskState.Running, task.State);
        Assert.Equal(lease.LeaseToken, task.LeaseToken);
        Assert.Empty(task.Errors);
    }

    [Fact]
    public virtual async Task An_expired_lease_is_not_handed_out_again_before_it_is_reclaimed()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue, ShortLease);
        await WaitUntilPast(lease.ExpiresAt, "the lease has expired");

        Assert.Empty(await Store.LeaseAsync(queue, "w2", 10, LongLease, Ct));
        Assert.Equal(TaskState.Running, (await Store.GetAsync(lease.TaskId, Ct)).State);
    }

    [Fact]
    public virtual async Task Holder_of_a_reclaimed_lease_gets_lease_lost()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue, ShortLease);
        Assert.Single(await ReclaimUntilNotRunning(lease.TaskId));
        var before = await Store.GetAsync(lease.TaskId, Ct);

        await AssertLeaseLost(() => Store.HeartbeatAsync(lease, LongLease, Ct), lease, TaskState.Pending);
        await AssertLeaseLost(() => Store.CompleteAsync(lease, null, Ct), lease, TaskState.Pending);
        await AssertLeaseLost(() => Store.FailAsync(lease, "late", null, Ct), lease, TaskState.Pending);

        AssertUnchanged(before, await Store.GetAsync(lease.TaskId, Ct));
    }

    [Fact]
    public virtual async Task A_task_whose_lease_always_expires_ends_failed_after_max_attempts()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue, ShortLease, maxAttempts: 2);
        await ReclaimUntilNotRunning(lease.TaskId);
        Assert.Equal(TaskState.Pending, (await Store.GetAsync(lease.TaskId, Ct)).State);
        var second = await LeaseOne(queue, ShortLease);
        Assert.Equal(2, second.Attempt);

        var last = Assert.Single(await ReclaimUntilNotRunning(lease.TaskId));

        Assert.Equal((2, second.LeaseToken, TaskState.Failed), (last.Attempt, last.LeaseToken, last.State));
        var task = await Store.GetAsync(lease.TaskId, Ct);
        Assert.Equal(TaskState.Failed, task.State);
        Assert.Equal(2, task.Attempts);
        Assert.Equal([1, 2], task.Errors.Select(e => e.Attempt));
        Assert.NotNull(task.FinishedAt);
        Assert.Empty(await Store.LeaseAsync(queue, "w", 10, LongLease, Ct));
    }

    [Fact]
    public virtual async Task Concurrent_reclaimers_reclaim_each_expired_lease_exactly_once()
    {
        var queue = Queue();
        for (var i = 0; i < 20; i++) await Enqueue(queue);
        var leases = await Store.LeaseAsync(queue, "w", 20, ShortLease, Ct);
        Assert.Equal(20, leases.Count);
        await WaitUntilPast(leases.Max(l => l.ExpiresAt), "every lease has expired");

        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => Store.ReclaimExpiredAsync(Ct), Ct)));

        // Every expired lease is reported by exactly one of the racing calls.
        var mine = results.SelectMany(r => r).Where(r => r.Queue == queue).Select(r => r.TaskId).ToList();
        Assert.Equal(leases.Select(l => l.TaskId).Order(), mine.Order());
        foreach (var lease in leases)
        {
            var task = await Store.GetAsync(lease.TaskId, Ct);
            Assert.Equal(TaskState.Pending, task.State);
            Assert.Single(task.Errors);
        }
        Assert.Equal(20, (await StatsOf(queue)).Pending);
    }
}
