using Xunit;

#pragma warning disable CS1591 // Test methods: their names are the documentation.

namespace Konduit.Testing.Conformance;

/// <summary>Failures: retry with backoff and its precedence rules, dead-lettering, and the error history.</summary>
public abstract class RetryConformance<TFixture>(TFixture fixture) : TaskStoreConformance<TFixture>(fixture)
    where TFixture : TaskStoreFixture
{
    private static RetryPolicy Fixed(TimeSpan delay) => new() { InitialDelay = delay, MaxDelay = delay * 4, Multiplier = 2, Jitter = 0 };

    /// <summary>Fails <paramref name="lease"/> and checks the retry is due <paramref name="expectedDelay"/> after the failure (store clock).</summary>
    private async Task AssertRetriedAfter(TaskLease lease, FailOptions? options, TimeSpan expectedDelay, ITaskStore? store = null)
    {
        store ??= Store;
        var before = DateTimeOffset.UtcNow;
        var result = await store.FailAsync(lease, "boom", options, Ct);
        var after = DateTimeOffset.UtcNow;

        Assert.Equal(TaskState.Pending, result.State);
        Assert.True(result.WillRetry);
        AssertBetween(result.NextRunAt, before + expectedDelay, after + expectedDelay, "retry due time");
        var task = await store.GetAsync(lease.TaskId, Ct);
        AssertSameTime(result.NextRunAt!.Value, task.RunAt, "stored run-at");
        AssertSameTime(task.Errors[^1].OccurredAt + expectedDelay, result.NextRunAt, "due time = failure time + delay");
    }

    [Fact]
    public virtual async Task Retryable_failure_returns_the_task_to_pending_due_after_the_delay()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue);

        await AssertRetriedAfter(lease, new FailOptions { RetryDelay = TimeSpan.FromHours(1) }, TimeSpan.FromHours(1));

        var task = await Store.GetAsync(lease.TaskId, Ct);
        Assert.Equal(TaskState.Pending, task.State);
        Assert.Equal(1, task.Attempts);
        Assert.Null(task.LeaseExpiresAt);
        Assert.Null(task.FinishedAt);
        Assert.Empty(await Store.LeaseAsync(queue, "w", 10, LongLease, Ct));
    }

    [Fact]
    public virtual async Task Retry_with_zero_delay_can_be_leased_again_at_once_as_the_next_attempt()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue);
        await Store.FailAsync(lease, "boom", new FailOptions { RetryDelay = TimeSpan.Zero }, Ct);

        var again = await LeaseOne(queue);

        Assert.Equal(lease.TaskId, again.TaskId);
        Assert.Equal(2, again.Attempt);
        Assert.True(again.LeaseToken > lease.LeaseToken);
    }

    [Fact]
    public virtual async Task Failure_without_a_delay_or_policy_uses_the_store_default_policy()
    {
        var store = await Fixture.CreateStoreAsync(o => o.DefaultRetryPolicy = Fixed(TimeSpan.FromHours(1)));
        var queue = Queue();
        await store.EnqueueAsync(new EnqueueRequest(queue, Bytes("x")), Ct);
        var lease = Assert.Single(await store.LeaseAsync(queue, "w", 1, LongLease, Ct));

        await AssertRetriedAfter(lease, null, TimeSpan.FromHours(1), store);
    }

    [Fact]
    public virtual async Task The_failure_policy_overrides_the_store_default()
    {
        var store = await Fixture.CreateStoreAsync(o => o.DefaultRetryPolicy = Fixed(TimeSpan.FromHours(1)));
        var queue = Queue();
        await store.EnqueueAsync(new EnqueueRequest(queue, Bytes("x")), Ct);
        var lease = Assert.Single(await store.LeaseAsync(queue, "w", 1, LongLease, Ct));

        await AssertRetriedAfter(lease, new FailOptions { RetryPolicy = Fixed(TimeSpan.FromHours(3)) }, TimeSpan.FromHours(3), store);
    }

    [Fact]
    public virtual async Task The_task_policy_overrides_the_failure_policy_and_the_store_default()
    {
        var store = await Fixture.CreateStoreAsync(o => o.DefaultRetryPolicy = Fixed(TimeSpan.FromHours(1)));
        var queue = Queue();
        await store.EnqueueAsync(new EnqueueRequest(queue, Bytes("x")) { RetryPolicy = Fixed(TimeSpan.FromHours(2)) }, Ct);
        var lease = Assert.Single(await store.LeaseAsync(queue, "w", 1, LongLease, Ct));

        await AssertRetriedAfter(lease, new FailOptions { RetryPolicy = Fixed(TimeSpan.FromHours(3)) }, TimeSpan.FromHours(2), store);
    }

    [Fact]
    public virtual async Task An_explicit_retry_delay_overrides_every_policy()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue, retryPolicy: Fixed(TimeSpan.FromHours(2)));

        await AssertRetriedAfter(lease, new FailOptions { RetryDelay = TimeSpan.FromMinutes(7), RetryPolicy = Fixed(TimeSpan.FromHours(3)) }, TimeSpan.FromMinutes(7));
    }

    [Fact]
    public virtual async Task Backoff_grows_with_the_attempt_number()
    {
        var queue = Queue();
        var lease1 = await EnqueueAndLease(queue, retryPolicy: Fixed(TimeSpan.FromHours(1)));
        await Store.FailAsync(lease1, "first", new FailOptions { RetryDelay = TimeSpan.Zero }, Ct);
        var lease2 = await LeaseOne(queue);
        Assert.Equal(2, lease2.Attempt);

        // Attempt 2 of InitialDelay 1 h × Multiplier 2: 2 h.
        await AssertRetriedAfter(lease2, null, TimeSpan.FromHours(2));
    }

    [Fact]
    public virtual async Task Jittered_default_delay_stays_within_its_bounds()
    {
        var store = await Fixture.CreateStoreAsync(o => o.DefaultRetryPolicy = new RetryPolicy
        {
            InitialDelay = TimeSpan.FromHours(1), MaxDelay = TimeSpan.FromHours(1), Jitter = 0.5,
        });
        var queue = Queue();
        await store.EnqueueAsync(new EnqueueRequest(queue, Bytes("x")), Ct);
        var lease = Assert.Single(await store.LeaseAsync(queue, "w", 1, LongLease, Ct));
        var before = DateTimeOffset.UtcNow;

        var result = await store.FailAsync(lease, "boom", null, Ct);

        AssertBetween(result.NextRunAt, before + TimeSpan.FromMinutes(30), DateTimeOffset.UtcNow + TimeSpan.FromHours(1), "jittered due time");
    }

    [Fact]
    public virtual async Task Exhausted_attempts_dead_letter_the_task()
    {
        var queue = Queue();
        var lease1 = await EnqueueAndLease(queue, maxAttempts: 2);
        Assert.True((await Store.FailAsync(lease1, "one", new FailOptions { RetryDelay = TimeSpan.Zero }, Ct)).WillRetry);
        var lease2 = await LeaseOne(queue);

        var before = DateTimeOffset.UtcNow;
        var result = await Store.FailAsync(lease2, "two", new FailOptions { RetryDelay = TimeSpan.Zero }, Ct);
        var after = DateTimeOffset.UtcNow;

        Assert.Equal(TaskState.Failed, result.State);
        Assert.False(result.WillRetry);
        Assert.Null(result.NextRunAt);
        var task = await Store.GetAsync(lease1.TaskId, Ct);
        Assert.Equal(TaskState.Failed, task.State);
        Assert.Equal(2, task.Attempts);
        AssertBetween(task.FinishedAt, before, after, "FinishedAt");
        Assert.Empty(await Store.LeaseAsync(queue, "w", 10, LongLease, Ct));
        Assert.Equal(1, (await StatsOf(queue)).Failed);
    }

    [Fact]
    public virtual async Task Non_retryable_failure_dead_letters_at_once_whatever_attempts_remain()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue, maxAttempts: 10);

        var result = await Store.FailAsync(lease, "poison", FailOptions.NonRetryable, Ct);

        Assert.Equal(new FailResult(TaskState.Failed, null), result);
        var task = await Store.GetAsync(lease.TaskId, Ct);
        Assert.Equal(TaskState.Failed, task.State);
        Assert.Equal("poison", Assert.Single(task.Errors).Message);
    }

    [Fact]
    public virtual async Task Error_history_keeps_every_failure_oldest_first()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue, maxAttempts: 3);
        for (var attempt = 1; attempt <= 3; attempt++)
        {
            Assert.Equal(attempt, lease.Attempt);
            await Store.FailAsync(lease, $"error {attempt}", new FailOptions { RetryDelay = TimeSpan.Zero }, Ct);
            if (attempt < 3) lease = await LeaseOne(queue);
        }

        var task = await Store.GetAsync(lease.TaskId, Ct);
        Assert.Equal(TaskState.Failed, task.State);
        Assert.Equal(["error 1", "error 2", "error 3"], task.Errors.Select(e => e.Message));
        Assert.Equal([1, 2, 3], task.Errors.Select(e => e.Attempt));
        Assert.True(task.Errors[0].OccurredAt <= task.Errors[1].OccurredAt && task.Errors[1].OccurredAt <= task.Errors[2].OccurredAt);
    }

    [Fact]
    public virtual async Task Over_long_error_text_is_truncated_not_rejected()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue);
        var text = new string('e', TaskValidation.MaxErrorLength + 500);

        await Store.FailAsync(lease, text, FailOptions.NonRetryable, Ct);

        var error = Assert.Single((await Store.GetAsync(lease.TaskId, Ct)).Errors);
        Assert.Equal(text[..TaskValidation.MaxErrorLength], error.Message);
    }
}
