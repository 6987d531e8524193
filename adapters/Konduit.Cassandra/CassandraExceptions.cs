using Konduit.Cassandra.Cql;

namespace Konduit.Cassandra;

/// <summary>The Cassandra event log could not complete an operation. Appends that fail may be re-sent with the same events.</summary>
public class CassandraEventLogException : Exception
{
    /// <summary>Creates the exception.</summary>
    public CassandraEventLogException(string message, Exception? innerException = null) : base(message, innerException) { }

    /// <summary>Translates what the CQL client threw into the log's public exceptions (the client is internal).</summary>
    internal static Exception From(Exception exception) => exception switch
    {
        CqlUnavailableException u => new CassandraUnavailableException(u.Message, (CassandraConsistency)u.Consistency, u.Required, u.Alive, u),
        // One type for both sides of a timeout (issue 14): the caller cannot tell, and need not, which one fired first.
        CqlRequestTimeoutException or CqlWriteTimeoutException or CqlReadTimeoutException =>
            new CassandraTimeoutException(exception.Message, exception is not CqlRequestTimeoutException, exception),
        CqlConnectionException => new CassandraConnectionException(exception.Message, exception),
        CqlException => new CassandraEventLogException(exception.Message, exception),
        _ => exception,
    };
}

/// <summary>Too few replicas are alive for the consistency level (the coordinator refused before writing anything).</summary>
public sealed class CassandraUnavailableException : CassandraEventLogException
{
    /// <summary>Creates the exception.</summary>
    public CassandraUnavailableException(string message, CassandraConsistency consistency, int required, int alive, Exception? innerException = null)
        : base(message, innerException) => (Consistency, Required, Alive) = (consistency, required, alive);

    /// <summary>The consistency level asked for.</summary>
    public CassandraConsistency Consistency { get; }

    /// <summary>Replicas that had to be alive.</summary>
    public int Required { get; }

    /// <summary>Replicas the coordinator knew alive.</summary>
    public int Alive { get; }
}

/// <summary>
/// No answer in time: either the replicas did not answer the coordinator (the server's read/write timeout) or the
/// coordinator did not answer the client (<see cref="CassandraTaskEventLogOptions.RequestTimeout"/>). The write may
/// or may not have been applied; appends are idempotent, so re-sending is safe.
/// </summary>
public sealed class CassandraTimeoutException : CassandraEventLogException
{
    /// <summary>Creates the exception.</summary>
    public CassandraTimeoutException(string message, bool serverSide, Exception? innerException = null)
        : base(message, innerException) => ServerSide = serverSide;

    /// <summary>True when the server reported the timeout, false when the client gave up waiting.</summary>
    public bool ServerSide { get; }
}

/// <summary>No node could be reached, or the connection broke while the request was in flight.</summary>
public sealed class CassandraConnectionException : CassandraEventLogException
{
    /// <summary>Creates the exception.</summary>
    public CassandraConnectionException(string message, Exception? innerException = null) : base(message, innerException) { }
}
