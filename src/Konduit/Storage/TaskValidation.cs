using System.Buffers;

namespace Konduit.Storage;

/// <summary>
/// The argument rules of the contract, shared by every store so that all of them reject the same input with
/// the same exception types: <see cref="ArgumentNullException"/>, <see cref="ArgumentOutOfRangeException"/>
/// or <see cref="ArgumentException"/>, each naming the offending parameter. Stores call these before touching
/// their backend, so bad input leaves the store unchanged.
/// </summary>
/// <remarks>
/// <para><b>Time.</b> Every instant and duration a caller passes is bounded, so that the store clock plus any of
/// them is an instant every store can hold and read back (issue 13): run-at within
/// [<see cref="MinRunAt"/>, <see cref="MaxRunAt"/>], leases and heartbeat extensions up to
/// <see cref="MaxLeaseDuration"/>, retry delays up to <see cref="MaxRetryDelay"/>, purge ages up to
/// <see cref="MaxPurgeAge"/>, wait timeouts up to <see cref="MaxWaitTimeout"/>.</para>
/// <para><b>Text.</b> NUL characters and unpaired UTF-16 surrogates cannot be held alike by every store (PostgreSQL
/// refuses NUL, a lossy UTF-8 encoder turns a lone surrogate into U+FFFD so two keys would collapse). They are
/// refused, naming the field, in idempotency keys, tenants (also as a query filter), header names and values and
/// worker ids; queue names allow ASCII only. An error text is never refused for its content: see
/// <see cref="SanitizeErrorText"/>.</para>
/// </remarks>
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
    /// <summary>Most tasks one <see cref="ITaskStore.CancelManyAsync"/> or <see cref="ITaskStore.RedriveManyAsync"/> changes.</summary>
    public const int MaxBulkCount = 1000;

    /// <summary>
    /// Earliest accepted <see cref="EnqueueRequest.RunAt"/>: the Unix epoch. Every store holds instants from here
    /// to <see cref="MaxRunAt"/> exactly (Redis keeps Unix microseconds).
    /// </summary>
    public static readonly DateTimeOffset MinRunAt = DateTimeOffset.UnixEpoch;

    /// <summary>
    /// Latest accepted <see cref="EnqueueRequest.RunAt"/>: 9999-01-01T00:00:00Z, a year short of
    /// <see cref="DateTimeOffset.MaxValue"/>, so that no store's conversion (microseconds, rounding) can carry a
    /// stored run-at past what <see cref="DateTimeOffset"/> reads back.
    /// </summary>
    public static readonly DateTimeOffset MaxRunAt = new(9999, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>
    /// Longest retry delay (365 days): the bound on <see cref="FailOptions.RetryDelay"/> and on
    /// <see cref="RetryPolicy.MaxDelay"/> (hence on every delay a policy computes), so that the store clock plus
    /// any delay is an instant every store can hold and read back.
    /// </summary>
    public static readonly TimeSpan MaxRetryDelay = TimeSpan.FromDays(365);

    /// <summary>Longest <see cref="ITaskStore.PurgeAsync"/> age (36,525 days, about 100 years).</summary>
    public static readonly TimeSpan MaxPurgeAge = TimeSpan.FromDays(36_525);

    /// <summary>
    /// Longest finite <see cref="ITaskStore.WaitForWorkAsync"/> timeout (one day); <see cref="Timeout.InfiniteTimeSpan"/>
    /// waits without a limit.
    /// </summary>
    public static readonly TimeSpan MaxWaitTimeout = TimeSpan.FromDays(1);

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
        if (request.IdempotencyKey is { } key)
        {
            if (key.Length is 0 or > MaxIdempotencyKeyLength)
                throw new ArgumentException($"Idempotency key must be 1–{MaxIdempotencyKeyLength} characters; got {key.Length}.", nameof(EnqueueRequest.IdempotencyKey));
            ValidateText(key, nameof(EnqueueRequest.IdempotencyKey));
        }
        if (request.RunAt is { } runAt && (runAt < MinRunAt || runAt > MaxRunAt))
            throw new ArgumentOutOfRangeException(nameof(EnqueueRequest.RunAt), runAt, $"RunAt must be between {MinRunAt:O} and {MaxRunAt:O}.");
        if (request.MaxAttempts < 1)
            throw new ArgumentOutOfRangeException(nameof(EnqueueRequest.MaxAttempts), request.MaxAttempts, "MaxAttempts must be at least 1.");
        if (request.Tenant is { } tenant)
        {
            if (tenant.Length is 0 or > MaxNameLength)
                throw new ArgumentException($"Tenant must be 1–{MaxNameLength} characters; got {tenant.Length}.", nameof(EnqueueRequest.Tenant));
            ValidateText(tenant, nameof(EnqueueRequest.Tenant));
        }
        if (request.Headers is { } headers)
        {
            foreach (var (name, value) in headers)
            {
                if (string.IsNullOrEmpty(name))
                    throw new ArgumentException("Header names must not be empty.", nameof(EnqueueRequest.Headers));
                if (value is null)
                    throw new ArgumentException($"Header '{name}' has a null value.", nameof(EnqueueRequest.Headers));
                ValidateText(name, nameof(EnqueueRequest.Headers), "Header name");
                ValidateText(value, nameof(EnqueueRequest.Headers), "Header value");
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
        ValidateText(workerId, nameof(workerId), "Worker id");
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

    /// <summary>
    /// A fail call: lease and error not null, an explicit delay from zero to <see cref="MaxRetryDelay"/>, every
    /// options' policy valid. Returns the error text as it is stored:
    /// <see cref="SanitizeErrorText"/>.
    /// </summary>
    public static string ValidateFail(TaskLease? lease, string? error, FailOptions? options)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ArgumentNullException.ThrowIfNull(error);
        if (options?.RetryDelay is { } delay && (delay < TimeSpan.Zero || delay > MaxRetryDelay))
            throw new ArgumentOutOfRangeException(nameof(FailOptions.RetryDelay), delay, $"FailOptions.RetryDelay must be between zero and {MaxRetryDelay.TotalDays:0} days.");
        options?.RetryPolicy?.Validate();
        return SanitizeErrorText(error);
    }

    /// <summary>
    /// The error text as every store records it: each NUL and unpaired UTF-16 surrogate replaced with U+FFFD, then
    /// cut to <see cref="MaxErrorLength"/> characters, never between the two halves of a surrogate pair (a pair that
    /// would straddle the limit is dropped whole). A failure is never refused over its message (issue 13).
    /// </summary>
    public static string SanitizeErrorText(string error)
    {
        ArgumentNullException.ThrowIfNull(error);
        var length = Math.Min(error.Length, MaxErrorLength);
        if (length < error.Length && char.IsHighSurrogate(error[length - 1]) && char.IsLowSurrogate(error[length])) length--;
        if (IndexOfUnstorableChar(error.AsSpan(0, length)) < 0) return length == error.Length ? error : error[..length];
        var chars = error.ToCharArray(0, length);
        for (var i = 0; i < chars.Length; i++)
        {
            if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1])) i++;
            else if (chars[i] == '\0' || char.IsSurrogate(chars[i])) chars[i] = '\uFFFD';
        }
        return new string(chars);
    }

    /// <summary>The position of the first NUL character or unpaired UTF-16 surrogate in <paramref name="text"/>; -1 when there is none.</summary>
    public static int IndexOfUnstorableChar(ReadOnlySpan<char> text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) i++;
            else if (c == '\0' || char.IsSurrogate(c)) return i;
        }
        return -1;
    }

    private static void ValidateText(string value, string paramName, string? what = null)
    {
        var bad = IndexOfUnstorableChar(value);
        if (bad >= 0)
        {
            var found = value[bad] == '\0' ? "a NUL character" : $"an unpaired UTF-16 surrogate (U+{(int)value[bad]:X4})";
            throw new ArgumentException(
                $"{what ?? paramName} has {found} at position {bad}; NUL characters and unpaired surrogates cannot be stored.", paramName);
        }
    }

    /// <summary>A <see cref="ITaskStore.WaitForWorkAsync"/> timeout: from zero to <see cref="MaxWaitTimeout"/>, or <see cref="Timeout.InfiniteTimeSpan"/>.</summary>
    public static void ValidateWaitTimeout(TimeSpan timeout, string paramName = "timeout")
    {
        if (timeout == Timeout.InfiniteTimeSpan) return;
        if (timeout < TimeSpan.Zero || timeout > MaxWaitTimeout)
            throw new ArgumentOutOfRangeException(paramName, timeout,
                $"The wait timeout must be between zero and {MaxWaitTimeout} (Timeout.InfiniteTimeSpan waits without a limit).");
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

    /// <summary>A complete-and-lease: the completion carries a lease, and the lease half's arguments are those of
    /// <see cref="ValidateLease"/> over the completed lease's queue.</summary>
    public static void ValidateCompleteAndLease(TaskCompletion completion, string? workerId, int maxCount, TimeSpan leaseDuration)
    {
        if (completion.Lease is null) throw new ArgumentException("The completion has no lease.", nameof(completion));
        ValidateLease(completion.Lease.Queue, workerId, maxCount, leaseDuration);
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

    /// <summary>
    /// An expire-lease call (<see cref="ITaskStore.ExpireLeaseAsync"/>): a non-empty task id and a positive lease token
    /// (every store's tokens start above zero, so zero or less names no lease that could ever exist).
    /// </summary>
    public static void ValidateExpireLease(Guid taskId, long leaseToken)
    {
        if (taskId == Guid.Empty)
            throw new ArgumentException("The task id must not be empty.", nameof(taskId));
        if (leaseToken <= 0)
            throw new ArgumentOutOfRangeException(nameof(leaseToken), leaseToken, "The lease token must be positive.");
    }

    /// <summary>Query filter and page.</summary>
    public static void ValidateQuery(TaskQuery? filter, PageRequest? page)
    {
        ArgumentNullException.ThrowIfNull(filter);
        if (filter.Queue is not null) ValidateQueue(filter.Queue, nameof(TaskQuery.Queue));
        if (filter.Tenant is not null) ValidateText(filter.Tenant, nameof(TaskQuery.Tenant), "TaskQuery.Tenant");
        if (filter.EnqueuedFrom is { } from && filter.EnqueuedTo is { } to && to < from)
            throw new ArgumentException("TaskQuery.EnqueuedTo must not be earlier than EnqueuedFrom.", nameof(filter));
        if (filter.FinishedFrom is { } finishedFrom && filter.FinishedTo is { } finishedTo && finishedTo < finishedFrom)
            throw new ArgumentException("TaskQuery.FinishedTo must not be earlier than FinishedFrom.", nameof(filter));
        if (page is not null && page.Limit is < 1 or > MaxPageSize)
            throw new ArgumentOutOfRangeException(nameof(page), page.Limit, $"PageRequest.Limit must be between 1 and {MaxPageSize}.");
    }

    /// <summary>
    /// Bulk cancel and redrive: the filter as <see cref="ValidateQuery"/> checks it, and <paramref name="maxCount"/>
    /// from 1 to <see cref="MaxBulkCount"/>.
    /// </summary>
    public static void ValidateBulk(TaskQuery? filter, int maxCount)
    {
        ValidateQuery(filter, null);
        if (maxCount is < 1 or > MaxBulkCount)
            throw new ArgumentOutOfRangeException(nameof(maxCount), maxCount, $"maxCount must be between 1 and {MaxBulkCount}.");
    }

    /// <summary>
    /// The states a bulk operation acts on: <paramref name="eligible"/>, narrowed to the filter's
    /// <see cref="TaskQuery.States"/> when it names any (empty when they have none in common).
    /// </summary>
    public static IReadOnlyCollection<TaskState> BulkStates(TaskQuery filter, IReadOnlyCollection<TaskState> eligible)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentNullException.ThrowIfNull(eligible);
        return filter.States is { Count: > 0 } states ? [.. eligible.Where(states.Contains)] : eligible;
    }

    /// <summary>Purge arguments: age from zero to <see cref="MaxPurgeAge"/>, only terminal states. Returns the states to purge (terminal ones by default).</summary>
    public static IReadOnlyCollection<TaskState> ValidatePurge(TimeSpan olderThan, IReadOnlyCollection<TaskState>? states, string? queue)
    {
        if (olderThan < TimeSpan.Zero || olderThan > MaxPurgeAge)
            throw new ArgumentOutOfRangeException(nameof(olderThan), olderThan, $"olderThan must be between zero and {MaxPurgeAge.TotalDays:0} days.");
        if (queue is not null) ValidateQueue(queue);
        if (states is null || states.Count == 0) return TaskStateExtensions.TerminalStates;
        foreach (var state in states)
        {
            if (!state.IsTerminal())
                throw new ArgumentException($"Only terminal tasks can be purged (Succeeded, Failed, Canceled); got {state}.", nameof(states));
        }
        return states;
    }

    /// <summary>The one error for a transactional enqueue on a store that does not declare <see cref="StoreCapabilities.TransactionalEnqueue"/>.</summary>
    /// <param name="store">The store that was asked.</param>
    public static NotSupportedException TransactionalEnqueueNotSupported(ITaskStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        return new NotSupportedException(
            $"The {store.Name} store does not declare {nameof(StoreCapabilities.TransactionalEnqueue)}: it cannot enqueue inside a caller's transaction. " +
            "Enqueue after the commit, or choose a store that declares it (the README's store table lists them).");
    }
}
