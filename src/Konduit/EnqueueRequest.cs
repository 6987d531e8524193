using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Konduit;

/// <summary>
/// A task to put into a queue. Validated by the store (<see cref="TaskValidation.ValidateEnqueue"/>);
/// invalid requests throw <see cref="ArgumentException"/> and leave the store unchanged.
/// </summary>
public sealed record EnqueueRequest
{
    /// <summary>Creates a request for <paramref name="queue"/> carrying <paramref name="payload"/>.</summary>
    public EnqueueRequest(string queue, byte[] payload)
    {
        Queue = queue;
        Payload = payload;
    }

    /// <summary>Queue name: 1–128 characters of <c>[A-Za-z0-9._:-]</c>.</summary>
    public string Queue { get; init; }

    /// <summary>Opaque payload bytes; at most the store's <see cref="TaskStoreOptions.MaxPayloadBytes"/>.</summary>
    public byte[] Payload { get; init; }

    /// <summary>
    /// Optional idempotency key (≤ 256 characters, no NUL or unpaired surrogate), unique per queue while the task record exists,
    /// whatever its state. A second enqueue with the same (queue, key) returns the existing id with
    /// <see cref="EnqueueResult.Created"/> = false and changes nothing.
    /// </summary>
    public string? IdempotencyKey { get; init; }

    /// <summary>Higher priorities are leased first. Default 0.</summary>
    public int Priority { get; init; }

    /// <summary>
    /// Earliest time the task may be leased (UTC). Null means now (store clock). Must lie within
    /// [<see cref="TaskValidation.MinRunAt"/>, <see cref="TaskValidation.MaxRunAt"/>] (1970-01-01 to 9999-01-01 UTC).
    /// </summary>
    public DateTimeOffset? RunAt { get; init; }

    /// <summary>How many times the task may be leased before it is dead-lettered. Default 10; must be ≥ 1.</summary>
    public int MaxAttempts { get; init; } = TaskValidation.DefaultMaxAttempts;

    /// <summary>Optional tenant, for queries (≤ 128 characters, no NUL or unpaired surrogate).</summary>
    public string? Tenant { get; init; }

    /// <summary>Optional string headers (trace context, correlation ids). Names non-empty; no NUL or unpaired surrogate in names or values.</summary>
    public IReadOnlyDictionary<string, string>? Headers { get; init; }

    /// <summary>Optional retry policy for this task; overrides the store's default when the task fails.</summary>
    public RetryPolicy? RetryPolicy { get; init; }

    /// <summary>Creates a request whose payload is <paramref name="value"/> as UTF-8 JSON (source-generated metadata).</summary>
    public static EnqueueRequest ForJson<T>(string queue, T value, JsonTypeInfo<T> typeInfo) =>
        new(queue, JsonSerializer.SerializeToUtf8Bytes(value, typeInfo));

    /// <summary>Creates a request whose payload is <paramref name="value"/> as UTF-8 JSON.</summary>
    [System.Diagnostics.CodeAnalysis.RequiresUnreferencedCode("Uses reflection-based JSON serialization; prefer the JsonTypeInfo overload for trimming.")]
    [System.Diagnostics.CodeAnalysis.RequiresDynamicCode("Uses reflection-based JSON serialization; prefer the JsonTypeInfo overload for AOT.")]
    public static EnqueueRequest ForJson<T>(string queue, T value, JsonSerializerOptions? options = null) =>
        new(queue, JsonSerializer.SerializeToUtf8Bytes(value, options));
}

/// <summary>The outcome of an enqueue.</summary>
/// <param name="TaskId">The id of the created task, or of the existing task with the same idempotency key.</param>
/// <param name="Created">False when an existing task with the same (queue, idempotency key) was returned.</param>
public readonly record struct EnqueueResult(Guid TaskId, bool Created);
