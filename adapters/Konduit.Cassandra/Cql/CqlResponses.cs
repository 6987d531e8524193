namespace Konduit.Cassandra.Cql;

/// <summary>Parses response bodies (§4.2) and maps ERROR frames to typed exceptions (§9).</summary>
internal static class CqlResponses
{
    // Rows metadata flags (§4.2.5.2).
    private const int GlobalTablesSpec = 0x0001;
    private const int HasMorePages = 0x0002;
    private const int NoMetadata = 0x0004;

    /// <summary>
    /// Where the message proper starts: a response with the tracing flag begins with a [uuid]; in v4 the warning flag
    /// adds a [string list] and the custom-payload flag a [bytes map], in that order (§2.2).
    /// </summary>
    public static int SkipEnvelope(CqlFrame frame, out IReadOnlyList<string> warnings) => SkipEnvelope(frame, out warnings, out _);

    /// <summary>As <see cref="SkipEnvelope(CqlFrame, out IReadOnlyList{string})"/>, also giving the tracing session id of a traced request.</summary>
    public static int SkipEnvelope(CqlFrame frame, out IReadOnlyList<string> warnings, out Guid? tracingId)
    {
        warnings = [];
        tracingId = null;
        var flags = frame.Header.Flags;
        if ((flags & CqlFrameFlags.Compression) != 0)
            throw new CqlMalformedFrameException("The server sent a compressed frame; this client never negotiates compression.");
        var reader = new CqlReader(frame.Body);
        if ((flags & CqlFrameFlags.Tracing) != 0)
            tracingId = reader.ReadUuid();
        if (frame.Header.ProtocolVersion >= 4)
        {
            if ((flags & CqlFrameFlags.Warning) != 0)
                warnings = reader.ReadStringList();
            if ((flags & CqlFrameFlags.CustomPayload) != 0)
                reader.ReadBytesMap();
        }
        return reader.Position;
    }

    public static CqlServerException ParseError(ReadOnlySpan<byte> body)
    {
        var reader = new CqlReader(body);
        var code = (CqlErrorCode)reader.ReadInt();
        var message = reader.ReadString();
        return code switch
        {
            CqlErrorCode.ServerError => new CqlServerErrorException(message),
            CqlErrorCode.ProtocolError => new CqlProtocolErrorException(message),
            CqlErrorCode.AuthenticationError => new CqlAuthenticationException(message),
            CqlErrorCode.Unavailable => new CqlUnavailableException(message, reader.ReadConsistency(), reader.ReadInt(), reader.ReadInt()),
            CqlErrorCode.Overloaded => new CqlOverloadedException(message),
            CqlErrorCode.IsBootstrapping => new CqlIsBootstrappingException(message),
            CqlErrorCode.TruncateError => new CqlTruncateException(message),
            CqlErrorCode.WriteTimeout => new CqlWriteTimeoutException(
                message, reader.ReadConsistency(), reader.ReadInt(), reader.ReadInt(), reader.ReadString()),
            CqlErrorCode.ReadTimeout => new CqlReadTimeoutException(
                message, reader.ReadConsistency(), reader.ReadInt(), reader.ReadInt(), reader.ReadByte() != 0),
            CqlErrorCode.ReadFailure => new CqlReadFailureException(
                message, reader.ReadConsistency(), reader.ReadInt(), reader.ReadInt(), reader.ReadInt(), reader.ReadByte() != 0),
            CqlErrorCode.FunctionFailure => new CqlFunctionFailureException(
                message, reader.ReadString(), reader.ReadString(), reader.ReadStringList()),
            CqlErrorCode.WriteFailure => new CqlWriteFailureException(
                message, reader.ReadConsistency(), reader.ReadInt(), reader.ReadInt(), reader.ReadInt(), reader.ReadString()),
            CqlErrorCode.SyntaxError => new CqlSyntaxException(message),
            CqlErrorCode.Unauthorized => new CqlUnauthorizedException(message),
            CqlErrorCode.Invalid => new CqlInvalidQueryException(message),
            CqlErrorCode.ConfigError => new CqlConfigException(message),
            CqlErrorCode.AlreadyExists => new CqlAlreadyExistsException(message, reader.ReadString(), reader.ReadString()),
            CqlErrorCode.Unprepared => new CqlUnpreparedException(message, reader.ReadShortBytes()),
            _ => new CqlServerException(code, message),
        };
    }

    /// <summary>The message body of a response, or the mapped exception when it is an ERROR.</summary>
    public static ReadOnlySpan<byte> Expect(CqlFrame frame, CqlOpcode expected, out IReadOnlyList<string> warnings) =>
        Expect(frame, expected, out warnings, out _);

    /// <summary>As <see cref="Expect(CqlFrame, CqlOpcode, out IReadOnlyList{string})"/>, also giving the tracing session id.</summary>
    public static ReadOnlySpan<byte> Expect(CqlFrame frame, CqlOpcode expected, out IReadOnlyList<string> warnings, out Guid? tracingId)
    {
        var offset = SkipEnvelope(frame, out warnings, out tracingId);
        var body = frame.Body.AsSpan(offset);
        if (frame.Header.Opcode == CqlOpcode.Error)
            throw ParseError(body);
        if (frame.Header.Opcode != expected)
            throw new CqlMalformedFrameException($"Expected {expected}, the server sent {frame.Header.Opcode}.");
        return body;
    }

    public static IReadOnlyDictionary<string, IReadOnlyList<string>> ParseSupported(ReadOnlySpan<byte> body) =>
        new CqlReader(body).ReadStringMultimap();

    public static string ParseAuthenticate(ReadOnlySpan<byte> body) => new CqlReader(body).ReadString();

    public static byte[]? ParseAuthToken(ReadOnlySpan<byte> body) => body.IsEmpty ? null : new CqlReader(body).ReadBytes();

    /// <summary>A RESULT body (§4.2.5). <paramref name="cql"/> names the statement of a Prepared result.</summary>
    public static CqlResult ParseResult(ReadOnlySpan<byte> body, int version, string? cql = null)
    {
        var reader = new CqlReader(body);
        var kind = (CqlResultKind)reader.ReadInt();
        switch (kind)
        {
            case CqlResultKind.Void:
                return new CqlResult(kind);
            case CqlResultKind.Rows:
                return ParseRows(ref reader);
            case CqlResultKind.SetKeyspace:
                return new CqlResult(kind) { Keyspace = reader.ReadString() };
            case CqlResultKind.Prepared:
                var id = reader.ReadShortBytes();
                var variables = ReadMetadata(ref reader, version >= 4, out _, out var pkIndexes);
                var resultColumns = ReadMetadata(ref reader, false, out _, out _);
                return new CqlResult(kind)
                {
                    Prepared = new CqlPreparedStatement(cql ?? "", id, variables ?? [], resultColumns ?? [], pkIndexes),
                };
            case CqlResultKind.SchemaChange:
                return new CqlResult(kind) { SchemaChange = ReadSchemaChange(ref reader) };
            default:
                throw new CqlMalformedFrameException($"Unknown RESULT kind 0x{(int)kind:X4}.");
        }
    }

    private static CqlResult ParseRows(ref CqlReader reader)
    {
        var columns = ReadMetadata(ref reader, false, out var pagingState, out _, out var columnCount);
        columns ??= Enumerable.Range(0, columnCount)
            .Select(i => new CqlColumn("", "", $"column{i}", CqlColumnType.Of(CqlTypeCode.Blob))).ToArray();
        var metadata = new CqlRowMetadata(columns);
        var rowCount = reader.ReadInt();
        if (rowCount < 0)
            throw new CqlMalformedFrameException($"Negative row count {rowCount}.");
        var rows = new CqlRow[rowCount];
        for (var r = 0; r < rowCount; r++)
        {
            var values = new object?[columns.Count];
            for (var c = 0; c < values.Length; c++)
                values[c] = reader.TryReadBytesSpan(out var cell) ? CqlCodec.Decode(columns[c].Type, cell) : null;
            rows[r] = new CqlRow(metadata, values);
        }
        return new CqlResult(CqlResultKind.Rows) { Rows = rows, Columns = columns, PagingState = pagingState };
    }

    private static IReadOnlyList<CqlColumn>? ReadMetadata(
        ref CqlReader reader, bool withPartitionKey, out byte[]? pagingState, out IReadOnlyList<int> pkIndexes) =>
        ReadMetadata(ref reader, withPartitionKey, out pagingState, out pkIndexes, out _);

    /// <summary>
    /// Rows metadata (§4.2.5.2); with <paramref name="withPartitionKey"/>, the v4 Prepared variant that has
    /// &lt;pk_count&gt; and the partition-key indexes after the column count and no paging state (§4.2.5.4).
    /// Null when the No_metadata flag is set.
    /// </summary>
    private static IReadOnlyList<CqlColumn>? ReadMetadata(
        ref CqlReader reader, bool withPartitionKey, out byte[]? pagingState, out IReadOnlyList<int> pkIndexes, out int columnCount)
    {
        var flags = reader.ReadInt();
        columnCount = reader.ReadInt();
        if (columnCount < 0)
            throw new CqlMalformedFrameException($"Negative column count {columnCount}.");
        pagingState = null;
        pkIndexes = [];
        if (withPartitionKey)
        {
            var pkCount = reader.ReadInt();
            var indexes = new int[pkCount];
            for (var i = 0; i < pkCount; i++)
                indexes[i] = reader.ReadShort();
            pkIndexes = indexes;
        }
        else if ((flags & HasMorePages) != 0)
        {
            pagingState = reader.ReadBytes();
        }
        if ((flags & NoMetadata) != 0)
            return null;
        string? globalKeyspace = null, globalTable = null;
        if ((flags & GlobalTablesSpec) != 0)
        {
            globalKeyspace = reader.ReadString();
            globalTable = reader.ReadString();
        }
        var columns = new CqlColumn[columnCount];
        for (var i = 0; i < columnCount; i++)
        {
            var keyspace = globalKeyspace ?? reader.ReadString();
            var table = globalTable ?? reader.ReadString();
            var name = reader.ReadString();
            columns[i] = new CqlColumn(keyspace, table, name, reader.ReadType());
        }
        return columns;
    }

    private static CqlSchemaChange ReadSchemaChange(ref CqlReader reader)
    {
        var change = reader.ReadString();
        var target = reader.ReadString();
        var keyspace = reader.ReadString();
        return target switch
        {
            "KEYSPACE" => new CqlSchemaChange(change, target, keyspace, "", []),
            "FUNCTION" or "AGGREGATE" => new CqlSchemaChange(change, target, keyspace, reader.ReadString(), reader.ReadStringList()),
            _ => new CqlSchemaChange(change, target, keyspace, reader.ReadString(), []),
        };
    }
}
