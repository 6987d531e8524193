using Xunit;

#pragma warning disable CS1591 // Test methods: their names are the documentation.

namespace Konduit.Testing.Conformance;

/// <summary>
/// Time bounds (issue 13, item 4): every duration and instant a caller passes is bounded by
/// <see cref="TaskValidation"/>, so whatever a store commits it can read back, and one bad value never breaks
/// <see cref="ITaskStore.GetAsync"/> or <see cref="ITaskStore.QueryAsync"/> for the rest of its queue. Values past a
/// bound are refused with <see cref="ArgumentOutOfRangeException"/> naming the field, and the store is unchanged;
/// values at the bound are stored and read back.
/// </summary>
public abstract class BoundsConformance<TFixture>(TFixture fixture) : TaskStoreConformance<TFixture>(fixture)
    where TFixture : TaskStoreFixture
{
    // Before the bounds, store clock + this policy's delay overflowed, or committed a run-at no reader could parse.
    private static readonly RetryPolicy HugePolicy = new() { InitialDelay = TimeSpan.MaxValue, MaxDelay = TimeSpan.MaxValue, Jitter = 0 };
    private static readonly RetryPolicy LongestPolicy = new() { InitialDelay = TaskValidation.MaxRetryDelay, MaxDelay = TaskValidation.MaxRetryDelay, Jitter = 0 };

    /// <summary>Every read path still works for <paramref name="queue"/> and finds <paramref name="id"/>.</summary>
    private async Task AssertReadable(string queue, Guid id)
    {
        Assert.Equal(id, (await Store.GetAsync(id, Ct)).Id);
        Assert.Contains((await Store.QueryAsync(new TaskQuery { Queue = queue }, null, Ct)).Items, t => t.Id == id);
        Assert.Contains(await Store.GetStatsAsync(Ct), s => s.Queue == queue);
    }

    [Fact]
    public virtual async Task Enqueue_rejects_a_run_at_outside_the_storable_range()
    {
        var queue = Queue();
        var ok = new EnqueueRequest(queue, Bytes("x"));

        foreach (var runAt in new[] { DateTimeOffset.MaxValue, TaskValidation.MaxRunAt.AddTicks(1), DateTimeOffset.MinValue, TaskValidation.MinRunAt.AddTicks(-1) })
            await AssertRejected<ArgumentOutOfRangeException>(() => Store.EnqueueAsync(ok with { RunAt = runAt }, Ct), nameof(EnqueueRequest.RunAt));
        await AssertRejected<ArgumentException>(() => Store.EnqueueManyAsync([ok, ok with { RunAt = DateTimeOffset.MaxValue }], Ct), "requests");

        Assert.Equal(0, (await StatsOf(queue)).Total);
    }

    [Fact]
    public virtual async Task Tasks_due_at_the_earliest_and_latest_run_at_read_back()
    {
        var queue = Queue();
        var latest = await Enqueue(queue, "latest", runAt: TaskValidation.MaxRunAt);
        var earliest = await Enqueue(queue, "earliest", runAt: TaskValidation.MinRunAt);

        AssertSameTime(TaskValidation.MaxRunAt, (await Store.GetAsync(latest, Ct)).RunAt, "latest RunAt");
        AssertSameTime(TaskValidation.MinRunAt, (await Store.GetAsync(earliest, Ct)).RunAt, "earliest RunAt");
        Assert.Equal(new[] { earliest, latest }.Order(), (await Store.QueryAsync(new TaskQuery { Queue = queue }, null, Ct)).Items.Select(t => t.Id).Order());
        Assert.Equal(earliest, (await LeaseOne(queue)).TaskId);
        Assert.Empty(await Store.LeaseAsync(queue, "w", 10, LongLease, Ct));
        await AssertReadable(queue, latest);
    }

    [Fact]
    public virtual async Task Enqueue_fail_and_store_options_reject_a_retry_policy_delay_over_the_limit()
    {
        var queue = Queue();

        await AssertRejected<ArgumentOutOfRangeException>(
            () => Store.EnqueueAsync(new EnqueueRequest(queue, Bytes("x")) { RetryPolicy = HugePolicy }, Ct), nameof(RetryPolicy.MaxDelay));
        var lease = await EnqueueAndLease(queue);
        var before = await Store.GetAsync(lease.TaskId, Ct);
        await AssertRejected<ArgumentOutOfRangeException>(() => Store.FailAsync(lease, "x", new FailOptions { RetryPolicy = HugePolicy }, Ct), nameof(RetryPolicy.MaxDelay));
        await AssertRejected<ArgumentOutOfRangeException>(() => Store.FailAsync(lease, "x", new FailOptions { RetryDelay = TimeSpan.MaxValue }, Ct), nameof(FailOptions.RetryDelay));
        await AssertRejected<ArgumentOutOfRangeException>(
            () => Store.FailAsync(lease, "x", new FailOptions { RetryDelay = TaskValidation.MaxRetryDelay + TimeSpan.FromSeconds(1) }, Ct), nameof(FailOptions.RetryDelay));
        var ex = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await Fixture.CreateStoreAsync(o => o.DefaultRetryPolicy = HugePolicy));
        Assert.Equal(nameof(RetryPolicy.MaxDelay), ex.ParamName);

        var after = await Store.GetAsync(lease.TaskId, Ct);
        AssertUnchanged(before, after);
        Assert.Empty(after.Errors);
    }

    [Fact]
    public virtual async Task A_retry_after_the_longest_delay_is_stored_and_reads_back()
    {
        var queue = Queue();
        var byPolicy = await EnqueueAndLease(queue, retryPolicy: LongestPolicy);
        var byDelay = await EnqueueAndLease(queue);
        var before = DateTimeOffset.UtcNow;

        var first = await Store.FailAsync(byPolicy, "boom", null, Ct);
        var second = await Store.FailAsync(byDelay, "boom", new FailOptions { RetryDelay = TaskValidation.MaxRetryDelay }, Ct);
        var after = DateTimeOffset.UtcNow;

        foreach (var (result, id) in new[] { (first, byPolicy.TaskId), (second, byDelay.TaskId) })
        {
            Assert.True(result.WillRetry);
            AssertBetween(result.NextRunAt, before + TaskValidation.MaxRetryDelay, after + TaskValidation.MaxRetryDelay, "NextRunAt");
            AssertSameTime(result.NextRunAt!.Value, (await Store.GetAsync(id, Ct)).RunAt, "stored RunAt");
            await AssertReadable(queue, id);
        }
        Assert.Empty(await Store.LeaseAsync(queue, "w", 10, LongLease, Ct));
    }

    [Fact]
    public virtual async Task Purge_accepts_an_age_of_years_and_rejects_one_over_the_limit()
    {
        var queue = Queue();
        var done = await EnqueueInState(queue, TaskState.Succeeded);

        Assert.Empty(await Store.PurgeAsync(TimeSpan.FromDays(365 * 30), null, queue, Ct));
        Assert.Empty(await Store.PurgeAsync(TaskValidation.MaxPurgeAge, null, null, Ct));
        foreach (var age in new[] { TaskValidation.MaxPurgeAge + TimeSpan.FromDays(1), TimeSpan.MaxValue })
        {
            await AssertRejected<ArgumentOutOfRangeException>(() => Store.PurgeAsync(age, null, queue, Ct), "olderThan");
            await AssertRejected<ArgumentOutOfRangeException>(() => Store.PurgeAsync(age, null, null, Ct), "olderThan");
        }

        Assert.Equal(TaskState.Succeeded, (await Store.GetAsync(done, Ct)).State);
        Assert.Equal(done, Assert.Single(await Store.PurgeAsync(TimeSpan.Zero, null, queue, Ct)).TaskId);
    }

    [Fact]
    public virtual async Task Lease_and_heartbeat_reject_huge_durations_and_keep_the_longest()
    {
        var queue = Queue();
        await Enqueue(queue);

        await AssertRejected<ArgumentOutOfRangeException>(() => Store.LeaseAsync(queue, "w", 1, TimeSpan.MaxValue, Ct), "leaseDuration");
        var before = DateTimeOffset.UtcNow;
        var lease = await LeaseOne(queue, TaskValidation.MaxLeaseDuration);
        AssertBetween(lease.ExpiresAt, before + TaskValidation.MaxLeaseDuration, DateTimeOffset.UtcNow + TaskValidation.MaxLeaseDuration, "lease expiry");
        foreach (var extension in new[] { TimeSpan.MaxValue, TaskValidation.MaxLeaseDuration + TimeSpan.FromSeconds(1) })
        {
            await AssertRejected<ArgumentOutOfRangeException>(() => Store.HeartbeatAsync(lease, extension, Ct), "extension");
            await AssertRejected<ArgumentOutOfRangeException>(() => Store.HeartbeatManyAsync([lease], extension, Ct), "extension");
        }
        var renewed = await Store.HeartbeatAsync(lease, TaskValidation.MaxLeaseDuration, Ct);

        AssertSameTime(renewed.ExpiresAt, (await Store.GetAsync(lease.TaskId, Ct)).LeaseExpiresAt, "renewed expiry");
        await AssertReadable(queue, lease.TaskId);
        await Store.CompleteAsync(renewed, null, Ct);
    }

    // The timeout bounds the test when a store would really wait out an over-long timeout.
    [Fact(Timeout = 30_000)]
    public virtual async Task Wait_for_work_rejects_a_timeout_over_the_limit()
    {
        var queue = Queue();

        foreach (var timeout in new[] { TimeSpan.MaxValue, TimeSpan.FromDays(60), TaskValidation.MaxWaitTimeout + TimeSpan.FromSeconds(1) })
            await AssertRejected<ArgumentOutOfRangeException>(() => Store.WaitForWorkAsync(queue, timeout, Ct), "timeout");

        // The longest finite and the infinite timeout pass validation: with a canceled token the wait then ends at once.
        using var canceled = new CancellationTokenSource();
        await canceled.CancelAsync();
        foreach (var timeout in new[] { TaskValidation.MaxWaitTimeout, Timeout.InfiniteTimeSpan })
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Store.WaitForWorkAsync(queue, timeout, canceled.Token));
    }

    [Fact]
    public virtual async Task Query_accepts_the_extreme_instants_as_bounds()
    {
        var queue = Queue();
        var id = await Enqueue(queue);

        var all = await Store.QueryAsync(new TaskQuery { Queue = queue, EnqueuedFrom = DateTimeOffset.MinValue, EnqueuedTo = DateTimeOffset.MaxValue }, null, Ct);

        Assert.Equal([id], all.Items.Select(t => t.Id));
        Assert.Empty((await Store.QueryAsync(new TaskQuery { Queue = queue, EnqueuedTo = DateTimeOffset.MinValue }, null, Ct)).Items);
        Assert.Empty((await Store.QueryAsync(new TaskQuery { Queue = queue, EnqueuedFrom = DateTimeOffset.MaxValue }, null, Ct)).Items);
    }
}
