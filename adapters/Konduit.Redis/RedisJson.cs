using System.Text.Json;
using System.Text.Json.Serialization;

namespace Konduit.Redis;

/// <summary>
/// The task hash's JSON fields (headers, retry policy): a persisted format of their own, not a serialization of
/// the public records, so renaming a public property never breaks stored tasks.
/// </summary>
internal static class RedisJson
{
    public static readonly IReadOnlyDictionary<string, string> EmptyHeaders =
        new System.Collections.ObjectModel.ReadOnlyDictionary<string, string>(new Dictionary<string, string>());

    public static string WriteHeaders(IReadOnlyDictionary<string, string>? headers)
    {
        if (headers is null || headers.Count == 0) return "";
        var copy = new Dictionary<string, string>(headers.Count, StringComparer.Ordinal);
        foreach (var (name, value) in headers) copy[name] = value;
        return JsonSerializer.Serialize(copy, RedisJsonContext.Default.DictionaryStringString);
    }

    public static IReadOnlyDictionary<string, string> ReadHeaders(string? json) =>
        string.IsNullOrEmpty(json)
            ? EmptyHeaders
            : JsonSerializer.Deserialize(json, RedisJsonContext.Default.DictionaryStringString) is { } headers
                // Read-only: one parsed instance may be shared by the leases of a batch.
                ? new System.Collections.ObjectModel.ReadOnlyDictionary<string, string>(headers)
                : EmptyHeaders;

    public static string WriteRetryPolicy(RetryPolicy? policy) => policy is null
        ? ""
        : JsonSerializer.Serialize(
            new RedisStoredRetryPolicy(policy.InitialDelay.Ticks, policy.MaxDelay.Ticks, policy.Multiplier, policy.Jitter),
            RedisJsonContext.Default.RedisStoredRetryPolicy);

    public static RetryPolicy? ReadRetryPolicy(string? json)
    {
        if (string.IsNullOrEmpty(json)) return null;
        var stored = JsonSerializer.Deserialize(json, RedisJsonContext.Default.RedisStoredRetryPolicy);
        return stored is null
            ? null
            : new RetryPolicy
            {
                InitialDelay = TimeSpan.FromTicks(stored.InitialDelayTicks),
                MaxDelay = TimeSpan.FromTicks(stored.MaxDelayTicks),
                Multiplier = stored.Multiplier,
                Jitter = stored.Jitter,
            };
    }
}

/// <summary>The stored retry policy: exact ticks, so a policy reads back equal to the one enqueued.</summary>
internal sealed record RedisStoredRetryPolicy(
    [property: JsonPropertyName("initialDelayTicks")] long InitialDelayTicks,
    [property: JsonPropertyName("maxDelayTicks")] long MaxDelayTicks,
    [property: JsonPropertyName("multiplier")] double Multiplier,
    [property: JsonPropertyName("jitter")] double Jitter);

[JsonSerializable(typeof(Dictionary<string, string>))]
[JsonSerializable(typeof(RedisStoredRetryPolicy))]
internal sealed partial class RedisJsonContext : JsonSerializerContext;
