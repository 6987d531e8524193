using Xunit;

#pragma warning disable CS1591 // Test methods: their names are the documentation.

namespace Konduit.Testing.Conformance;

/// <summary>
/// <see cref="ITaskStore.ExpireLeaseAsync"/>: a lease monitor ends exactly the lease it names, as the sweeper would,
/// and nothing newer (issue 12).
/// </summary>
public abstract class ExpireLeaseConformance<TFixture>(TFixture fixture) : TaskStoreConformance<TFixture>(fixture)
    where TFixture : TaskStoreFixture
{
    [Fact]
    public virtual async Task Expiring_a_live_lease_returns_the_task_to_pending_like_the_sweeper()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue, LongLease, tenant: "acme");

        var expired = await Store.ExpireLeaseAsync(lease.TaskId, lease.LeaseToken, Ct);

        Assert.Equal(new ReclaimedTask(lease.TaskId, queue, "acme", 1, lease.LeaseToken, lease.WorkerId, TaskState.Pending), expired);
        var task = await Store.GetAsync(lease.TaskId, Ct);
        Assert.Equal(TaskState.Pending, task.State);
        Assert.Equal(1, task.Attempts);
        Assert.Null(task.LeaseExpiresAt);
        var error = Assert.Single(task.Errors);
        Assert.Equal(1, error.Attempt);
        Assert.Contains("expired", error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.True(task.RunAt <= error.OccurredAt + TimePrecision, "an expired task is due at once");

        var again = await LeaseOne(queue);
        Assert.Equal((lease.TaskId, 2), (again.TaskId, again.Attempt));
        Assert.True(again.LeaseToken > lease.LeaseToken);
    }

    [Fact]
    public virtual async Task The_holder_of_an_expired_lease_gets_lease_lost()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue, LongLease);
        Assert.NotNull(await Store.ExpireLeaseAsync(lease.TaskId, lease.LeaseToken, Ct));
        var before = await Store.GetAsync(lease.TaskId, Ct);

        await AssertLeaseLost(() => Store.HeartbeatAsync(lease, LongLease, Ct), lease, TaskState.Pending);
        await AssertLeaseLost(() => Store.CompleteAsync(lease, null, Ct), lease, TaskState.Pending);
        Assert.Equal([lease.TaskId], await Store.CompleteManyAsync([new TaskCompletion(lease)], Ct));

        AssertUnchanged(before, await Store.GetAsync(lease.TaskId, Ct));
    }

    [Fact]
    public virtual async Task An_old_token_never_touches_a_newer_lease()
    {
        var queue = Queue();
        var first = await EnqueueAndLease(queue, LongLease);
        Assert.NotNull(await Store.ExpireLeaseAsync(first.TaskId, first.LeaseToken, Ct));
        var second = await LeaseOne(queue, LongLease, "worker-2");
        var before = await Store.GetAsync(second.TaskId, Ct);

        Assert.Null(await Store.ExpireLeaseAsync(first.TaskId, first.LeaseToken, Ct));

        AssertUnchanged(before, await Store.GetAsync(second.TaskId, Ct));
        await Store.CompleteAsync(second, null, Ct);
        Assert.Equal(TaskState.Succeeded, (await Store.GetAsync(second.TaskId, Ct)).State);
    }

    [Fact]
    public virtual async Task A_token_that_never_existed_changes_nothing()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue, LongLease);
        var before = await Store.GetAsync(lease.TaskId, Ct);

        Assert.Null(await Store.ExpireLeaseAsync(lease.TaskId, lease.LeaseToken + 1, Ct));
        Assert.Null(await Store.ExpireLeaseAsync(lease.TaskId, lease.LeaseToken - 1 > 0 ? lease.LeaseToken - 1 : long.MaxValue, Ct));

        AssertUnchanged(before, await Store.GetAsync(lease.TaskId, Ct));
        await Store.HeartbeatAsync(lease, LongLease, Ct);
    }

    [Theory]
    [InlineData(TaskState.Succeeded)]
    [InlineData(TaskState.Failed)]
    [InlineData(TaskState.Canceled)]
    public virtual async Task A_finished_task_is_not_expired(TaskState state)
    {
        var queue = Queue() + "-" + state;
        var id = await Enqueue(queue, priority: int.MaxValue);
        var lease = await LeaseOne(queue);
        Assert.Equal(id, lease.TaskId);
        switch (state)
        {
            case TaskState.Succeeded: await Store.CompleteAsync(lease, null, Ct); break;
            case TaskState.Failed: await Store.FailAsync(lease, "boom", FailOptions.NonRetryable, Ct); break;
            default: Assert.True(await Store.CancelAsync(id, Ct)); break;
        }
        var before = await Store.GetAsync(id, Ct);
        var stats = await StatsOf(queue);

        Assert.Null(await Store.ExpireLeaseAsync(id, lease.LeaseToken, Ct));

        AssertUnchanged(before, await Store.GetAsync(id, Ct));
        Assert.Equal(stats, await StatsOf(queue));
    }

    [Fact]
    public virtual async Task A_pending_task_and_an_unknown_id_are_not_expired()
    {
        var queue = Queue();
        var first = await EnqueueAndLease(queue, LongLease);
        Assert.NotNull(await Store.ExpireLeaseAsync(first.TaskId, first.LeaseToken, Ct));
        var before = await Store.GetAsync(first.TaskId, Ct);

        Assert.Null(await Store.ExpireLeaseAsync(first.TaskId, first.LeaseToken, Ct));
        Assert.Null(await Store.ExpireLeaseAsync(Guid.CreateVersion7(), 1, Ct));

        AssertUnchanged(before, await Store.GetAsync(first.TaskId, Ct));
        Assert.Equal(1, (await StatsOf(queue)).Pending);
    }

    [Fact]
    public virtual async Task The_last_attempt_expired_ends_failed()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue, LongLease, maxAttempts: 1);

        var expired = await Store.ExpireLeaseAsync(lease.TaskId, lease.LeaseToken, Ct);

        Assert.Equal((1, lease.LeaseToken, TaskState.Failed), (expired!.Attempt, expired.LeaseToken, expired.State));
        var task = await Store.GetAsync(lease.TaskId, Ct);
        Assert.Equal(TaskState.Failed, task.State);
        Assert.NotNull(task.FinishedAt);
        Assert.Single(task.Errors);
        Assert.Empty(await Store.LeaseAsync(queue, "w", 10, LongLease, Ct));
    }

    [Fact]
    public virtual async Task Concurrent_expiries_and_sweeps_report_the_lease_exactly_once()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue, ShortLease);
        await WaitUntilPast(lease.ExpiresAt, "the lease has expired");

        var expiries = Enumerable.Range(0, 6).Select(_ => Task.Run(() => Store.ExpireLeaseAsync(lease.TaskId, lease.LeaseToken, Ct), Ct)).ToList();
        var sweeps = Enumerable.Range(0, 2).Select(_ => Task.Run(() => Store.ReclaimExpiredAsync(Ct), Ct)).ToList();
        var expired = await Task.WhenAll(expiries);
        var swept = await Task.WhenAll(sweeps);

        var reports = expired.Count(e => e is not null) + swept.SelectMany(s => s).Count(r => r.TaskId == lease.TaskId);
        Assert.Equal(1, reports);
        var task = await Store.GetAsync(lease.TaskId, Ct);
        Assert.Equal(TaskState.Pending, task.State);
        Assert.Single(task.Errors);
    }

    [Fact]
    public virtual async Task Bad_input_is_refused_and_changes_nothing()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue, LongLease);
        var before = await Store.GetAsync(lease.TaskId, Ct);

        await AssertRejected<ArgumentException>(() => Store.ExpireLeaseAsync(Guid.Empty, lease.LeaseToken, Ct), "taskId");
        await AssertRejected<ArgumentOutOfRangeException>(() => Store.ExpireLeaseAsync(lease.TaskId, 0, Ct), "leaseToken");
        await AssertRejected<ArgumentOutOfRangeException>(() => Store.ExpireLeaseAsync(lease.TaskId, -lease.LeaseToken, Ct), "leaseToken");

        AssertUnchanged(before, await Store.GetAsync(lease.TaskId, Ct));
    }
}
