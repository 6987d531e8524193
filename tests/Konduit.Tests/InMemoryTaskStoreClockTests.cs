using Konduit.InMemory;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Konduit.Tests;

/// <summary>The in-memory store on a fake clock: boundaries exactly, no waiting.</summary>
public sealed class InMemoryTaskStoreClockTests : IAsyncDisposable
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero));
    private readonly InMemoryTaskStore _store;

    public InMemoryTaskStoreClockTests()
    {
        _store = new InMemoryTaskStore(new InMemoryTaskStoreOptions
        {
            DefaultRetryPolicy = new RetryPolicy { InitialDelay = TimeSpan.FromSeconds(10), MaxDelay = TimeSpan.FromMinutes(5), Multiplier = 3, Jitter = 0 },
        }, _time);
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public ValueTask DisposeAsync() => _store.DisposeAsync();

    private async Task<TaskLease> EnqueueAndLease(int maxAttempts = 10)
    {
        await _store.EnqueueAsync(new EnqueueRequest("q", [1]) { MaxAttempts = maxAttempts }, Ct);
        return Assert.Single(await _store.LeaseAsync("q", "w", 1, Lease, Ct));
    }

    [Fact]
    public async Task Timestamps_come_from_the_store_clock()
    {
        var start = _time.GetUtcNow();
        var id = (await _store.EnqueueAsync(new EnqueueRequest("q", [1]), Ct)).TaskId;
        _time.Advance(TimeSpan.FromSeconds(5));
        var lease = Assert.Single(await _store.LeaseAsync("q", "w", 1, Lease, Ct));
        _time.Advance(TimeSpan.FromSeconds(2));
        await _store.CompleteAsync(lease, null, Ct);

        var task = await _store.GetAsync(id, Ct);
        Assert.Equal(start, task.EnqueuedAt);
        Assert.Equal(start, task.RunAt);
        Assert.Equal(start, lease.EnqueuedAt);
        Assert.Equal(start.AddSeconds(5), task.StartedAt);
        Assert.Equal(start.AddSeconds(5) + Lease, lease.ExpiresAt);
        Assert.Equal(start.AddSeconds(7), task.FinishedAt);
        Assert.Equal(start.AddSeconds(7), task.UpdatedAt);
    }

    [Fact]
    public async Task A_lease_is_valid_until_one_tick_before_expiry_and_lost_exactly_at_expiry()
    {
        var lease = await EnqueueAndLease();

        _time.Advance(Lease - TimeSpan.FromTicks(1));
        var extended = await _store.HeartbeatAsync(lease, TimeSpan.FromTicks(1), Ct);
        Assert.Equal(lease.ExpiresAt, extended.ExpiresAt);

        _time.Advance(TimeSpan.FromTicks(1));
        var ex = await Assert.ThrowsAsync<LeaseLostException>(() => _store.CompleteAsync(lease, null, Ct));
        Assert.Equal(TaskState.Running, ex.CurrentState);
    }

    [Fact]
    public async Task Reclaim_takes_a_lease_exactly_at_its_expiry_and_not_a_tick_before()
    {
        var lease = await EnqueueAndLease();

        _time.Advance(Lease - TimeSpan.FromTicks(1));
        Assert.Empty(await _store.ReclaimExpiredAsync(Ct));

        _time.Advance(TimeSpan.FromTicks(1));
        Assert.Single(await _store.ReclaimExpiredAsync(Ct));
        Assert.Empty(await _store.ReclaimExpiredAsync(Ct));

        var task = await _store.GetAsync(lease.TaskId, Ct);
        Assert.Equal(TaskState.Pending, task.State);
        Assert.Equal(lease.ExpiresAt, task.RunAt);
        Assert.Equal(new TaskError(1, "lease expired", lease.ExpiresAt), Assert.Single(task.Errors));
    }

    [Fact]
    public async Task Heartbeat_sets_expiry_to_the_extension_from_the_store_clock()
    {
        var lease = await EnqueueAndLease();
        _time.Advance(TimeSpan.FromSeconds(20));

        var extended = await _store.HeartbeatAsync(lease, TimeSpan.FromSeconds(15), Ct);

        Assert.Equal(_time.GetUtcNow().AddSeconds(15), extended.ExpiresAt);
        _time.Advance(TimeSpan.FromSeconds(14));
        Assert.Empty(await _store.ReclaimExpiredAsync(Ct));
        await _store.CompleteAsync(extended, null, Ct);
    }

    [Fact]
    public async Task Backoff_makes_the_retry_due_exactly_after_the_policy_delay()
    {
        var lease1 = await EnqueueAndLease();
        var failedAt = _time.GetUtcNow();

        var result = await _store.FailAsync(lease1, "boom", null, Ct);

        Assert.Equal(failedAt.AddSeconds(10), result.NextRunAt);
        _time.Advance(TimeSpan.FromSeconds(10) - TimeSpan.FromTicks(1));
        Assert.Empty(await _store.LeaseAsync("q", "w", 1, Lease, Ct));
        _time.Advance(TimeSpan.FromTicks(1));
        var lease2 = Assert.Single(await _store.LeaseAsync("q", "w", 1, Lease, Ct));
        Assert.Equal(2, lease2.Attempt);

        // Attempt 2: 10 s × 3.
        var second = await _store.FailAsync(lease2, "boom", null, Ct);
        Assert.Equal(_time.GetUtcNow().AddSeconds(30), second.NextRunAt);
    }

    [Fact]
    public async Task A_scheduled_task_becomes_leasable_exactly_at_its_run_at()
    {
        var runAt = _time.GetUtcNow().AddMinutes(1);
        await _store.EnqueueAsync(new EnqueueRequest("q", [1]) { RunAt = runAt }, Ct);

        _time.Advance(TimeSpan.FromMinutes(1) - TimeSpan.FromTicks(1));
        Assert.Empty(await _store.LeaseAsync("q", "w", 1, Lease, Ct));
        _time.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(runAt, Assert.Single(await _store.LeaseAsync("q", "w", 1, Lease, Ct)).RunAt);
    }

    [Fact]
    public async Task Purge_takes_tasks_finished_at_least_older_than_ago()
    {
        var lease = await EnqueueAndLease();
        await _store.CompleteAsync(lease, null, Ct);

        _time.Advance(TimeSpan.FromHours(1) - TimeSpan.FromTicks(1));
        Assert.Empty(await _store.PurgeAsync(TimeSpan.FromHours(1), cancellationToken: Ct));
        _time.Advance(TimeSpan.FromTicks(1));
        Assert.Single(await _store.PurgeAsync(TimeSpan.FromHours(1), cancellationToken: Ct));
        Assert.Empty(await _store.GetStatsAsync(Ct));
    }

    [Fact]
    public async Task Query_time_filter_uses_store_creation_times()
    {
        var first = (await _store.EnqueueAsync(new EnqueueRequest("q", [1]), Ct)).TaskId;
        _time.Advance(TimeSpan.FromDays(2));
        var second = (await _store.EnqueueAsync(new EnqueueRequest("q", [2]), Ct)).TaskId;

        var lastDay = await _store.QueryAsync(new TaskQuery { EnqueuedFrom = _time.GetUtcNow().AddDays(-1) }, null, Ct);
        var before = await _store.QueryAsync(new TaskQuery { EnqueuedTo = _time.GetUtcNow().AddDays(-1) }, null, Ct);

        Assert.Equal(second, Assert.Single(lastDay.Items).Id);
        Assert.Equal(first, Assert.Single(before.Items).Id);
    }

    [Fact]
    public async Task Wait_for_work_times_out_on_the_store_clock()
    {
        var wait = _store.WaitForWorkAsync("q", TimeSpan.FromSeconds(30), Ct);
        Assert.False(wait.IsCompleted);

        _time.Advance(TimeSpan.FromSeconds(30));

        Assert.False(await wait);
    }

    [Fact]
    public async Task Wait_for_work_is_woken_by_enqueue_fail_retry_reclaim_and_redrive()
    {
        var wait = _store.WaitForWorkAsync("q", TimeSpan.FromHours(1), Ct);
        await _store.EnqueueAsync(new EnqueueRequest("q", [1]) { MaxAttempts = 3 }, Ct);
        Assert.True(await wait);

        var lease = Assert.Single(await _store.LeaseAsync("q", "w", 1, Lease, Ct));
        Assert.False(await _store.WaitForWorkAsync("q", TimeSpan.Zero, Ct));
        await _store.FailAsync(lease, "x", new FailOptions { RetryDelay = TimeSpan.Zero }, Ct);
        Assert.True(await _store.WaitForWorkAsync("q", TimeSpan.Zero, Ct));

        lease = Assert.Single(await _store.LeaseAsync("q", "w", 1, Lease, Ct));
        _time.Advance(Lease);
        Assert.Single(await _store.ReclaimExpiredAsync(Ct));
        Assert.True(await _store.WaitForWorkAsync("q", TimeSpan.Zero, Ct));

        Assert.True(await _store.CancelAsync(lease.TaskId, Ct));
        Assert.False(await _store.WaitForWorkAsync("q", TimeSpan.Zero, Ct));
        await _store.RedriveAsync(lease.TaskId, Ct);
        Assert.True(await _store.WaitForWorkAsync("q", TimeSpan.Zero, Ct));
    }

    [Fact]
    public async Task Wait_for_work_signals_are_per_queue()
    {
        await _store.EnqueueAsync(new EnqueueRequest("other", [1]), Ct);

        Assert.False(await _store.WaitForWorkAsync("q", TimeSpan.Zero, Ct));
        Assert.True(await _store.WaitForWorkAsync("other", TimeSpan.Zero, Ct));
        Assert.False(await _store.WaitForWorkAsync("other", TimeSpan.Zero, Ct));
    }

    [Fact]
    public async Task Dispose_releases_waiters_and_refuses_later_calls()
    {
        var wait = _store.WaitForWorkAsync("q", TimeSpan.FromHours(1), Ct);

        await _store.DisposeAsync();

        Assert.False(await wait);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => _store.EnqueueAsync(new EnqueueRequest("q", [1]), Ct));
    }

    [Fact]
    public async Task Returned_leases_and_snapshots_are_copies()
    {
        var lease = await EnqueueAndLease();
        lease.Payload[0] = 99;
        await _store.CompleteAsync(lease, [7], Ct);

        var snapshot = await _store.GetAsync(lease.TaskId, Ct);
        Assert.Equal([1], snapshot.Payload);
        snapshot.Result![0] = 8;
        Assert.Equal([7], (await _store.GetAsync(lease.TaskId, Ct)).Result);
        Assert.Throws<NotSupportedException>(() => ((IDictionary<string, string>)snapshot.Headers).Add("x", "y"));
    }

    [Fact]
    public void Options_are_validated_at_construction()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new InMemoryTaskStore(new InMemoryTaskStoreOptions { MaxPayloadBytes = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new InMemoryTaskStore(new InMemoryTaskStoreOptions { DefaultRetryPolicy = new RetryPolicy { Jitter = 3 } }));
        Assert.Equal("inmemory", new InMemoryTaskStore().Name);
    }
}
