using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Konduit;

/// <summary>
/// A time-bounded grant to work one task. The pair (<see cref="TaskId"/>, <see cref="LeaseToken"/>) identifies
/// the lease: the fencing token strictly increases every time the task is leased, so a stale holder's
/// heartbeat, complete or fail is refused with <see cref="LeaseLostException"/>.
/// </summary>
public sealed record TaskLease
{
    /// <summary>The task.</summary>
    public required Guid TaskId { get; init; }

    /// <summary>The queue the task belongs to.</summary>
    public required string Queue { get; init; }

    /// <summary>The worker that holds the lease.</summary>
    public required string WorkerId { get; init; }

    /// <summary>The fencing token: strictly increasing per task, bumped on every lease.</summary>
    public required long LeaseToken { get; init; }

    /// <summary>1-based attempt number of this lease.</summary>
    public required int Attempt { get; init; }

    /// <summary>The task's maximum number of attempts.</summary>
    public required int MaxAttempts { get; init; }

    /// <summary>When the lease expires by the store's clock unless extended by a heartbeat.</summary>
    public required DateTimeOffset ExpiresAt { get; init; }

    /// <summary>The payload bytes.</summary>
    public required byte[] Payload { get; init; }

    /// <summary>The task's priority.</summary>
    public int Priority { get; init; }

    /// <summary>The task's tenant, if any.</summary>
    public string? Tenant { get; init; }

    /// <summary>The task's headers (never null).</summary>
    public IReadOnlyDictionary<string, string> Headers { get; init; } = EmptyHeaders;

    /// <summary>The task's own retry policy, if it was enqueued with one.</summary>
    public RetryPolicy? RetryPolicy { get; init; }

    /// <summary>When the task was enqueued (store clock).</summary>
    public DateTimeOffset EnqueuedAt { get; init; }

    /// <summary>When the task became due (its run-at, store clock); queue wait = lease time − this.</summary>
    public DateTimeOffset RunAt { get; init; }

    /// <summary>Deserializes the payload as UTF-8 JSON (source-generated metadata).</summary>
    public T? GetPayload<T>(JsonTypeInfo<T> typeInfo) => JsonSerializer.Deserialize(Payload, typeInfo);

    /// <summary>Deserializes the payload as UTF-8 JSON.</summary>
    [System.Diagnostics.CodeAnalysis.RequiresUnreferencedCode("Uses reflection-based JSON serialization; prefer the JsonTypeInfo overload for trimming.")]
    [System.Diagnostics.CodeAnalysis.RequiresDynamicCode("Uses reflection-based JSON serialization; prefer the JsonTypeInfo overload for AOT.")]
    public T? GetPayload<T>(JsonSerializerOptions? options = null) => JsonSerializer.Deserialize<T>(Payload, options);

    internal static readonly IReadOnlyDictionary<string, string> EmptyHeaders = new Dictionary<string, string>();
}

/// <summary>One entry of a batch complete.</summary>
/// <param name="Lease">The lease being completed.</param>
/// <param name="Result">Optional result bytes stored with the task.</param>
public readonly record struct TaskCompletion(TaskLease Lease, byte[]? Result = null);
