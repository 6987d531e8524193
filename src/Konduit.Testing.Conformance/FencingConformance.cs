using Xunit;

#pragma warning disable CS1591 // Test methods: their names are the documentation.

namespace Konduit.Testing.Conformance;

/// <summary>
/// Fencing tokens and outcomes: the token grows on every lease, a stale or forged lease changes nothing, and at
/// most one complete or fail is accepted per lease (ADR 002).
/// </summary>
public abstract class FencingConformance<TFixture>(TFixture fixture) : TaskStoreConformance<TFixture>(fixture)
    where TFixture : TaskStoreFixture
{
    private static readonly FailOptions RetryNow = new() { RetryDelay = TimeSpan.Zero };

    [Fact]
    public virtual async Task Token_strictly_increases_every_time_the_task_is_leased()
    {
        var queue = Queue();
        var lease1 = await EnqueueAndLease(queue, maxAttempts: 10);
        await Store.FailAsync(lease1, "retry", RetryNow, Ct);
        var lease2 = await LeaseOne(queue);
        await Store.CancelAsync(lease2.TaskId, Ct);
        await Store.RedriveAsync(lease2.TaskId, Ct);
        var lease3 = await LeaseOne(queue);

        Assert.True(lease1.LeaseToken < lease2.LeaseToken, $"{lease1.LeaseToken} < {lease2.LeaseToken}");
        Assert.True(lease2.LeaseToken < lease3.LeaseToken, $"{lease2.LeaseToken} < {lease3.LeaseToken} (a redrive never resets the token)");
        Assert.Equal(lease3.LeaseToken, (await Store.GetAsync(lease3.TaskId, Ct)).LeaseToken);
    }

    [Fact]
    public virtual async Task Complete_stores_the_result_and_finishes_the_task()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue);
        var before = DateTimeOffset.UtcNow;
        await Store.CompleteAsync(lease, Bytes("done"), Ct);
        var after = DateTimeOffset.UtcNow;

        var task = await Store.GetAsync(lease.TaskId, Ct);
        Assert.Equal(TaskState.Succeeded, task.State);
        Assert.Equal(Bytes("done"), task.Result);
        Assert.Null(task.LeaseExpiresAt);
        AssertBetween(task.FinishedAt, before, after, "FinishedAt");
        Assert.Equal(1, (await StatsOf(queue)).Succeeded);
    }

    [Fact]
    public virtual async Task Stale_token_heartbeat_complete_and_fail_are_refused_after_a_re_lease()
    {
        var queue = Queue();
        var stale = await EnqueueAndLease(queue, ShortLease);
        await WaitUntilPast(stale.ExpiresAt, "the first lease has expired");
        await Eventually(async () => { await Store.ReclaimExpiredAsync(Ct); return (await Store.GetAsync(stale.TaskId, Ct)).State == TaskState.Pending; },
            DefaultDeadline, "the expired lease is reclaimed");
        var current = await LeaseOne(queue);
        var before = await Store.GetAsync(stale.TaskId, Ct);

        await AssertLeaseLost(() => Store.HeartbeatAsync(stale, LongLease, Ct), stale, TaskState.Running);
        await AssertLeaseLost(() => Store.CompleteAsync(stale, Bytes("stale"), Ct), stale, TaskState.Running);
        await AssertLeaseLost(() => Store.FailAsync(stale, "stale", FailOptions.NonRetryable, Ct), stale, TaskState.Running);

        AssertUnchanged(before, await Store.GetAsync(stale.TaskId, Ct));
        await Store.CompleteAsync(current, Bytes("fresh"), Ct);
        Assert.Equal(Bytes("fresh"), (await Store.GetAsync(stale.TaskId, Ct)).Result);
    }

    [Fact]
    public virtual async Task A_forged_token_or_an_unknown_task_is_refused()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue);
        var forged = lease with { LeaseToken = lease.LeaseToken + 1 };
        var ghost = lease with { TaskId = Guid.CreateVersion7() };

        await AssertLeaseLost(() => Store.CompleteAsync(forged, null, Ct), forged, TaskState.Running);
        await AssertLeaseLost(() => Store.HeartbeatAsync(ghost, LongLease, Ct), ghost, null);
        await AssertLeaseLost(() => Store.CompleteAsync(ghost, null, Ct), ghost, null);
        await AssertLeaseLost(() => Store.FailAsync(ghost, "x", null, Ct), ghost, null);
        await Store.CompleteAsync(lease, null, Ct);
    }

    [Fact]
    public virtual async Task Only_one_outcome_is_accepted_per_lease()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue);
        await Store.CompleteAsync(lease, Bytes("first"), Ct);
        var before = await Store.GetAsync(lease.TaskId, Ct);

        await AssertLeaseLost(() => Store.CompleteAsync(lease, Bytes("second"), Ct), lease, TaskState.Succeeded);
        await AssertLeaseLost(() => Store.FailAsync(lease, "late", null, Ct), lease, TaskState.Succeeded);

        var after = await Store.GetAsync(lease.TaskId, Ct);
        AssertUnchanged(before, after);
        Assert.Equal(Bytes("first"), after.Result);
        Assert.Empty(after.Errors);
    }

    [Fact]
    public virtual async Task Complete_after_a_retryable_fail_is_refused()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue);
        await Store.FailAsync(lease, "boom", FailOptions.Retry with { RetryDelay = TimeSpan.FromHours(1) }, Ct);

        await AssertLeaseLost(() => Store.CompleteAsync(lease, null, Ct), lease, TaskState.Pending);
        await AssertLeaseLost(() => Store.FailAsync(lease, "again", null, Ct), lease, TaskState.Pending);
        Assert.Single((await Store.GetAsync(lease.TaskId, Ct)).Errors);
    }

    [Fact]
    public virtual async Task Complete_after_dead_letter_is_refused()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue);
        await Store.FailAsync(lease, "fatal", FailOptions.NonRetryable, Ct);

        await AssertLeaseLost(() => Store.CompleteAsync(lease, null, Ct), lease, TaskState.Failed);
        Assert.Equal(TaskState.Failed, (await Store.GetAsync(lease.TaskId, Ct)).State);
    }

    [Fact]
    public virtual async Task Concurrent_complete_and_fail_race_has_exactly_one_winner()
    {
        var queue = Queue();
        for (var round = 0; round < 10; round++)
        {
            var lease = await EnqueueAndLease(queue);
            var complete = Task.Run(() => Store.CompleteAsync(lease, Bytes("ok"), Ct), Ct);
            var fail = Task.Run(() => Store.FailAsync(lease, "boom", FailOptions.NonRetryable, Ct), Ct);
            var outcomes = await Task.WhenAll(Outcome(complete), Outcome(fail));

            Assert.Single(outcomes, won => won);
            var task = await Store.GetAsync(lease.TaskId, Ct);
            if (outcomes[0])
            {
                Assert.Equal(TaskState.Succeeded, task.State);
                Assert.Empty(task.Errors);
            }
            else
            {
                Assert.Equal(TaskState.Failed, task.State);
                Assert.Null(task.Result);
                Assert.Single(task.Errors);
            }
        }

        static async Task<bool> Outcome(Task call)
        {
            try
            {
                await call;
                return true;
            }
            catch (LeaseLostException)
            {
                return false;
            }
        }
    }

    [Fact]
    public virtual async Task Complete_many_accepts_valid_leases_and_reports_lost_ones()
    {
        var queue = Queue();
        for (var i = 0; i < 3; i++) await Enqueue(queue);
        var leases = await Store.LeaseAsync(queue, "w", 3, LongLease, Ct);
        Assert.Equal(3, leases.Count);
        await Store.CompleteAsync(leases[1], null, Ct);
        var forged = leases[2] with { LeaseToken = leases[2].LeaseToken + 7 };

        var lost = await Store.CompleteManyAsync([new(leases[0], Bytes("r0")), new(leases[1]), new(forged)], Ct);

        Assert.Equal(new[] { leases[1].TaskId, leases[2].TaskId }.Order(), lost.Order());
        Assert.Equal(Bytes("r0"), (await Store.GetAsync(leases[0].TaskId, Ct)).Result);
        Assert.Equal(TaskState.Running, (await Store.GetAsync(leases[2].TaskId, Ct)).State);
        Assert.Empty(await Store.CompleteManyAsync([new(leases[2])], Ct));
        Assert.Equal(3, (await StatsOf(queue)).Succeeded);
    }
}
