using System.Text.Json;
using Npgsql;

namespace Konduit.PostgresRedis;

/// <summary>
/// The hybrid's own SQL, against the Postgres store's schema (<c>tasks</c>, see Konduit.Postgres' migrations):
/// claiming dispatched ids with the same fenced lease update the Postgres store uses, and reading pending ids to
/// rebuild a stream. The schema name is validated as a plain identifier before it gets here.
/// </summary>
internal sealed class HybridQueries
{
    public HybridQueries(string schema)
    {
        var s = "\"" + schema + "\"";
        // The Postgres store's lease statement restricted to the dispatched ids: only rows still pending and due
        // are taken (claimed, terminal or not-yet-due ids fall out here); SKIP LOCKED + the FOR UPDATE re-check
        // keep two claimers of one id from both winning; the update bumps attempts and the fencing token.
        ClaimIds = $"""
            WITH picked AS (
                SELECT id FROM {s}.tasks
                WHERE id = ANY($1) AND queue = $2 AND state = 0 AND run_at <= now()
                ORDER BY priority DESC, run_at, id
                FOR UPDATE SKIP LOCKED
            )
            UPDATE {s}.tasks t
            SET state = 1, attempts = t.attempts + 1, lease_token = t.lease_token + 1, lease_owner = $3,
                lease_expires_at = now() + $4, started_at = coalesce(t.started_at, now()), updated_at = now()
            FROM picked
            WHERE t.id = picked.id
            RETURNING t.id, t.lease_token, t.attempts, t.max_attempts, t.lease_expires_at, t.payload, t.priority,
                      t.tenant, t.headers, t.retry_policy, t.created_at, t.run_at
            """;
        // A stream rebuild: the queue's pending, due ids in lease order.
        PendingIds = $"""
            SELECT id FROM {s}.tasks
            WHERE queue = $1 AND state = 0 AND run_at <= now()
            ORDER BY priority DESC, run_at, id
            LIMIT $2
            """;
    }

    public string ClaimIds { get; }

    public string PendingIds { get; }

    /// <summary>Reads one row of <see cref="ClaimIds"/> (the column order of the Postgres store's lease).</summary>
    public static TaskLease ReadLease(NpgsqlDataReader reader, string queue, string workerId) => new()
    {
        TaskId = reader.GetGuid(0),
        Queue = queue,
        WorkerId = workerId,
        Token = reader.GetInt64(1),
        Attempt = reader.GetInt32(2),
        MaxAttempts = reader.GetInt32(3),
        ExpiresAt = reader.GetFieldValue<DateTimeOffset>(4),
        Payload = reader.GetFieldValue<byte[]>(5),
        Priority = reader.GetInt32(6),
        Tenant = reader.IsDBNull(7) ? null : reader.GetString(7),
        Headers = ReadHeaders(reader.IsDBNull(8) ? null : reader.GetString(8)),
        RetryPolicy = ReadRetryPolicy(reader.IsDBNull(9) ? null : reader.GetString(9)),
        EnqueuedAt = reader.GetFieldValue<DateTimeOffset>(10),
        RunAt = reader.GetFieldValue<DateTimeOffset>(11),
    };

    /// <summary>Contract lease order: priority descending, run-at, id.</summary>
    public static int CompareLeaseOrder(TaskLease a, TaskLease b)
    {
        var c = b.Priority.CompareTo(a.Priority);
        if (c == 0) c = a.RunAt.CompareTo(b.RunAt);
        return c != 0 ? c : a.TaskId.CompareTo(b.TaskId);
    }

    // The Postgres store's jsonb formats: headers are a flat string map; the retry policy is
    // {initialDelayTicks, maxDelayTicks, multiplier, jitter} (see Konduit.Postgres' PostgresJson).
    private static IReadOnlyDictionary<string, string> ReadHeaders(string? json)
    {
        var headers = new Dictionary<string, string>(StringComparer.Ordinal);
        if (json is null) return headers;
        using var doc = JsonDocument.Parse(json);
        foreach (var property in doc.RootElement.EnumerateObject()) headers[property.Name] = property.Value.GetString() ?? "";
        return headers;
    }

    private static RetryPolicy? ReadRetryPolicy(string? json)
    {
        if (json is null) return null;
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) return null;
        return new RetryPolicy
        {
            InitialDelay = TimeSpan.FromTicks(root.GetProperty("initialDelayTicks").GetInt64()),
            MaxDelay = TimeSpan.FromTicks(root.GetProperty("maxDelayTicks").GetInt64()),
            Multiplier = root.GetProperty("multiplier").GetDouble(),
            Jitter = root.GetProperty("jitter").GetDouble(),
        };
    }
}
