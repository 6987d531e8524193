using System.Globalization;
using Microsoft.Data.Sqlite;

namespace Konduit.Sqlite;

/// <summary>
/// The one way every store operation reaches the file: a pooled connection with the busy timeout set, writes inside
/// <c>BEGIN IMMEDIATE</c>, and the driver's errors turned into the contract's exceptions. A missing table becomes a
/// <see cref="KonduitException"/> naming <c>MigrateAsync</c>; a busy, locked, full or unreadable file becomes
/// <see cref="StoreUnavailableException"/>. Everything else (the contract's own exceptions, cancellation) passes through.
/// </summary>
/// <remarks>
/// Writers of this process queue on an async gate before they take SQLite's write lock, so they wait without blocking a
/// thread (Microsoft.Data.Sqlite's async calls run synchronously, and SQLite's busy handler sleeps); writers of other
/// processes are serialized by the lock itself, waited for by the busy handler up to the busy timeout.
/// </remarks>
internal sealed class SqliteDatabase
{
    private const string StoreName = "sqlite";

    private readonly string _connectionString;
    private readonly string _busyTimeoutPragma; // and PRAGMA synchronous: the per-connection settings
    private readonly SemaphoreSlim _writeGate = new(1, 1);

    public SqliteDatabase(SqliteTaskStoreOptions options)
    {
        var builder = new SqliteConnectionStringBuilder(options.ConnectionString)
        {
            // Microsoft.Data.Sqlite's own retry loop on SQLITE_BUSY ends with the command timeout: keep the two alike.
            DefaultTimeout = (int)Math.Ceiling(options.BusyTimeout.TotalSeconds),
        };
        _connectionString = builder.ConnectionString;
        FilePath = Path.GetFullPath(builder.DataSource);
        _busyTimeoutPragma = SqliteQueries.BusyTimeoutPragma + ((long)options.BusyTimeout.TotalMilliseconds).ToString(CultureInfo.InvariantCulture)
            + (options.Synchronous == SqliteSynchronousMode.Normal ? SqliteQueries.SynchronousNormal : SqliteQueries.SynchronousFull);
    }

    /// <summary>The database file's full path.</summary>
    public string FilePath { get; }

    /// <summary>Opens a connection with the busy timeout set; the caller disposes it.</summary>
    public async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            using var pragma = connection.CreateCommand();
            pragma.CommandText = _busyTimeoutPragma;
            await pragma.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Runs a read on a connection of its own (autocommit: one statement sees one snapshot).</summary>
    public async Task<TResult> ReadAsync<TState, TResult>(string operation, TState state,
        Func<SqliteConnection, TState, CancellationToken, Task<TResult>> body, CancellationToken cancellationToken)
    {
        try
        {
            var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
                return await body(connection, state, cancellationToken).ConfigureAwait(false);
        }
        catch (SqliteException ex) when (Translate(operation, ex) is { } translated)
        {
            throw translated;
        }
    }

    /// <summary>
    /// Runs <paramref name="body"/> inside one <c>BEGIN IMMEDIATE</c> transaction (the write lock is taken at BEGIN, so a
    /// read in the body can never be overtaken by another writer) and commits; an exception rolls it back.
    /// </summary>
    public async Task<TResult> WriteAsync<TState, TResult>(string operation, TState state,
        Func<SqliteConnection, SqliteTransaction, TState, CancellationToken, Task<TResult>> body, CancellationToken cancellationToken)
    {
        await _writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                // deferred: false is BEGIN IMMEDIATE (Microsoft.Data.Sqlite's transactions are synchronous anyway).
                var transaction = connection.BeginTransaction(deferred: false);
                await using (transaction.ConfigureAwait(false))
                {
                    var result = await body(connection, transaction, state, cancellationToken).ConfigureAwait(false);
                    await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                    return result;
                }
            }
        }
        catch (SqliteException ex) when (Translate(operation, ex) is { } translated)
        {
            throw translated;
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <summary>Runs <paramref name="body"/> in the caller's own transaction, with the same error mapping.</summary>
    public async Task<TResult> GuardAsync<TResult>(string operation, Func<Task<TResult>> body)
    {
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (SqliteException ex) when (Translate(operation, ex) is { } translated)
        {
            throw translated;
        }
    }

    /// <summary>Closes this database's idle pooled connections (and with the last one, the WAL's shared-memory file).</summary>
    public void ClearPool()
    {
        using var connection = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(connection);
    }

    /// <summary>The contract's exception for <paramref name="ex"/>, or null to let it pass as it is.</summary>
    private KonduitException? Translate(string operation, SqliteException ex) => ex.SqliteErrorCode switch
    {
        // SQLITE_ERROR "no such table": the file exists but was never migrated.
        1 when ex.Message.Contains("no such table", StringComparison.Ordinal) => new KonduitException(
            $"Konduit's tables do not exist in {FilePath}: run SqliteTaskStore.MigrateAsync() (or `konduit migrate`, or MigrateOnStartup) before using the store.", ex),
        // SQLITE_BUSY, SQLITE_LOCKED (the busy timeout passed), SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_PROTOCOL.
        5 or 6 or 10 or 13 or 14 or 15 => new StoreUnavailableException(StoreName, operation, ex),
        _ => null,
    };
}
