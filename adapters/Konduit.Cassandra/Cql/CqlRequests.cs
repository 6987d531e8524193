using System.Text;

namespace Konduit.Cassandra.Cql;

/// <summary>The &lt;query_parameters&gt; of QUERY and EXECUTE (§4.1.4).</summary>
internal sealed record CqlQueryParameters(
    CqlConsistency Consistency,
    IReadOnlyList<CqlValue> Values,
    int? PageSize = null,
    byte[]? PagingState = null,
    CqlConsistency? SerialConsistency = null,
    long? DefaultTimestamp = null,
    bool SkipMetadata = false);

/// <summary>One statement of a BATCH body: unprepared text or a prepared id, with its values.</summary>
internal sealed record CqlBatchEntry(string? Cql, byte[]? PreparedId, IReadOnlyList<CqlValue> Values);

/// <summary>Builds request bodies (§4.1). Frames are built by <see cref="CqlFrame.Encode"/>.</summary>
internal static class CqlRequests
{
    // Query flags (§4.1.4).
    public const byte FlagValues = 0x01;
    public const byte FlagSkipMetadata = 0x02;
    public const byte FlagPageSize = 0x04;
    public const byte FlagPagingState = 0x08;
    public const byte FlagSerialConsistency = 0x10;
    public const byte FlagDefaultTimestamp = 0x20;

    public const string CqlVersion = "3.0.0";

    public static byte[] Startup(IReadOnlyCollection<KeyValuePair<string, string>> options)
    {
        var writer = new CqlWriter();
        writer.WriteStringMap(options);
        return writer.ToArray();
    }

    public static byte[] Startup() => Startup([new("CQL_VERSION", CqlVersion)]);

    public static byte[] AuthResponse(byte[]? token)
    {
        var writer = new CqlWriter();
        writer.WriteBytes(token);
        return writer.ToArray();
    }

    /// <summary>The SASL PLAIN initial response PasswordAuthenticator expects: NUL user NUL password.</summary>
    public static byte[] PlainSaslToken(string username, string password)
    {
        var user = Encoding.UTF8.GetBytes(username);
        var pass = Encoding.UTF8.GetBytes(password);
        var token = new byte[user.Length + pass.Length + 2];
        user.CopyTo(token, 1);
        pass.CopyTo(token, user.Length + 2);
        return token;
    }

    public static byte[] Options() => [];

    public static byte[] Register(IReadOnlyCollection<string> eventTypes)
    {
        var writer = new CqlWriter();
        writer.WriteStringList(eventTypes);
        return writer.ToArray();
    }

    public static byte[] Query(string cql, CqlQueryParameters parameters, int version)
    {
        var writer = new CqlWriter(cql.Length + 64);
        writer.WriteLongString(cql);
        WriteParameters(writer, parameters, version);
        return writer.ToArray();
    }

    public static byte[] Prepare(string cql)
    {
        var writer = new CqlWriter(cql.Length + 8);
        writer.WriteLongString(cql);
        return writer.ToArray();
    }

    public static byte[] Execute(ReadOnlySpan<byte> preparedId, CqlQueryParameters parameters, int version)
    {
        var writer = new CqlWriter();
        writer.WriteShortBytes(preparedId);
        WriteParameters(writer, parameters, version);
        return writer.ToArray();
    }

    public static byte[] Batch(
        CqlBatchType type,
        IReadOnlyList<CqlBatchEntry> entries,
        CqlConsistency consistency,
        CqlConsistency? serialConsistency,
        long? defaultTimestamp,
        int version)
    {
        var writer = new CqlWriter();
        writer.WriteByte((byte)type);
        writer.WriteShort(entries.Count);
        foreach (var entry in entries)
        {
            if (entry.PreparedId is { } id)
            {
                writer.WriteByte(1);
                writer.WriteShortBytes(id);
            }
            else
            {
                writer.WriteByte(0);
                writer.WriteLongString(entry.Cql ?? throw new ArgumentException("A batch entry needs CQL or a prepared id.", nameof(entries)));
            }
            writer.WriteShort(entry.Values.Count);
            foreach (var value in entry.Values)
                WriteValue(writer, value, version);
        }
        writer.WriteConsistency(consistency);
        byte flags = 0;
        if (serialConsistency is not null)
            flags |= FlagSerialConsistency;
        if (defaultTimestamp is not null)
            flags |= FlagDefaultTimestamp;
        writer.WriteByte(flags);
        if (serialConsistency is { } serial)
            writer.WriteConsistency(serial);
        if (defaultTimestamp is { } timestamp)
            writer.WriteLong(timestamp);
        return writer.ToArray();
    }

    private static void WriteParameters(CqlWriter writer, CqlQueryParameters parameters, int version)
    {
        writer.WriteConsistency(parameters.Consistency);
        byte flags = 0;
        if (parameters.Values.Count > 0)
            flags |= FlagValues;
        if (parameters.SkipMetadata)
            flags |= FlagSkipMetadata;
        if (parameters.PageSize is not null)
            flags |= FlagPageSize;
        if (parameters.PagingState is not null)
            flags |= FlagPagingState;
        if (parameters.SerialConsistency is not null)
            flags |= FlagSerialConsistency;
        if (parameters.DefaultTimestamp is not null)
            flags |= FlagDefaultTimestamp;
        writer.WriteByte(flags);
        if (parameters.Values.Count > 0)
        {
            writer.WriteShort(parameters.Values.Count);
            foreach (var value in parameters.Values)
                WriteValue(writer, value, version);
        }
        if (parameters.PageSize is { } pageSize)
            writer.WriteInt(pageSize);
        if (parameters.PagingState is { } pagingState)
            writer.WriteBytes(pagingState);
        if (parameters.SerialConsistency is { } serial)
            writer.WriteConsistency(serial);
        if (parameters.DefaultTimestamp is { } timestamp)
            writer.WriteLong(timestamp);
    }

    private static void WriteValue(CqlWriter writer, CqlValue value, int version)
    {
        if (value.IsUnset && version < 4)
            throw new ArgumentException("Unset values need native protocol v4; this connection speaks v" + version + ".");
        writer.WriteValue(value);
    }
}
