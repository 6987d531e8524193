using Xunit;

namespace Konduit.Tests;

public sealed class RetryPolicyTests
{
    private static readonly RetryPolicy NoJitter = new() { InitialDelay = TimeSpan.FromSeconds(1), MaxDelay = TimeSpan.FromMinutes(10), Multiplier = 2, Jitter = 0 };

    private static TaskLease Lease(int attempt, RetryPolicy? policy = null) => new()
    {
        TaskId = Guid.NewGuid(), Queue = "q", WorkerId = "w", LeaseToken = 1, Attempt = attempt, MaxAttempts = 10,
        ExpiresAt = DateTimeOffset.UtcNow, Payload = [], RetryPolicy = policy,
    };

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(3, 4)]
    [InlineData(4, 8)]
    [InlineData(10, 512)]
    public void Delay_grows_exponentially_with_the_attempt(int attempt, int expectedSeconds)
    {
        Assert.Equal(TimeSpan.FromSeconds(expectedSeconds), NoJitter.ComputeDelay(attempt, 0));
    }

    [Theory]
    [InlineData(11)]
    [InlineData(60)]
    [InlineData(5000)]
    public void Delay_is_capped_at_max_delay_even_when_the_exponent_overflows(int attempt)
    {
        Assert.Equal(TimeSpan.FromMinutes(10), NoJitter.ComputeDelay(attempt, 0));
    }

    [Fact]
    public void Attempts_below_one_use_the_initial_delay()
    {
        Assert.Equal(TimeSpan.FromSeconds(1), NoJitter.ComputeDelay(0, 0));
        Assert.Equal(TimeSpan.FromSeconds(1), NoJitter.ComputeDelay(-3, 0));
    }

    [Theory]
    [InlineData(0.0, 8000)]
    [InlineData(0.5, 7200)]
    [InlineData(1.0, 6400)]
    [InlineData(7.0, 6400)]
    [InlineData(-1.0, 8000)]
    public void Jitter_takes_at_most_its_fraction_off_the_delay(double sample, double expectedMs)
    {
        var policy = NoJitter with { Jitter = 0.2 };

        Assert.Equal(expectedMs, policy.ComputeDelay(4, sample).TotalMilliseconds, 6);
    }

    [Fact]
    public void Random_jitter_stays_within_its_bounds()
    {
        var policy = RetryPolicy.Default;
        for (var i = 0; i < 10_000; i++)
        {
            var delay = policy.ComputeDelay(3);
            Assert.InRange(delay, TimeSpan.FromSeconds(4 * 0.8), TimeSpan.FromSeconds(4));
        }
    }

    [Fact]
    public void Default_policy_is_one_second_doubling_to_ten_minutes_with_20_percent_jitter()
    {
        var policy = RetryPolicy.Default;

        Assert.Equal((TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(10), 2.0, 0.2), (policy.InitialDelay, policy.MaxDelay, policy.Multiplier, policy.Jitter));
    }

    [Fact]
    public void Validate_rejects_out_of_range_values()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetryPolicy { InitialDelay = TimeSpan.FromSeconds(-1) }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetryPolicy { InitialDelay = TimeSpan.FromHours(1), MaxDelay = TimeSpan.FromMinutes(1) }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetryPolicy { Multiplier = 0.99 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetryPolicy { Multiplier = double.NaN }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetryPolicy { Multiplier = double.PositiveInfinity }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetryPolicy { Jitter = -0.1 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetryPolicy { Jitter = 1.1 }.Validate());
        new RetryPolicy { InitialDelay = TimeSpan.Zero, MaxDelay = TimeSpan.Zero, Multiplier = 1, Jitter = 1 }.Validate();
    }

    [Fact]
    public void Resolve_delay_prefers_the_explicit_delay_over_every_policy()
    {
        var options = new FailOptions { RetryDelay = TimeSpan.FromSeconds(42), RetryPolicy = NoJitter with { InitialDelay = TimeSpan.FromSeconds(3) } };

        Assert.Equal(TimeSpan.FromSeconds(42), options.ResolveDelay(Lease(1, NoJitter with { InitialDelay = TimeSpan.FromSeconds(2) }), NoJitter));
    }

    [Fact]
    public void Resolve_delay_prefers_the_task_policy_then_the_failure_policy_then_the_store_default()
    {
        var task = NoJitter with { InitialDelay = TimeSpan.FromSeconds(2) };
        var failure = new FailOptions { RetryPolicy = NoJitter with { InitialDelay = TimeSpan.FromSeconds(3) } };
        var store = NoJitter with { InitialDelay = TimeSpan.FromSeconds(5) };

        Assert.Equal(TimeSpan.FromSeconds(4), failure.ResolveDelay(Lease(2, task), store));
        Assert.Equal(TimeSpan.FromSeconds(6), failure.ResolveDelay(Lease(2), store));
        Assert.Equal(TimeSpan.FromSeconds(10), FailOptions.Retry.ResolveDelay(Lease(2), store));
    }

    [Fact]
    public void Resolve_delay_uses_the_lease_attempt()
    {
        Assert.Equal(TimeSpan.FromSeconds(16), FailOptions.Retry.ResolveDelay(Lease(5), NoJitter));
    }

    [Fact]
    public void Fail_result_will_retry_only_when_pending()
    {
        Assert.True(new FailResult(TaskState.Pending, DateTimeOffset.UtcNow).WillRetry);
        Assert.False(new FailResult(TaskState.Failed, null).WillRetry);
        Assert.False(FailOptions.NonRetryable.Retryable);
        Assert.True(FailOptions.Retry.Retryable);
    }

    [Fact]
    public void A_policy_over_the_retry_delay_bound_is_refused_and_its_delay_still_clamped()
    {
        var huge = new RetryPolicy { InitialDelay = TimeSpan.MaxValue, MaxDelay = TimeSpan.MaxValue, Jitter = 0 };

        Assert.Equal(nameof(RetryPolicy.MaxDelay), Assert.Throws<ArgumentOutOfRangeException>(huge.Validate).ParamName);
        // Stored before the bound or carried by a hand-made lease: the delay is clamped, never an overflow.
        Assert.Equal(TaskValidation.MaxRetryDelay, huge.ComputeDelay(1, 0));
        Assert.Equal(TaskValidation.MaxRetryDelay, FailOptions.Retry.ResolveDelay(Lease(3, huge), NoJitter));
        new RetryPolicy { InitialDelay = TaskValidation.MaxRetryDelay, MaxDelay = TaskValidation.MaxRetryDelay }.Validate();
    }
}
