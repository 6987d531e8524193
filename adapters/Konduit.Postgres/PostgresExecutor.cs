using System.Net.Sockets;
using Npgsql;

namespace Konduit.Postgres;

/// <summary>
/// The one way every store operation reaches the server: open a pooled connection, run, and turn what the driver
/// throws into the contract's exceptions (issue 11 item 5, issue 13 item 3). A missing schema or table becomes a
/// <see cref="KonduitException"/> naming <c>MigrateAsync</c>; a transient failure (connection refused or cut,
/// backend terminated, server shutting down or starting, serialization failure or deadlock that escaped) becomes
/// <see cref="StoreUnavailableException"/> with the driver's exception inside. Everything else (the contract's own
/// exceptions, cancellation, bad input) passes through untouched.
/// </summary>
internal sealed class PostgresExecutor(NpgsqlDataSource dataSource, string storeName, string notMigratedMessage, bool prepare)
{
    /// <summary>Whether statements are prepared (explicit prepares are not supported under multiplexing).</summary>
    public bool Prepares => prepare;

    /// <summary>Runs <paramref name="body"/> on a connection of its own, disposed afterwards.</summary>
    /// <remarks>The state parameter lets callers pass a static lambda: no closure per call on the hot paths.</remarks>
    public async Task<TResult> RunAsync<TState, TResult>(
        string operation, TState state, Func<NpgsqlConnection, TState, CancellationToken, Task<TResult>> body,
        CancellationToken cancellationToken)
    {
        try
        {
            NpgsqlConnection connection;
            try
            {
                connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (NpgsqlException ex) when (NoHostServesNow(ex))
            {
                throw new StoreUnavailableException(storeName, operation, ex);
            }
            await using (connection.ConfigureAwait(false))
            {
                return await body(connection, state, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (Translate(operation, ex) is { } translated)
        {
            throw translated;
        }
    }

    /// <summary>
    /// Whether opening a connection failed because no host of a multi-host data source can serve this session now:
    /// Npgsql then throws a plain <see cref="NpgsqlException"/>, "No suitable host was found.", with no inner exception
    /// (every host is offline by its recent check, or of the wrong kind, e.g. only standbys for
    /// <c>Target Session Attributes=read-write</c>). That is the gap between a primary's crash and a standby's
    /// promotion (issue 15), so it is transient; a rejected login stays a <see cref="PostgresException"/> and is not.
    /// </summary>
    private bool NoHostServesNow(NpgsqlException ex) =>
        dataSource is NpgsqlMultiHostDataSource && ex is not PostgresException && ex.InnerException is null;

    /// <summary>Runs <paramref name="body"/> on a connection the caller owns (its transaction), with the same mapping.</summary>
    public async Task<TResult> GuardAsync<TState, TResult>(
        string operation, TState state, Func<TState, CancellationToken, Task<TResult>> body, CancellationToken cancellationToken)
    {
        try
        {
            return await body(state, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (Translate(operation, ex) is { } translated)
        {
            throw translated;
        }
    }

    /// <summary>Prepares <paramref name="cmd"/> when this data source allows it.</summary>
    public Task PrepareAsync(NpgsqlCommand cmd, CancellationToken cancellationToken) =>
        prepare ? cmd.PrepareAsync(cancellationToken) : Task.CompletedTask;

    /// <summary>The contract's exception for <paramref name="ex"/>, or null to let it pass as it is.</summary>
    internal Exception? Translate(string operation, Exception ex) => ex switch
    {
        PostgresException p when p.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InvalidSchemaName =>
            new KonduitException(notMigratedMessage, p),
        _ when IsTransient(ex) => new StoreUnavailableException(storeName, operation, ex),
        _ => null,
    };

    /// <summary>
    /// True for failures that say "the server cannot be reached or served this call now", not "this call is wrong":
    /// Npgsql's own transient classification, plus these SQLSTATEs (class 08 connection
    /// exceptions; 57P01 admin shutdown / pg_terminate_backend, 57P02 crash shutdown, 57P03 cannot connect now;
    /// 40001/40P01, which the store does not retry) and socket, I/O and timeout errors under any wrapper. A multi-host
    /// data source that tried every host reports their errors in one <see cref="AggregateException"/> ("Unable to
    /// connect to a suitable host"): transient when every one of them is.
    /// Cancellation by the caller's token is never transient.
    /// </summary>
    internal static bool IsTransient(Exception ex) => ex switch
    {
        OperationCanceledException => false,
        PostgresException p => p.IsTransient
            || p.SqlState.StartsWith("08", StringComparison.Ordinal)
            || p.SqlState is PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow
                or PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected,
        NpgsqlException n => n.IsTransient || n.InnerException is IOException or SocketException or TimeoutException
            || (n.InnerException is AggregateException { InnerExceptions.Count: > 0 } hosts && hosts.InnerExceptions.All(IsTransient)),
        IOException or SocketException or TimeoutException => true,
        _ => false,
    };

    /// <summary>Adds a positional parameter of the value's own type.</summary>
    public static void Add<T>(NpgsqlCommand cmd, T value) => cmd.Parameters.Add(new NpgsqlParameter<T> { TypedValue = value });
}
