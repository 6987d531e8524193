namespace Konduit.Cassandra.Cql;

/// <summary>A statement prepared on the server. The session caches these by CQL text and re-prepares on UNPREPARED.</summary>
internal sealed class CqlPreparedStatement
{
    private byte[] _id;

    internal CqlPreparedStatement(string cql, byte[] id, IReadOnlyList<CqlColumn> variables, IReadOnlyList<CqlColumn> resultColumns,
        IReadOnlyList<int> partitionKeyIndexes)
    {
        Cql = cql;
        _id = id;
        Variables = variables;
        ResultColumns = resultColumns;
        PartitionKeyIndexes = partitionKeyIndexes;
    }

    /// <summary>The statement text.</summary>
    public string Cql { get; }

    /// <summary>The bind markers, in order, with the types values are encoded as.</summary>
    public IReadOnlyList<CqlColumn> Variables { get; }

    /// <summary>The result columns (may be empty even for a SELECT: the server does not promise them).</summary>
    public IReadOnlyList<CqlColumn> ResultColumns { get; }

    /// <summary>Which bind markers make up the partition key (v4 only; empty on v3).</summary>
    public IReadOnlyList<int> PartitionKeyIndexes { get; }

    /// <summary>The server's id; replaced when the session re-prepares after an UNPREPARED error.</summary>
    internal byte[] Id
    {
        get => Volatile.Read(ref _id);
        set => Volatile.Write(ref _id, value);
    }

    internal IReadOnlyList<CqlValue> Bind(IReadOnlyList<object?>? values)
    {
        var count = values?.Count ?? 0;
        if (count != Variables.Count)
            throw new ArgumentException($"The statement has {Variables.Count} bind markers; {count} values were given.", nameof(values));
        if (count == 0)
            return [];
        var encoded = new CqlValue[count];
        for (var i = 0; i < count; i++)
        {
            try
            {
                encoded[i] = CqlCodec.Encode(Variables[i].Type, values![i]);
            }
            catch (ArgumentException ex)
            {
                throw new ArgumentException($"Value {i} ('{Variables[i].Name}'): {ex.Message}", nameof(values), ex);
            }
        }
        return encoded;
    }
}

/// <summary>The kind of a BATCH (§4.1.7).</summary>
internal enum CqlBatchType : byte
{
    /// <summary>Atomic via the batch log.</summary>
    Logged = 0,
    /// <summary>No batch log: cheaper, not atomic across partitions.</summary>
    Unlogged = 1,
    /// <summary>Counter updates only.</summary>
    Counter = 2,
}

/// <summary>Statements sent as one BATCH request. Values are always bound parameters.</summary>
internal sealed class CqlBatch
{
    private readonly List<Statement> _statements = [];

    /// <summary>Creates a batch of <paramref name="type"/>.</summary>
    public CqlBatch(CqlBatchType type = CqlBatchType.Logged) => Type = type;

    /// <summary>The batch type.</summary>
    public CqlBatchType Type { get; }

    /// <summary>The number of statements.</summary>
    public int Count => _statements.Count;

    internal IReadOnlyList<Statement> Statements => _statements;

    /// <summary>Adds a statement. Prepared (the default) statements are encoded with the server's types;
    /// unprepared ones with types inferred from the .NET values.</summary>
    /// <param name="cql">An INSERT, UPDATE or DELETE with <c>?</c> markers.</param>
    /// <param name="values">The values for the markers.</param>
    /// <param name="prepare">Whether to prepare (and cache) the statement.</param>
    /// <returns>This batch.</returns>
    public CqlBatch Add(string cql, IReadOnlyList<object?>? values = null, bool prepare = true)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(cql);
        if (_statements.Count == ushort.MaxValue)
            throw new InvalidOperationException("A batch holds at most 65535 statements.");
        _statements.Add(new Statement(cql, values ?? [], prepare));
        return this;
    }

    /// <summary>Adds an already prepared statement.</summary>
    public CqlBatch Add(CqlPreparedStatement statement, IReadOnlyList<object?> values)
    {
        ArgumentNullException.ThrowIfNull(statement);
        if (_statements.Count == ushort.MaxValue)
            throw new InvalidOperationException("A batch holds at most 65535 statements.");
        _statements.Add(new Statement(statement.Cql, values, true, statement));
        return this;
    }

    internal sealed record Statement(string Cql, IReadOnlyList<object?> Values, bool Prepare, CqlPreparedStatement? Prepared = null);
}

/// <summary>Per-request settings; null members fall back to <see cref="CqlSessionOptions"/>.</summary>
internal sealed record CqlQueryOptions
{
    /// <summary>The consistency level.</summary>
    public CqlConsistency? Consistency { get; init; }

    /// <summary>The serial consistency for conditional updates (SERIAL or LOCAL_SERIAL).</summary>
    public CqlConsistency? SerialConsistency { get; init; }

    /// <summary>Rows per page for SELECTs.</summary>
    public int? PageSize { get; init; }

    /// <summary>Start from this paging state (from <see cref="CqlResult.PagingState"/>).</summary>
    public byte[]? PagingState { get; init; }

    /// <summary>The client-side timeout for each request.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Whether to prepare (and cache) the statement before executing it (default true). An unprepared
    /// statement's values are encoded with types inferred from their .NET types.</summary>
    public bool Prepare { get; init; } = true;

    /// <summary>A default write timestamp, in microseconds since the Unix epoch.</summary>
    public long? DefaultTimestamp { get; init; }

    /// <summary>Asks the server to trace the request (frame flag 0x02); the result carries the tracing session id,
    /// whose events land in <c>system_traces.events</c> shortly after.</summary>
    public bool Tracing { get; init; }

    /// <summary>Whether the statement may be applied twice (an upsert, a read): only then does a request whose
    /// connection broke after sending move on to the next node.</summary>
    public bool IsIdempotent { get; init; }
}

/// <summary>Settings of a <see cref="CqlSession"/>.</summary>
internal sealed class CqlSessionOptions
{
    /// <summary>Host name or address of the node.</summary>
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>The native-protocol port.</summary>
    public int Port { get; set; } = 9042;

    /// <summary>Further contact points ("host:port"); the session connects to any of them (and to <see cref="Host"/>).</summary>
    public IList<string> ContactPoints { get; } = [];

    /// <summary>Learn the other nodes from <c>system.peers</c> when a connection opens (off by default: the fake-server tests count every frame).</summary>
    public bool DiscoverPeers { get; set; }

    /// <summary>Keyspace to USE on every new connection (a plain identifier: letters, digits, underscores).</summary>
    public string? Keyspace { get; set; }

    /// <summary>User name for PasswordAuthenticator (SASL PLAIN); null when the server allows anyone.</summary>
    public string? Username { get; set; }

    /// <summary>Password for PasswordAuthenticator.</summary>
    public string? Password { get; set; }

    /// <summary>Speak TLS to every node (client_encryption_options on the server). Off by default.</summary>
    public bool UseTls { get; set; }

    /// <summary>A PEM file of the certificate authority that signs the nodes' certificates; null: the system's trust store.</summary>
    public string? TlsCertificateAuthorityPath { get; set; }

    /// <summary>The name each node's certificate must carry; null: the address the client connects to.</summary>
    public string? TlsServerName { get; set; }

    /// <summary>The highest protocol version to offer: 4, falling back to 3 when the server refuses it.</summary>
    public int MaxProtocolVersion { get; set; } = 4;

    /// <summary>Consistency level when a request names none.</summary>
    public CqlConsistency DefaultConsistency { get; set; } = CqlConsistency.LocalQuorum;

    /// <summary>Rows per page when a request names none.</summary>
    public int DefaultPageSize { get; set; } = 5000;

    /// <summary>Client-side timeout of one request when it names none.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(12);

    /// <summary>Timeout for opening a connection (TCP connect plus the STARTUP handshake).</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Requests in flight at once on the connection (stream ids; at most 32768).</summary>
    public int MaxRequestsInFlight { get; set; } = 1024;

    /// <summary>Parses "host:port" contact points, comma-separated (such as KONDUIT_TEST_CASSANDRA), into these options.</summary>
    /// <param name="contactPoints">"host", "host:port" or "[ipv6]:port", one or more separated by commas.</param>
    /// <returns>New options: the first point is <see cref="Host"/>/<see cref="Port"/>, the others <see cref="ContactPoints"/>.</returns>
    public static CqlSessionOptions FromContactPoint(string contactPoints)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(contactPoints);
        var points = contactPoints.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var options = Parse(points[0]);
        foreach (var point in points.Skip(1))
            options.ContactPoints.Add(point);
        return options;
    }

    /// <summary>Every contact point as (host, port), <see cref="Host"/> first; a point without a port uses <see cref="Port"/>.</summary>
    internal IReadOnlyList<(string Host, int Port)> Endpoints()
    {
        var endpoints = new List<(string, int)> { (Host, Port) };
        foreach (var point in ContactPoints)
        {
            var parsed = Parse(point, Port);
            if (!endpoints.Contains((parsed.Host, parsed.Port)))
                endpoints.Add((parsed.Host, parsed.Port));
        }
        return endpoints;
    }

    private static CqlSessionOptions Parse(string contactPoint, int defaultPort = 9042)
    {
        var options = new CqlSessionOptions { Port = defaultPort };
        string host = contactPoint, port = "";
        if (contactPoint.StartsWith('['))
        {
            var close = contactPoint.IndexOf(']');
            host = contactPoint[1..close];
            port = contactPoint[(close + 1)..].TrimStart(':');
        }
        else if (contactPoint.Count(c => c == ':') == 1)
        {
            var colon = contactPoint.IndexOf(':');
            host = contactPoint[..colon];
            port = contactPoint[(colon + 1)..];
        }
        options.Host = host;
        if (port.Length > 0)
            options.Port = int.Parse(port, System.Globalization.CultureInfo.InvariantCulture);
        return options;
    }

    internal void Validate()
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(Host);
        if (Port is <= 0 or > 65535)
            throw new ArgumentOutOfRangeException(nameof(Port), Port, "The port must be 1..65535.");
        if (MaxProtocolVersion is < 3 or > 4)
            throw new ArgumentOutOfRangeException(nameof(MaxProtocolVersion), MaxProtocolVersion, "This client speaks protocol v3 and v4.");
        if (MaxRequestsInFlight is < 1 or > 32768)
            throw new ArgumentOutOfRangeException(nameof(MaxRequestsInFlight), MaxRequestsInFlight, "Stream ids allow 1..32768 requests in flight.");
        if (DefaultPageSize < 1)
            throw new ArgumentOutOfRangeException(nameof(DefaultPageSize), DefaultPageSize, "The page size must be positive.");
        if (RequestTimeout <= TimeSpan.Zero || ConnectTimeout <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(RequestTimeout), "Timeouts must be positive.");
        if (Keyspace is not null && !CqlIdentifier.IsPlain(Keyspace))
            throw new ArgumentException($"Keyspace '{Keyspace}' is not a plain identifier (letters, digits, underscores; at most 48).", nameof(Keyspace));
        foreach (var point in ContactPoints)
        {
            if (string.IsNullOrWhiteSpace(point) || Parse(point, Port).Port is <= 0 or > 65535)
                throw new ArgumentException($"Contact point '{point}' is not host[:port].", nameof(ContactPoints));
        }
        if ((Username is null) != (Password is null))
            throw new ArgumentException("Give both Username and Password, or neither.", nameof(Username));
        if (!UseTls && (TlsCertificateAuthorityPath is not null || TlsServerName is not null))
            throw new ArgumentException("TLS settings are given but UseTls is off.", nameof(UseTls));
    }
}

/// <summary>Identifiers that may appear in CQL text (never data: data is always bound).</summary>
internal static class CqlIdentifier
{
    public static bool IsPlain(string identifier) =>
        identifier.Length is > 0 and <= 48 && identifier.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');
}

/// <summary>Version-1 (time-based) UUIDs for timeuuid columns, and their timestamps.</summary>
internal static class CqlTimeUuid
{
    // 100-ns intervals between the Gregorian epoch (1582-10-15) and the Unix epoch.
    private const long GregorianOffset = 0x01B21DD213814000L;

    /// <summary>A time-based UUID for <paramref name="timestamp"/> with a random clock sequence and node.</summary>
    public static Guid Create(DateTimeOffset timestamp)
    {
        Span<byte> random = stackalloc byte[8];
        System.Security.Cryptography.RandomNumberGenerator.Fill(random);
        return Create(timestamp, random);
    }

    /// <summary>A time-based UUID from a timestamp and 8 bytes of clock sequence (2, the top 2 bits replaced by the variant) and node (6).</summary>
    internal static Guid Create(DateTimeOffset timestamp, ReadOnlySpan<byte> clockSequenceAndNode)
    {
        var ticks = timestamp.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks + GregorianOffset;
        Span<byte> bytes = stackalloc byte[16];
        // time_low (32), time_mid (16), version 1 + time_hi (12), big-endian (RFC 4122 §4.1.2).
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes, (uint)ticks);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(bytes[4..], (ushort)(ticks >> 32));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(bytes[6..], (ushort)(((ticks >> 48) & 0x0FFF) | 0x1000));
        clockSequenceAndNode[..8].CopyTo(bytes[8..]);
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80);
        return new Guid(bytes, bigEndian: true);
    }

    /// <summary>The timestamp of a version-1 UUID (100-ns precision).</summary>
    /// <exception cref="ArgumentException">The UUID is not version 1.</exception>
    public static DateTimeOffset GetTimestamp(Guid timeUuid)
    {
        Span<byte> bytes = stackalloc byte[16];
        timeUuid.TryWriteBytes(bytes, bigEndian: true, out _);
        if (bytes[6] >> 4 != 1)
            throw new ArgumentException("Not a version-1 (time-based) UUID.", nameof(timeUuid));
        long ticks = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(bytes)
            | (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(bytes[4..]) << 32
            | (long)(System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(bytes[6..]) & 0x0FFF) << 48;
        return new DateTimeOffset(ticks - GregorianOffset + DateTimeOffset.UnixEpoch.UtcTicks, TimeSpan.Zero);
    }
}
