using System.Data.Common;
using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Konduit.Hosting;

/// <summary>
/// Enqueues tasks from anywhere in the application (registered as a singleton by <c>AddKonduit</c>). Every enqueue
/// gets a producer span and carries its W3C trace context in the task headers; new tasks are counted in
/// <c>konduit.tasks.enqueued</c>. Typed JSON helpers are in <see cref="KonduitClientExtensions"/>.
/// </summary>
public interface IKonduitClient
{
    /// <summary>The selected store, for management calls (get, query, cancel, redrive, stats).</summary>
    ITaskStore Store { get; }

    /// <summary>Enqueues one task as given (queue settings are not applied to a hand-built request).</summary>
    Task<EnqueueResult> EnqueueAsync(EnqueueRequest request, CancellationToken cancellationToken = default);

    /// <summary>Enqueues a batch atomically (see <see cref="ITaskStore.EnqueueManyAsync"/>).</summary>
    Task<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, CancellationToken cancellationToken = default);

    /// <summary>
    /// Enqueues one task inside the caller's own database transaction (the outbox pattern): the task exists, and
    /// workers see it, only if and when <paramref name="transaction"/> commits. Trace context is added as for
    /// <see cref="EnqueueAsync(EnqueueRequest, CancellationToken)"/>; the Enqueued event, the enqueue metric and the
    /// local wake-up follow once the commit is seen (a rolled-back enqueue gets none of them).
    /// </summary>
    /// <param name="request">The task.</param>
    /// <param name="transaction">An open transaction on a connection to the store's own database (for the Postgres store, an <c>NpgsqlTransaction</c>).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <exception cref="NotSupportedException">The store does not declare <see cref="StoreCapabilities.TransactionalEnqueue"/>.</exception>
    /// <exception cref="ArgumentException">The transaction belongs to another provider, or is already committed or rolled back.</exception>
    Task<EnqueueResult> EnqueueAsync(EnqueueRequest request, DbTransaction transaction, CancellationToken cancellationToken = default);

    /// <summary>
    /// Enqueues a batch inside the caller's own database transaction: all of it commits with the transaction or none
    /// of it does (see <see cref="EnqueueAsync(EnqueueRequest, DbTransaction, CancellationToken)"/>).
    /// </summary>
    /// <param name="requests">The tasks.</param>
    /// <param name="transaction">An open transaction on a connection to the store's own database.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <exception cref="NotSupportedException">The store does not declare <see cref="StoreCapabilities.TransactionalEnqueue"/>.</exception>
    Task<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, DbTransaction transaction, CancellationToken cancellationToken = default);

    /// <summary>
    /// Builds a request for <paramref name="queue"/>: <paramref name="options"/> first, then the queue's configured
    /// defaults (<see cref="KonduitQueueOptions.MaxAttempts"/>), then the contract defaults.
    /// </summary>
    EnqueueRequest CreateRequest(string queue, byte[] payload, EnqueueOptions? options = null);
}

/// <summary>Optional settings for one task enqueued through the typed helpers.</summary>
public sealed record EnqueueOptions
{
    /// <summary>Idempotency key, unique per queue while the task exists.</summary>
    public string? IdempotencyKey { get; init; }

    /// <summary>Higher priorities are leased first.</summary>
    public int Priority { get; init; }

    /// <summary>Earliest run time (UTC). Wins over <see cref="Delay"/>.</summary>
    public DateTimeOffset? RunAt { get; init; }

    /// <summary>Run no earlier than this long from now.</summary>
    public TimeSpan? Delay { get; init; }

    /// <summary>Maximum attempts; null: the queue's configured value, else 10.</summary>
    public int? MaxAttempts { get; init; }

    /// <summary>Tenant.</summary>
    public string? Tenant { get; init; }

    /// <summary>Extra headers (trace context is added automatically).</summary>
    public IReadOnlyDictionary<string, string>? Headers { get; init; }

    /// <summary>The task's own retry policy (wins over the queue's).</summary>
    public RetryPolicy? RetryPolicy { get; init; }
}

/// <summary>Typed JSON payload helpers for <see cref="IKonduitClient"/>.</summary>
public static class KonduitClientExtensions
{
    /// <summary>Enqueues <paramref name="payload"/> as UTF-8 JSON (source-generated metadata).</summary>
    public static Task<EnqueueResult> EnqueueAsync<T>(this IKonduitClient client, string queue, T payload, JsonTypeInfo<T> typeInfo,
        EnqueueOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        return client.EnqueueAsync(client.CreateRequest(queue, JsonSerializer.SerializeToUtf8Bytes(payload, typeInfo), options), cancellationToken);
    }

    /// <summary>Enqueues <paramref name="payload"/> as UTF-8 JSON (reflection-based).</summary>
    [RequiresUnreferencedCode("Uses reflection-based JSON serialization; prefer the JsonTypeInfo overload for trimming.")]
    [RequiresDynamicCode("Uses reflection-based JSON serialization; prefer the JsonTypeInfo overload for AOT.")]
    public static Task<EnqueueResult> EnqueueAsync<T>(this IKonduitClient client, string queue, T payload,
        EnqueueOptions? options = null, JsonSerializerOptions? jsonOptions = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        return client.EnqueueAsync(client.CreateRequest(queue, JsonSerializer.SerializeToUtf8Bytes(payload, jsonOptions), options), cancellationToken);
    }

    /// <summary>
    /// Enqueues <paramref name="payload"/> as UTF-8 JSON inside the caller's transaction (source-generated metadata; see
    /// <see cref="IKonduitClient.EnqueueAsync(EnqueueRequest, DbTransaction, CancellationToken)"/>).
    /// </summary>
    public static Task<EnqueueResult> EnqueueAsync<T>(this IKonduitClient client, string queue, T payload, JsonTypeInfo<T> typeInfo,
        DbTransaction transaction, EnqueueOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        return client.EnqueueAsync(client.CreateRequest(queue, JsonSerializer.SerializeToUtf8Bytes(payload, typeInfo), options), transaction, cancellationToken);
    }

    /// <summary>Enqueues many payloads of one queue atomically, as UTF-8 JSON (source-generated metadata).</summary>
    public static Task<IReadOnlyList<EnqueueResult>> EnqueueManyAsync<T>(this IKonduitClient client, string queue, IEnumerable<T> payloads,
        JsonTypeInfo<T> typeInfo, EnqueueOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(payloads);
        var requests = payloads.Select(p => client.CreateRequest(queue, JsonSerializer.SerializeToUtf8Bytes(p, typeInfo), options)).ToArray();
        return client.EnqueueManyAsync(requests, cancellationToken);
    }
}
