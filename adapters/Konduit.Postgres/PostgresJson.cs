using System.Text.Json;
using System.Text.Json.Serialization;

namespace Konduit.Postgres;

/// <summary>
/// The jsonb columns' formats. Stored documents are a persisted format of their own (not a serialization of
/// the public records), so renaming a public property never breaks rows already written.
/// </summary>
internal static class PostgresJson
{
    public static string? WriteHeaders(IReadOnlyDictionary<string, string>? headers)
    {
        if (headers is null || headers.Count == 0) return null;
        var copy = new Dictionary<string, string>(headers.Count, StringComparer.Ordinal);
        foreach (var (name, value) in headers) copy[name] = value;
        return JsonSerializer.Serialize(copy, PostgresJsonContext.Default.DictionaryStringString);
    }

    public static IReadOnlyDictionary<string, string> ReadHeaders(string? json) =>
        json is null
            ? EmptyHeaders
            : JsonSerializer.Deserialize(json, PostgresJsonContext.Default.DictionaryStringString) ?? EmptyHeaders;

    public static string? WriteRetryPolicy(RetryPolicy? policy) => policy is null
        ? null
        : JsonSerializer.Serialize(
            new StoredRetryPolicy(policy.InitialDelay.Ticks, policy.MaxDelay.Ticks, policy.Multiplier, policy.Jitter),
            PostgresJsonContext.Default.StoredRetryPolicy);

    public static RetryPolicy? ReadRetryPolicy(string? json)
    {
        if (json is null) return null;
        var stored = JsonSerializer.Deserialize(json, PostgresJsonContext.Default.StoredRetryPolicy);
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

    public static IReadOnlyList<TaskError> ReadErrors(string json)
    {
        var stored = JsonSerializer.Deserialize(json, PostgresJsonContext.Default.ListStoredError);
        if (stored is null || stored.Count == 0) return [];
        var errors = new TaskError[stored.Count];
        for (var i = 0; i < stored.Count; i++)
            errors[i] = new TaskError(stored[i].Attempt, stored[i].Message, stored[i].At.ToUniversalTime());
        return errors;
    }

    private static readonly IReadOnlyDictionary<string, string> EmptyHeaders =
        new System.Collections.ObjectModel.ReadOnlyDictionary<string, string>(new Dictionary<string, string>());
}

/// <summary>The stored retry policy: exact ticks, so a policy reads back equal to the one enqueued.</summary>
internal sealed record StoredRetryPolicy(
    [property: JsonPropertyName("initialDelayTicks")] long InitialDelayTicks,
    [property: JsonPropertyName("maxDelayTicks")] long MaxDelayTicks,
    [property: JsonPropertyName("multiplier")] double Multiplier,
    [property: JsonPropertyName("jitter")] double Jitter);

/// <summary>One element of the <c>errors</c> array, as written by the fail and reclaim statements.</summary>
internal sealed record StoredError(
    [property: JsonPropertyName("attempt")] int Attempt,
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("at")] DateTimeOffset At);

[JsonSerializable(typeof(Dictionary<string, string>))]
[JsonSerializable(typeof(StoredRetryPolicy))]
[JsonSerializable(typeof(List<StoredError>))]
internal sealed partial class PostgresJsonContext : JsonSerializerContext;
