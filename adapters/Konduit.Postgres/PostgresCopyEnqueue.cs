using Npgsql;
using NpgsqlTypes;

namespace Konduit.Postgres;

/// <summary>
/// The bulk enqueue path: binary <c>COPY</c> straight into <c>tasks</c> (measured at 1.1–1.3× the array statement's
/// rate for batches of 100–5,000). COPY cannot skip a row whose idempotency key is taken, so only keyless batches
/// whose requests all have, or all lack, a run-at come here; <see cref="PostgresEnqueue"/> decides.
/// </summary>
internal static class PostgresCopyEnqueue
{
    /// <summary>
    /// Whether COPY keeps the batch semantics for <paramref name="requests"/>: no idempotency key, and a run-at on
    /// every request or on none (<paramref name="withRunAt"/>: on every one).
    /// </summary>
    public static bool Applies(IReadOnlyList<EnqueueRequest> requests, out bool withRunAt)
    {
        var runAts = 0;
        foreach (var request in requests)
        {
            if (request.IdempotencyKey is not null)
            {
                withRunAt = false;
                return false;
            }
            if (request.RunAt is not null) runAts++;
        }
        withRunAt = runAts != 0;
        return runAts == 0 || runAts == requests.Count;
    }

    /// <summary>One COPY statement (atomic on its own: no transaction needed); ids in request order.</summary>
    public static async Task<EnqueueResult[]> CopyAsync(
        NpgsqlConnection connection, PostgresQueries sql, IReadOnlyList<EnqueueRequest> requests, bool withRunAt, CancellationToken cancellationToken)
    {
        var results = new EnqueueResult[requests.Count];
        var now = DateTimeOffset.UtcNow;
        var importer = await connection.BeginBinaryImportAsync(withRunAt ? sql.CopyTasksWithRunAt : sql.CopyTasks, cancellationToken).ConfigureAwait(false);
        await using (importer.ConfigureAwait(false))
        {
            for (var i = 0; i < requests.Count; i++)
            {
                var r = requests[i];
                var id = TaskIdGenerator.NewId();
                results[i] = new EnqueueResult(id, true);
                await importer.StartRowAsync(cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync(id, NpgsqlDbType.Uuid, cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync(r.Queue, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync((short)TaskState.Pending, NpgsqlDbType.Smallint, cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync(r.Priority, NpgsqlDbType.Integer, cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync(r.MaxAttempts, NpgsqlDbType.Integer, cancellationToken).ConfigureAwait(false);
                await WriteNullableAsync(importer, r.Tenant, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
                await WriteNullableAsync(importer, PostgresJson.WriteHeaders(r.Headers), NpgsqlDbType.Jsonb, cancellationToken).ConfigureAwait(false);
                await WriteNullableAsync(importer, PostgresJson.WriteRetryPolicy(r.RetryPolicy), NpgsqlDbType.Jsonb, cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync(r.Payload, NpgsqlDbType.Bytea, cancellationToken).ConfigureAwait(false);
                if (withRunAt)
                {
                    await importer.WriteAsync(r.RunAt!.Value.UtcDateTime, NpgsqlDbType.TimestampTz, cancellationToken).ConfigureAwait(false);
                    // `scheduled` by the client's clock (see PostgresQueries.CopyTasksWithRunAt).
                    await importer.WriteAsync(r.RunAt.Value > now, NpgsqlDbType.Boolean, cancellationToken).ConfigureAwait(false);
                }
            }
            await importer.CompleteAsync(cancellationToken).ConfigureAwait(false);
        }
        return results;

        static Task WriteNullableAsync(NpgsqlBinaryImporter importer, string? value, NpgsqlDbType type, CancellationToken cancellationToken) =>
            value is null ? importer.WriteNullAsync(cancellationToken) : importer.WriteAsync(value, type, cancellationToken);
    }
}
