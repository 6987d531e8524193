using System.Collections.ObjectModel;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Data.Sqlite;

namespace Konduit.Sqlite;

/// <summary>
/// The store's column formats, both ways: ids as big-endian UUID bytes, times as UTC ticks, headers as a JSON object,
/// errors as the JSON array the statements append to, a task's retry policy as four columns.
/// </summary>
internal static class SqliteRows
{
    private static readonly IReadOnlyDictionary<string, string> NoHeaders =
        new ReadOnlyDictionary<string, string>(new Dictionary<string, string>());

    public static byte[] Id(Guid id) => id.ToByteArray(bigEndian: true);

    public static long Time(DateTimeOffset time) => time.UtcTicks;

    /// <summary>Adds a named parameter; null becomes SQL NULL.</summary>
    public static void Add(SqliteCommand command, string name, object? value) =>
        command.Parameters.AddWithValue(name, value ?? DBNull.Value);

    /// <summary>A command bound to <paramref name="transaction"/> (Microsoft.Data.Sqlite refuses one that is not).</summary>
    public static SqliteCommand Command(SqliteConnection connection, SqliteTransaction? transaction, string sql)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return command;
    }

    /// <summary>A set of states as the JSON array <c>json_each(@states)</c> reads.</summary>
    public static string States(IEnumerable<TaskState> states) => "[" + string.Join(',', states.Select(s => (int)s)) + "]";

    public static string? WriteHeaders(IReadOnlyDictionary<string, string>? headers)
    {
        if (headers is null || headers.Count == 0) return null;
        var copy = new Dictionary<string, string>(headers.Count, StringComparer.Ordinal);
        foreach (var (name, value) in headers) copy[name] = value;
        return JsonSerializer.Serialize(copy, SqliteJsonContext.Default.DictionaryStringString);
    }

    public static void AddRetryPolicy(SqliteCommand command, RetryPolicy? policy)
    {
        Add(command, "@retry_initial_delay", policy?.InitialDelay.Ticks);
        Add(command, "@retry_max_delay", policy?.MaxDelay.Ticks);
        Add(command, "@retry_multiplier", policy?.Multiplier);
        Add(command, "@retry_jitter", policy?.Jitter);
    }

    /// <summary>The retry policy stored in four columns from <paramref name="first"/> on; null when the task has none.</summary>
    public static RetryPolicy? ReadRetryPolicy(SqliteDataReader reader, int first) => reader.IsDBNull(first)
        ? null
        : new RetryPolicy
        {
            InitialDelay = TimeSpan.FromTicks(reader.GetInt64(first)),
            MaxDelay = TimeSpan.FromTicks(reader.GetInt64(first + 1)),
            Multiplier = reader.GetDouble(first + 2),
            Jitter = reader.GetDouble(first + 3),
        };

    /// <summary>One row of <see cref="SqliteQueries.Lease"/>'s RETURNING list.</summary>
    public static TaskLease ReadLease(SqliteDataReader r) => new()
    {
        TaskId = ReadId(r, 0),
        Queue = r.GetString(1),
        WorkerId = r.GetString(2),
        LeaseToken = r.GetInt64(3),
        Attempt = r.GetInt32(4),
        MaxAttempts = r.GetInt32(5),
        ExpiresAt = ReadTime(r, 6),
        Payload = (byte[])r.GetValue(7),
        Priority = r.GetInt32(8),
        Tenant = r.IsDBNull(9) ? null : r.GetString(9),
        Headers = ReadHeaders(r, 10),
        RetryPolicy = ReadRetryPolicy(r, 11),
        EnqueuedAt = ReadTime(r, 15),
        RunAt = ReadTime(r, 16),
    };

    /// <summary>One row of the snapshot column list (<see cref="SqliteQueries.Get"/>, queries).</summary>
    public static TaskSnapshot ReadSnapshot(SqliteDataReader r)
    {
        var state = (TaskState)r.GetInt32(2);
        return new TaskSnapshot
        {
            Id = ReadId(r, 0),
            Queue = r.GetString(1),
            State = state,
            Priority = r.GetInt32(3),
            Attempts = r.GetInt32(4),
            MaxAttempts = r.GetInt32(5),
            LeaseToken = r.GetInt64(6),
            RunAt = ReadTime(r, 7),
            EnqueuedAt = ReadTime(r, 8),
            UpdatedAt = ReadTime(r, 9),
            StartedAt = ReadOptionalTime(r, 10),
            FinishedAt = ReadOptionalTime(r, 11),
            WorkerId = r.IsDBNull(12) ? null : r.GetString(12),
            LeaseExpiresAt = state == TaskState.Running ? ReadOptionalTime(r, 13) : null,
            IdempotencyKey = r.IsDBNull(14) ? null : r.GetString(14),
            Tenant = r.IsDBNull(15) ? null : r.GetString(15),
            Headers = ReadHeaders(r, 16),
            Payload = (byte[])r.GetValue(17),
            Result = r.IsDBNull(18) ? null : (byte[])r.GetValue(18),
            Errors = ReadErrors(r.GetString(19)),
        };
    }

    /// <summary>One row of the expire statements' RETURNING list.</summary>
    public static ReclaimedTask ReadReclaimed(SqliteDataReader r) => new(
        ReadId(r, 0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), r.GetInt32(3), r.GetInt64(4),
        r.IsDBNull(5) ? null : r.GetString(5), (TaskState)r.GetInt32(6));

    public static Guid ReadId(SqliteDataReader r, int ordinal) => new((byte[])r.GetValue(ordinal), bigEndian: true);

    public static DateTimeOffset ReadTime(SqliteDataReader r, int ordinal) => new(r.GetInt64(ordinal), TimeSpan.Zero);

    public static DateTimeOffset? ReadOptionalTime(SqliteDataReader r, int ordinal) => r.IsDBNull(ordinal) ? null : ReadTime(r, ordinal);

    private static IReadOnlyDictionary<string, string> ReadHeaders(SqliteDataReader r, int ordinal) =>
        r.IsDBNull(ordinal)
            ? NoHeaders
            : new ReadOnlyDictionary<string, string>(
                JsonSerializer.Deserialize(r.GetString(ordinal), SqliteJsonContext.Default.DictionaryStringString) ?? []);

    private static IReadOnlyList<TaskError> ReadErrors(string json)
    {
        using var document = JsonDocument.Parse(json);
        var errors = new List<TaskError>(document.RootElement.GetArrayLength());
        foreach (var entry in document.RootElement.EnumerateArray())
        {
            errors.Add(new TaskError(
                entry.GetProperty("attempt").GetInt32(),
                entry.GetProperty("message").GetString() ?? "",
                new DateTimeOffset(entry.GetProperty("at").GetInt64(), TimeSpan.Zero)));
        }
        return errors;
    }
}

[JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class SqliteJsonContext : JsonSerializerContext;
