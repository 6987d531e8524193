namespace Konduit;

/// <summary>
/// Exponential backoff with a cap and jitter: the delay before attempt <c>n + 1</c> after attempt <c>n</c>
/// failed is <c>min(MaxDelay, InitialDelay · Multiplier^(n − 1))</c>, reduced by a random fraction of at
/// most <see cref="Jitter"/> so that tasks failing together do not retry together.
/// </summary>
public sealed record RetryPolicy
{
    /// <summary>1 s initial delay, ×2 per attempt, capped at 10 minutes, 20 % jitter.</summary>
    public static RetryPolicy Default { get; } = new();

    /// <summary>Delay after the first failed attempt. Default 1 s; must not be negative.</summary>
    public TimeSpan InitialDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Upper bound on any delay. Default 10 minutes; must be ≥ <see cref="InitialDelay"/> and at most
    /// <see cref="TaskValidation.MaxRetryDelay"/> (365 days).
    /// </summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Growth factor per attempt. Default 2; must be ≥ 1.</summary>
    public double Multiplier { get; init; } = 2.0;

    /// <summary>Fraction (0–1) of the delay that is randomly taken off. Default 0.2.</summary>
    public double Jitter { get; init; } = 0.2;

    /// <summary>Throws <see cref="ArgumentException"/> when the policy's values are out of range.</summary>
    public void Validate()
    {
        if (InitialDelay < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(InitialDelay), InitialDelay, "RetryPolicy.InitialDelay must not be negative.");
        if (MaxDelay < InitialDelay)
            throw new ArgumentOutOfRangeException(nameof(MaxDelay), MaxDelay, "RetryPolicy.MaxDelay must be at least InitialDelay.");
        // Bounds every computed delay, so the store clock plus a delay is always an instant stores can read back.
        if (MaxDelay > TaskValidation.MaxRetryDelay)
            throw new ArgumentOutOfRangeException(nameof(MaxDelay), MaxDelay, $"RetryPolicy.MaxDelay must be at most {TaskValidation.MaxRetryDelay.TotalDays:0} days.");
        if (!(Multiplier >= 1.0) || double.IsInfinity(Multiplier))
            throw new ArgumentOutOfRangeException(nameof(Multiplier), Multiplier, "RetryPolicy.Multiplier must be a finite number ≥ 1.");
        if (!(Jitter >= 0.0 && Jitter <= 1.0))
            throw new ArgumentOutOfRangeException(nameof(Jitter), Jitter, "RetryPolicy.Jitter must be between 0 and 1.");
    }

    /// <summary>The delay after failed attempt <paramref name="attempt"/> (1-based), using <see cref="Random.Shared"/> for jitter.</summary>
    public TimeSpan ComputeDelay(int attempt) => ComputeDelay(attempt, Random.Shared.NextDouble());

    /// <summary>The delay after failed attempt <paramref name="attempt"/> (1-based) for a given jitter sample in [0, 1).</summary>
    public TimeSpan ComputeDelay(int attempt, double jitterSample)
    {
        var exponent = Math.Max(0, attempt - 1);
        var raw = InitialDelay.TotalMilliseconds * Math.Pow(Multiplier, exponent);
        var capped = double.IsFinite(raw) ? Math.Min(raw, MaxDelay.TotalMilliseconds) : MaxDelay.TotalMilliseconds;
        // Clamped as well as validated: a policy stored before the bound, or carried by a hand-made lease, still
        // yields a delay the store clock can be moved by and read back (issue 13).
        capped = Math.Min(capped, TaskValidation.MaxRetryDelay.TotalMilliseconds);
        var jittered = capped * (1.0 - (Jitter * Math.Clamp(jitterSample, 0.0, 1.0)));
        return TimeSpan.FromMilliseconds(jittered);
    }
}

/// <summary>How a failure is treated by <see cref="ITaskStore.FailAsync"/>.</summary>
public sealed record FailOptions
{
    /// <summary>Retry according to the policy (the default).</summary>
    public static FailOptions Retry { get; } = new();

    /// <summary>Dead-letter at once, whatever attempts remain.</summary>
    public static FailOptions NonRetryable { get; } = new() { Retryable = false };

    /// <summary>False sends the task straight to <see cref="TaskState.Failed"/>.</summary>
    public bool Retryable { get; init; } = true;

    /// <summary>An exact delay before the retry; overrides every policy. From zero to <see cref="TaskValidation.MaxRetryDelay"/> (365 days).</summary>
    public TimeSpan? RetryDelay { get; init; }

    /// <summary>
    /// A policy (e.g. the queue's, from configuration) that overrides the store default. The most specific
    /// setting wins: <see cref="RetryDelay"/>, then the task's own <see cref="EnqueueRequest.RetryPolicy"/>,
    /// then this, then the store's default.
    /// </summary>
    public RetryPolicy? RetryPolicy { get; init; }

    /// <summary>Picks the delay for a failed <paramref name="lease"/> following the documented precedence.</summary>
    public TimeSpan ResolveDelay(TaskLease lease, RetryPolicy storeDefault)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ArgumentNullException.ThrowIfNull(storeDefault);
        if (RetryDelay is { } exact) return exact;
        var policy = lease.RetryPolicy ?? RetryPolicy ?? storeDefault;
        return policy.ComputeDelay(lease.Attempt);
    }
}

/// <summary>What <see cref="ITaskStore.FailAsync"/> did with the task.</summary>
/// <param name="State"><see cref="TaskState.Pending"/> when it will be retried, <see cref="TaskState.Failed"/> when dead-lettered.</param>
/// <param name="NextRunAt">When the retry becomes due (store clock); null when dead-lettered.</param>
public readonly record struct FailResult(TaskState State, DateTimeOffset? NextRunAt)
{
    /// <summary>True when the task went back to Pending for another attempt.</summary>
    public bool WillRetry => State == TaskState.Pending;
}
