using System.Globalization;
using System.Text;
using System.Text.Json;
using Konduit.Heartbeats;

namespace Konduit.Kafka;

/// <summary>
/// The heartbeat message, version 1 (ADR 009): key = the task id as 36-character lowercase UUID text (UTF-8), so one
/// task's heartbeats share a partition and stay in order; value = one UTF-8 JSON object
/// <c>{"v":1,"task":"&lt;uuid&gt;","token":&lt;int64&gt;,"worker":"&lt;id&gt;","sent":"&lt;ISO-8601 UTC&gt;","ext_ms":&lt;int64&gt;,"released":&lt;bool&gt;}</c>.
/// Plain JSON so any client (kcat, a script) can read the topic; readers ignore fields they do not know.
/// </summary>
internal static class KafkaHeartbeatFormat
{
    public const int Version = 1;

    public static byte[] Key(Guid taskId) => Encoding.UTF8.GetBytes(taskId.ToString("D"));

    public static byte[] Encode(LeaseHeartbeat heartbeat)
    {
        using var buffer = new MemoryStream(160);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("v", Version);
            json.WriteString("task", heartbeat.TaskId.ToString("D"));
            json.WriteNumber("token", heartbeat.LeaseToken);
            json.WriteString("worker", heartbeat.WorkerId);
            json.WriteString("sent", heartbeat.SentAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
            json.WriteNumber("ext_ms", (long)heartbeat.Extension.TotalMilliseconds);
            json.WriteBoolean("released", heartbeat.Released);
            json.WriteEndObject();
        }
        return buffer.ToArray();
    }

    /// <summary>The heartbeat in <paramref name="value"/>, or null when it is not a valid version-1 message.</summary>
    public static LeaseHeartbeat? Decode(ReadOnlySpan<byte> value)
    {
        try
        {
            var reader = new Utf8JsonReader(value);
            using var doc = JsonDocument.ParseValue(ref reader);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("v", out var v) || v.GetInt32() != Version) return null;
            var heartbeat = new LeaseHeartbeat(
                Guid.Parse(root.GetProperty("task").GetString()!),
                root.GetProperty("token").GetInt64(),
                root.GetProperty("worker").GetString()!,
                DateTimeOffset.Parse(root.GetProperty("sent").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal),
                TimeSpan.FromMilliseconds(root.GetProperty("ext_ms").GetInt64()),
                root.TryGetProperty("released", out var released) && released.GetBoolean());
            heartbeat.Validate();
            return heartbeat;
        }
        catch (Exception ex) when (ex is JsonException or FormatException or InvalidOperationException or KeyNotFoundException or ArgumentException or OverflowException)
        {
            return null;
        }
    }
}
