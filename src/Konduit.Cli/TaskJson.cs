using System.Text.Json;

namespace Konduit.Cli;

/// <summary>
/// The CLI's JSON shapes (a contract for scripts, documented in the README): camelCase names, states in lowercase,
/// times in ISO 8601 UTC, null fields written as null so every object of a kind has the same keys.
/// </summary>
internal static class TaskJson
{
    public static void WriteTask(Utf8JsonWriter w, TaskSnapshot t, bool withData)
    {
        w.WriteStartObject();
        w.WriteString("id", t.Id);
        w.WriteString("queue", t.Queue);
        w.WriteString("state", CliOutput.StateName(t.State));
        w.WriteNumber("priority", t.Priority);
        w.WriteNumber("attempts", t.Attempts);
        w.WriteNumber("maxAttempts", t.MaxAttempts);
        w.WriteNumber("leaseToken", t.LeaseToken);
        WriteTime(w, "runAt", t.RunAt);
        WriteTime(w, "enqueuedAt", t.EnqueuedAt);
        WriteTime(w, "updatedAt", t.UpdatedAt);
        WriteTime(w, "startedAt", t.StartedAt);
        WriteTime(w, "finishedAt", t.FinishedAt);
        WriteTime(w, "leaseExpiresAt", t.LeaseExpiresAt);
        WriteNullable(w, "workerId", t.WorkerId);
        WriteNullable(w, "idempotencyKey", t.IdempotencyKey);
        WriteNullable(w, "tenant", t.Tenant);
        WriteNullable(w, "lastError", t.Errors.Count > 0 ? t.Errors[^1].Message : null);
        if (withData)
        {
            w.WriteStartObject("headers");
            foreach (var (name, value) in t.Headers.OrderBy(h => h.Key, StringComparer.Ordinal)) w.WriteString(name, value);
            w.WriteEndObject();
            WriteBytes(w, "payload", t.Payload);
            if (t.Result is null) w.WriteNull("result");
            else WriteBytes(w, "result", t.Result);
            w.WriteStartArray("errors");
            foreach (var error in t.Errors)
            {
                w.WriteStartObject();
                w.WriteNumber("attempt", error.Attempt);
                w.WriteString("message", error.Message);
                WriteTime(w, "occurredAt", error.OccurredAt);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        w.WriteEndObject();
    }

    public static void WriteEvent(Utf8JsonWriter w, TaskEvent e)
    {
        w.WriteStartObject();
        w.WriteString("eventId", e.EventId);
        w.WriteString("kind", e.Kind.ToString().ToLowerInvariant());
        WriteTime(w, "timestamp", e.Timestamp);
        w.WriteNumber("attempt", e.Attempt);
        w.WriteNumber("leaseToken", e.LeaseToken);
        WriteNullable(w, "workerId", e.WorkerId);
        WriteNullable(w, "error", e.Error);
        w.WriteEndObject();
    }

    public static void WriteTime(Utf8JsonWriter w, string name, DateTimeOffset? value)
    {
        if (value is { } v) w.WriteString(name, v.ToUniversalTime());
        else w.WriteNull(name);
    }

    public static void WriteNullable(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null) w.WriteNull(name);
        else w.WriteString(name, value);
    }

    /// <summary>JSON bytes are embedded as JSON; anything else as base64 under <c>&lt;name&gt;Base64</c>.</summary>
    private static void WriteBytes(Utf8JsonWriter w, string name, byte[] bytes)
    {
        if (IsJson(bytes))
        {
            w.WritePropertyName(name);
            using var document = JsonDocument.Parse(bytes);
            document.RootElement.WriteTo(w);
        }
        else
        {
            w.WriteBase64String(name + "Base64", bytes);
        }
    }

    public static bool IsJson(byte[] bytes)
    {
        if (bytes.Length == 0) return false;
        try
        {
            var reader = new Utf8JsonReader(bytes);
            while (reader.Read()) { }
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
