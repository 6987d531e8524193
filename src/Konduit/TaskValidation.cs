using System.Buffers;

namespace Konduit;

/// <summary>
/// The argument rules of the contract, shared by every store so that all of them reject the same input with
/// the same exception types: <see cref="ArgumentNullException"/>, <see cref="ArgumentOutOfRangeException"/>
/// or <see cref="ArgumentException"/>, each naming the offending parameter. Stores call these before touching
/// their backend, so bad input leaves the store unchanged.
/// </summary>
public static class TaskValidation
{
    /// <summary>Longest queue name.</summary>
    public const int MaxQueueLength = 128;
    /// <summary>Longest idempotency key.</summary>
    public const int MaxIdempotencyKeyLength = 256;
    /// <summary>Longest tenant and worker id.</summary>
    public const int MaxNameLength = 128;
    /// <summary>Default payload limit (1 MiB).</summary>
    public const int DefaultMaxPayloadBytes = 1024 * 1024;
    /// <summary>Default maximum attempts.</summary>
    public const int DefaultMaxAttempts = 10;
    /// <summary>Most leases one call may ask for.</summary>
    public const int MaxLeaseCount = 1000;
    /// <summary>Most requests in one <see cref="ITaskStore.EnqueueManyAsync"/>.</summary>
    public const int MaxBatchSize = 10_000;
    /// <summary>Longest lease or heartbeat extension.</summary>
    public static readonly TimeSpan MaxLeaseDuration = TimeSpan.FromDays(1);
    /// <summary>Longest stored error text; longer texts are truncated, not rejected.</summary>
    public const int MaxErrorLength = 8 * 1024;
    /// <summary>Largest query page.</summary>
    public const int MaxPageSize = 1000;

    private static readonly SearchValues<char> QueueChars =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-");

    /// <summary>Queue: 1–128 characters of <c>[A-Za-z0-9._:-]</c>.</summary>
    public static void ValidateQueue(string? queue, string paramName = "queue")
    {
        ArgumentNullException.ThrowIfNull(queue, paramName);
        if (queue.Length is 0 or > MaxQueueLength)
            throw new ArgumentException($"Queue name must be 1–{MaxQueueLength} characters; got {queue.Length}.", paramName);
        var bad = queue.AsSpan().IndexOfAnyExcept(QueueChars);
        if (bad >= 0)
            throw new ArgumentException($"Queue name '{queue}' has an invalid character at position {bad}; allowed: letters, digits and . _ : -", paramName);
    }

    /// <summary>Every rule on an <see cref="EnqueueRequest"/>.</summary>
    public static void ValidateEnqueue(EnqueueRequest? request, int maxPayloadBytes, string paramName = "request")
    {
        ArgumentNullException.ThrowIfNull(request, paramName);
        ValidateQueue(request.Queue, nameof(EnqueueRequest.Queue));
        ArgumentNullException.ThrowIfNull(request.Payload, nameof(EnqueueRequest.Payload));
        if (request.Payload.Length > maxPayloadBytes)
            throw new ArgumentException(
                $"Payload is {request.Payload.Length} bytes; the store's limit is {maxPayloadBytes} bytes (TaskStoreOptions.MaxPayloadBytes).",
                nameof(EnqueueRequest.Payload));
        if (request.IdempotencyKey is { } key && key.Length is 0 or > MaxIdempotencyKeyLength)
            throw new ArgumentException($"Idempotency key must be 1–{MaxIdempotencyKeyLength} characters; got {key.Length}.", nameof(EnqueueRequest.IdempotencyKey));
        if (request.MaxAttempts < 1)
            throw new ArgumentOutOfRangeException(nameof(EnqueueRequest.MaxAttempts), request.MaxAttempts, "MaxAttempts must be at least 1.");
        if (request.Tenant is { } tenant && tenant.Length is 0 or > MaxNameLength)
            throw new ArgumentException($"Tenant must be 1–{MaxNameLength} characters; got {tenant.Length}.", nameof(EnqueueRequest.Tenant));
        if (request.Headers is { } headers)
        {
            foreach (var (name, value) in headers)
            {
                if (string.IsNullOrEmpty(name))
                    throw new ArgumentException("Header names must not be empty.", nameof(EnqueueRequest.Headers));
                if (value is null)
                    throw new ArgumentException($"Header '{name}' has a null value.", nameof(EnqueueRequest.Headers));
            }
        }
        request.RetryPolicy?.Validate();
    }

    /// <summary>A batch: not null, at most 10,000 requests, each valid. Validates all before any is stored. An empty batch is valid (a no-op).</summary>
    public static void ValidateEnqueueBatch(IReadOnlyList<EnqueueRequest>? requests, int maxPayloadBytes, string paramName = "requests")
    {
        ArgumentNullException.ThrowIfNull(requests, paramName);
        if (requests.Count > MaxBatchSize)
            throw new ArgumentOutOfRangeException(paramName, requests.Count, $"A batch holds at most {MaxBatchSize} requests.");
        for (var i = 0; i < requests.Count; i++)
        {
            try
            {
                ValidateEnqueue(requests[i], maxPayloadBytes);
            }
            catch (ArgumentException ex)
            {
                // One bad request rejects the whole batch before anything is stored; say which one.
                throw new ArgumentException($"{paramName}[{i}] is invalid: {ex.Message}", paramName, ex);
            }
        }
    }

    /// <summary>Lease arguments: queue, worker id (1–128 chars), count (1–1000), duration (positive, ≤ 1 day).</summary>
    public static void ValidateLease(string? queue, string? workerId, int maxCount, TimeSpan leaseDuration)
    {
        ValidateQueue(queue);
        ArgumentNullException.ThrowIfNull(workerId);
        if (workerId.Length is 0 or > MaxNameLength)
            throw new ArgumentException($"Worker id must be 1–{MaxNameLength} characters; got {workerId.Length}.", nameof(workerId));
        if (maxCount is < 1 or > MaxLeaseCount)
            throw new ArgumentOutOfRangeException(nameof(maxCount), maxCount, $"maxCount must be between 1 and {MaxLeaseCount}.");
        ValidateDuration(leaseDuration, nameof(leaseDuration));
    }

    /// <summary>A lease or heartbeat duration: positive and at most one day.</summary>
    public static void ValidateDuration(TimeSpan duration, string paramName)
    {
        if (duration <= TimeSpan.Zero || duration > MaxLeaseDuration)
            throw new ArgumentOutOfRangeException(paramName, duration, $"{paramName} must be positive and at most {MaxLeaseDuration}.");
    }

    /// <summary>A fail call: lease and error not null, explicit delay not negative. Returns the error text, truncated.</summary>
    public static string ValidateFail(TaskLease? lease, string? error, FailOptions? options)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ArgumentNullException.ThrowIfNull(error);
        if (options?.RetryDelay is { } delay && (delay < TimeSpan.Zero || delay > MaxLeaseDuration * 366))
            throw new ArgumentOutOfRangeException(nameof(options), delay, "FailOptions.RetryDelay must not be negative or absurdly large.");
        options?.RetryPolicy?.Validate();
        return error.Length <= MaxErrorLength ? error : error[..MaxErrorLength];
    }

    /// <summary>A <see cref="ITaskStore.WaitForWorkAsync"/> timeout: zero or positive, or <see cref="Timeout.InfiniteTimeSpan"/>.</summary>
    public static void ValidateWaitTimeout(TimeSpan timeout, string paramName = "timeout")
    {
        if (timeout < TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
            throw new ArgumentOutOfRangeException(paramName, timeout, "The wait timeout must not be negative (Timeout.InfiniteTimeSpan waits without a limit).");
    }

    /// <summary>A batch complete: not null, every entry carries a lease.</summary>
    public static void ValidateCompletions(IReadOnlyList<TaskCompletion>? completions, string paramName = "completions")
    {
        ArgumentNullException.ThrowIfNull(completions, paramName);
        for (var i = 0; i < completions.Count; i++)
        {
            if (completions[i].Lease is null)
                throw new ArgumentException($"{paramName}[{i}] has no lease.", paramName);
        }
    }

    /// <summary>A batch heartbeat: not null, no null entry, a valid extension.</summary>
    public static void ValidateHeartbeats(IReadOnlyList<TaskLease>? leases, TimeSpan extension, string paramName = "leases")
    {
        ArgumentNullException.ThrowIfNull(leases, paramName);
        for (var i = 0; i < leases.Count; i++)
        {
            if (leases[i] is null)
                throw new ArgumentException($"{paramName}[{i}] is null.", paramName);
        }
        ValidateDuration(extension, nameof(extension));
    }

    /// <summary>Query filter and page.</summary>
    public static void ValidateQuery(TaskQuery? filter, PageRequest? page)
    {
        ArgumentNullException.ThrowIfNull(filter);
        if (filter.Queue is not null) ValidateQueue(filter.Queue, nameof(TaskQuery.Queue));
        if (filter.EnqueuedFrom is { } from && filter.EnqueuedTo is { } to && to < from)
            throw new ArgumentException("TaskQuery.EnqueuedTo must not be earlier than EnqueuedFrom.", nameof(filter));
        if (page is not null && page.Limit is < 1 or > MaxPageSize)
            throw new ArgumentOutOfRangeException(nameof(page), page.Limit, $"PageRequest.Limit must be between 1 and {MaxPageSize}.");
    }

    /// <summary>Purge arguments: age not negative, only terminal states. Returns the states to purge (terminal ones by default).</summary>
    public static IReadOnlyCollection<TaskState> ValidatePurge(TimeSpan olderThan, IReadOnlyCollection<TaskState>? states, string? queue)
    {
        if (olderThan < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(olderThan), olderThan, "olderThan must not be negative.");
        if (queue is not null) ValidateQueue(queue);
        if (states is null || states.Count == 0) return TaskStateExtensions.TerminalStates;
        foreach (var state in states)
        {
            if (!state.IsTerminal())
                throw new ArgumentException($"Only terminal tasks can be purged (Succeeded, Failed, Canceled); got {state}.", nameof(states));
        }
        return states;
    }
}
