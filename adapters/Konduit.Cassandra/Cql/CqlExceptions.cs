namespace Konduit.Cassandra.Cql;

/// <summary>Base type of every exception the CQL client throws (other than argument and cancellation exceptions).</summary>
internal class CqlException : Exception
{
    /// <summary>Creates the exception.</summary>
    public CqlException(string message) : base(message) { }

    /// <summary>Creates the exception with an inner cause.</summary>
    public CqlException(string message, Exception? innerException) : base(message, innerException) { }
}

/// <summary>
/// The connection could not be opened, or broke while the request was in flight. Every request in flight on a
/// broken connection fails with this; the session's next call opens a new connection.
/// </summary>
internal sealed class CqlConnectionException : CqlException
{
    /// <summary>Creates the exception.</summary>
    public CqlConnectionException(string message, Exception? innerException = null) : base(message, innerException) { }
}

/// <summary>No response arrived within the request timeout (a client-side timeout, not the server's).</summary>
internal sealed class CqlRequestTimeoutException : CqlException
{
    /// <summary>Creates the exception.</summary>
    public CqlRequestTimeoutException(string message, TimeSpan timeout) : base(message) => Timeout = timeout;

    /// <summary>The timeout that elapsed.</summary>
    public TimeSpan Timeout { get; }
}

/// <summary>The server sent bytes this client cannot decode.</summary>
internal sealed class CqlMalformedFrameException : CqlException
{
    /// <summary>Creates the exception.</summary>
    public CqlMalformedFrameException(string message) : base(message) { }
}

/// <summary>ERROR codes of the native protocol (§9).</summary>
internal enum CqlErrorCode
{
    /// <summary>0x0000: an unexpected server-side error.</summary>
    ServerError = 0x0000,
    /// <summary>0x000A: the client violated the protocol.</summary>
    ProtocolError = 0x000A,
    /// <summary>0x0100: authentication failed.</summary>
    AuthenticationError = 0x0100,
    /// <summary>0x1000: not enough replicas alive for the consistency level.</summary>
    Unavailable = 0x1000,
    /// <summary>0x1001: the coordinator is overloaded.</summary>
    Overloaded = 0x1001,
    /// <summary>0x1002: the coordinator is bootstrapping.</summary>
    IsBootstrapping = 0x1002,
    /// <summary>0x1003: TRUNCATE failed.</summary>
    TruncateError = 0x1003,
    /// <summary>0x1100: a write timed out on the replicas.</summary>
    WriteTimeout = 0x1100,
    /// <summary>0x1200: a read timed out on the replicas.</summary>
    ReadTimeout = 0x1200,
    /// <summary>0x1300: a read failed on replicas (v4).</summary>
    ReadFailure = 0x1300,
    /// <summary>0x1400: a user-defined function failed (v4).</summary>
    FunctionFailure = 0x1400,
    /// <summary>0x1500: a write failed on replicas (v4).</summary>
    WriteFailure = 0x1500,
    /// <summary>0x2000: CQL syntax error.</summary>
    SyntaxError = 0x2000,
    /// <summary>0x2100: the user lacks a permission.</summary>
    Unauthorized = 0x2100,
    /// <summary>0x2200: syntactically valid but invalid query.</summary>
    Invalid = 0x2200,
    /// <summary>0x2300: invalid because of a configuration issue.</summary>
    ConfigError = 0x2300,
    /// <summary>0x2400: the keyspace or table already exists.</summary>
    AlreadyExists = 0x2400,
    /// <summary>0x2500: the prepared statement id is unknown to the node.</summary>
    Unprepared = 0x2500,
}

/// <summary>The server answered with an ERROR frame. Subtypes carry the per-code details.</summary>
internal class CqlServerException : CqlException
{
    /// <summary>Creates the exception for <paramref name="code"/> with the server's message.</summary>
    public CqlServerException(CqlErrorCode code, string message) : base(message) => Code = code;

    /// <summary>The error code.</summary>
    public CqlErrorCode Code { get; }

    /// <summary>The request the server refused (EXECUTE, BATCH, PREPARE, …), set by the session: a refused PREPARE
    /// means the statement or schema is wrong, a refused EXECUTE or BATCH that its values or size are.</summary>
    internal CqlOpcode? RequestOpcode { get; set; }
}

/// <summary>0x0000: an unexpected server-side error.</summary>
internal sealed class CqlServerErrorException(string message) : CqlServerException(CqlErrorCode.ServerError, message);

/// <summary>0x000A: the server says the client violated the protocol.</summary>
internal sealed class CqlProtocolErrorException(string message) : CqlServerException(CqlErrorCode.ProtocolError, message);

/// <summary>0x0100: authentication failed (also thrown when the server requires credentials and none are configured).</summary>
internal sealed class CqlAuthenticationException(string message) : CqlServerException(CqlErrorCode.AuthenticationError, message);

/// <summary>0x1000: not enough replicas were alive to satisfy the consistency level.</summary>
internal sealed class CqlUnavailableException(string message, CqlConsistency consistency, int required, int alive)
    : CqlServerException(CqlErrorCode.Unavailable, message)
{
    /// <summary>The consistency level of the request.</summary>
    public CqlConsistency Consistency { get; } = consistency;

    /// <summary>Replicas that had to be alive.</summary>
    public int Required { get; } = required;

    /// <summary>Replicas known alive.</summary>
    public int Alive { get; } = alive;
}

/// <summary>0x1001: the coordinator is overloaded.</summary>
internal sealed class CqlOverloadedException(string message) : CqlServerException(CqlErrorCode.Overloaded, message);

/// <summary>0x1002: the coordinator is bootstrapping.</summary>
internal sealed class CqlIsBootstrappingException(string message) : CqlServerException(CqlErrorCode.IsBootstrapping, message);

/// <summary>0x1003: TRUNCATE failed.</summary>
internal sealed class CqlTruncateException(string message) : CqlServerException(CqlErrorCode.TruncateError, message);

/// <summary>0x1100: replicas did not acknowledge a write in time.</summary>
internal sealed class CqlWriteTimeoutException(string message, CqlConsistency consistency, int received, int blockFor, string writeType)
    : CqlServerException(CqlErrorCode.WriteTimeout, message)
{
    /// <summary>The consistency level of the request.</summary>
    public CqlConsistency Consistency { get; } = consistency;

    /// <summary>Replicas that acknowledged.</summary>
    public int Received { get; } = received;

    /// <summary>Acknowledgements required.</summary>
    public int BlockFor { get; } = blockFor;

    /// <summary>SIMPLE, BATCH, UNLOGGED_BATCH, COUNTER, BATCH_LOG (or CAS, VIEW, CDC on later servers).</summary>
    public string WriteType { get; } = writeType;
}

/// <summary>0x1200: replicas did not answer a read in time.</summary>
internal sealed class CqlReadTimeoutException(string message, CqlConsistency consistency, int received, int blockFor, bool dataPresent)
    : CqlServerException(CqlErrorCode.ReadTimeout, message)
{
    /// <summary>The consistency level of the request.</summary>
    public CqlConsistency Consistency { get; } = consistency;

    /// <summary>Replicas that answered.</summary>
    public int Received { get; } = received;

    /// <summary>Answers required.</summary>
    public int BlockFor { get; } = blockFor;

    /// <summary>Whether the replica asked for the data answered.</summary>
    public bool DataPresent { get; } = dataPresent;
}

/// <summary>0x1300 (v4): a read failed on replicas for a reason other than a timeout.</summary>
internal sealed class CqlReadFailureException(string message, CqlConsistency consistency, int received, int blockFor, int failures, bool dataPresent)
    : CqlServerException(CqlErrorCode.ReadFailure, message)
{
    /// <summary>The consistency level of the request.</summary>
    public CqlConsistency Consistency { get; } = consistency;

    /// <summary>Replicas that answered.</summary>
    public int Received { get; } = received;

    /// <summary>Answers required.</summary>
    public int BlockFor { get; } = blockFor;

    /// <summary>Replicas that failed.</summary>
    public int Failures { get; } = failures;

    /// <summary>Whether the replica asked for the data answered.</summary>
    public bool DataPresent { get; } = dataPresent;
}

/// <summary>0x1400 (v4): a user-defined function failed.</summary>
internal sealed class CqlFunctionFailureException(string message, string keyspace, string function, IReadOnlyList<string> argumentTypes)
    : CqlServerException(CqlErrorCode.FunctionFailure, message)
{
    /// <summary>The function's keyspace.</summary>
    public string Keyspace { get; } = keyspace;

    /// <summary>The function's name.</summary>
    public string Function { get; } = function;

    /// <summary>The function's argument types (as CQL types).</summary>
    public IReadOnlyList<string> ArgumentTypes { get; } = argumentTypes;
}

/// <summary>0x1500 (v4): a write failed on replicas for a reason other than a timeout.</summary>
internal sealed class CqlWriteFailureException(string message, CqlConsistency consistency, int received, int blockFor, int failures, string writeType)
    : CqlServerException(CqlErrorCode.WriteFailure, message)
{
    /// <summary>The consistency level of the request.</summary>
    public CqlConsistency Consistency { get; } = consistency;

    /// <summary>Replicas that acknowledged.</summary>
    public int Received { get; } = received;

    /// <summary>Acknowledgements required.</summary>
    public int BlockFor { get; } = blockFor;

    /// <summary>Replicas that failed.</summary>
    public int Failures { get; } = failures;

    /// <summary>The kind of write, as for <see cref="CqlWriteTimeoutException.WriteType"/>.</summary>
    public string WriteType { get; } = writeType;
}

/// <summary>0x2000: the statement has a syntax error.</summary>
internal sealed class CqlSyntaxException(string message) : CqlServerException(CqlErrorCode.SyntaxError, message);

/// <summary>0x2100: the user lacks a permission.</summary>
internal sealed class CqlUnauthorizedException(string message) : CqlServerException(CqlErrorCode.Unauthorized, message);

/// <summary>0x2200: the statement is syntactically valid but invalid (unknown table, wrong value type, …).</summary>
internal sealed class CqlInvalidQueryException(string message) : CqlServerException(CqlErrorCode.Invalid, message);

/// <summary>0x2300: the statement is invalid because of a configuration issue.</summary>
internal sealed class CqlConfigException(string message) : CqlServerException(CqlErrorCode.ConfigError, message);

/// <summary>0x2400: the keyspace or table to create already exists.</summary>
internal sealed class CqlAlreadyExistsException(string message, string keyspace, string table)
    : CqlServerException(CqlErrorCode.AlreadyExists, message)
{
    /// <summary>The keyspace that exists, or that holds the table that exists.</summary>
    public string Keyspace { get; } = keyspace;

    /// <summary>The table that exists; empty when the keyspace itself exists.</summary>
    public string Table { get; } = table;
}

/// <summary>0x2500: the node does not know the prepared statement id (the session re-prepares once by itself).</summary>
internal sealed class CqlUnpreparedException(string message, byte[] preparedId) : CqlServerException(CqlErrorCode.Unprepared, message)
{
    /// <summary>The unknown prepared statement id.</summary>
    public IReadOnlyList<byte> PreparedId { get; } = preparedId;

    internal byte[] PreparedIdBytes { get; } = preparedId;
}
