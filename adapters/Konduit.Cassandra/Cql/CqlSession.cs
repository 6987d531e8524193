using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

namespace Konduit.Cassandra.Cql;

/// <summary>
/// A CQL session over one multiplexed connection to one node (native protocol v4, or v3 when the server refuses v4).
/// Connects lazily on the first call; when the connection breaks, the requests in flight fail with
/// <see cref="CqlConnectionException"/> and the next call reconnects. Statements are prepared and cached by
/// their text; values are always sent as bound parameters, never spliced into CQL. Thread-safe.
/// </summary>
public sealed class CqlSession : IAsyncDisposable
{
    private readonly CqlSessionOptions _options;
    private readonly SemaphoreSlim _connectLock = new(1, 1);
    private readonly ConcurrentDictionary<string, CqlPreparedStatement> _prepared = new(StringComparer.Ordinal);
    private CqlConnector? _connector;
    private int? _negotiatedVersion;
    private volatile bool _disposed;

    /// <summary>Creates a session; nothing connects until the first call.</summary>
    /// <param name="options">The settings (validated here).</param>
    public CqlSession(CqlSessionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
    }

    /// <summary>The protocol version of the current connection; null before the first connection.</summary>
    public int? ProtocolVersion => Volatile.Read(ref _connector)?.Version;

    /// <summary>Connects now (otherwise the first request does), negotiating the protocol version.</summary>
    /// <param name="cancellationToken">Cancels the connection attempt.</param>
    public async Task ConnectAsync(CancellationToken cancellationToken = default) =>
        await GetConnectorAsync(cancellationToken).ConfigureAwait(false);

    /// <summary>Asks the server which STARTUP options it supports (OPTIONS → SUPPORTED).</summary>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <returns>Option names and their supported values, such as CQL_VERSION and COMPRESSION.</returns>
    public async Task<IReadOnlyDictionary<string, IReadOnlyList<string>>> GetSupportedOptionsAsync(CancellationToken cancellationToken = default)
    {
        var connector = await GetConnectorAsync(cancellationToken).ConfigureAwait(false);
        var frame = await connector.SendAsync(CqlOpcode.Options, CqlRequests.Options(), _options.RequestTimeout, cancellationToken)
            .ConfigureAwait(false);
        return CqlResponses.ParseSupported(CqlResponses.Expect(frame, CqlOpcode.Supported, out _));
    }

    /// <summary>Prepares <paramref name="cql"/>, or returns the cached statement.</summary>
    /// <param name="cql">The statement, with <c>?</c> bind markers.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <returns>The prepared statement.</returns>
    public async Task<CqlPreparedStatement> PrepareAsync(string cql, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(cql);
        if (_prepared.TryGetValue(cql, out var cached))
            return cached;
        var result = await RequestAsync(CqlOpcode.Prepare, _ => CqlRequests.Prepare(cql), null, cql, cancellationToken).ConfigureAwait(false);
        var prepared = result.Prepared ?? throw new CqlMalformedFrameException($"PREPARE was answered with a {result.Kind} result.");
        return _prepared.GetOrAdd(cql, prepared);
    }

    /// <summary>Executes one statement (prepared and cached unless <see cref="CqlQueryOptions.Prepare"/> is false).
    /// For a SELECT the result holds the first page; use <see cref="QueryAsync(string, IReadOnlyList{object?}?, CqlQueryOptions?, CancellationToken)"/> for all rows.</summary>
    /// <param name="cql">The statement, with <c>?</c> bind markers.</param>
    /// <param name="values">The bound values (null, <see cref="CqlUnset.Value"/> on v4, or a supported .NET value).</param>
    /// <param name="options">Per-request settings.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <returns>The result.</returns>
    public async Task<CqlResult> ExecuteAsync(
        string cql, IReadOnlyList<object?>? values = null, CqlQueryOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(cql);
        if (options is { Prepare: false })
            return await QueryPageAsync(cql, values, options, options.PagingState, cancellationToken).ConfigureAwait(false);
        var prepared = await PrepareAsync(cql, cancellationToken).ConfigureAwait(false);
        return await ExecuteAsync(prepared, values, options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Executes a prepared statement (re-preparing once if the node forgot it).</summary>
    /// <param name="statement">The statement.</param>
    /// <param name="values">The bound values, one per marker.</param>
    /// <param name="options">Per-request settings.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <returns>The result.</returns>
    public Task<CqlResult> ExecuteAsync(
        CqlPreparedStatement statement, IReadOnlyList<object?>? values = null, CqlQueryOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(statement);
        return ExecutePageAsync(statement, statement.Bind(values), options, options?.PagingState, cancellationToken);
    }

    /// <summary>Runs a SELECT and streams every row, fetching page after page (page size from the options).</summary>
    /// <param name="cql">The SELECT, with <c>?</c> bind markers.</param>
    /// <param name="values">The bound values.</param>
    /// <param name="options">Per-request settings (page size, consistency, timeout per page).</param>
    /// <param name="cancellationToken">Cancels the enumeration.</param>
    /// <returns>The rows.</returns>
    public async IAsyncEnumerable<CqlRow> QueryAsync(
        string cql, IReadOnlyList<object?>? values = null, CqlQueryOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(cql);
        var prepared = options is { Prepare: false } ? null : await PrepareAsync(cql, cancellationToken).ConfigureAwait(false);
        var bound = prepared?.Bind(values);
        var pagingState = options?.PagingState;
        do
        {
            var page = prepared is null
                ? await QueryPageAsync(cql, values, options, pagingState, cancellationToken).ConfigureAwait(false)
                : await ExecutePageAsync(prepared, bound!, options, pagingState, cancellationToken).ConfigureAwait(false);
            foreach (var row in page.Rows)
                yield return row;
            pagingState = page.PagingState;
        }
        while (pagingState is not null);
    }

    /// <summary>Sends <paramref name="batch"/> as one BATCH request (re-preparing once on UNPREPARED).</summary>
    /// <param name="batch">The statements.</param>
    /// <param name="options">Consistency, serial consistency, default timestamp and timeout.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <returns>The result (Void, or Rows for a conditional batch).</returns>
    public async Task<CqlResult> ExecuteBatchAsync(CqlBatch batch, CqlQueryOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Count == 0)
            throw new ArgumentException("The batch is empty.", nameof(batch));
        var prepared = new CqlPreparedStatement?[batch.Count];
        var values = new IReadOnlyList<CqlValue>[batch.Count];
        for (var i = 0; i < batch.Count; i++)
        {
            var statement = batch.Statements[i];
            if (statement.Prepare)
            {
                prepared[i] = await PrepareAsync(statement.Cql, cancellationToken).ConfigureAwait(false);
                values[i] = prepared[i]!.Bind(statement.Values);
            }
            else
            {
                values[i] = InferValues(statement.Values);
            }
        }
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await RequestAsync(CqlOpcode.Batch, version => CqlRequests.Batch(
                        batch.Type,
                        batch.Statements.Select((s, i) => new CqlBatchEntry(prepared[i] is null ? s.Cql : null, prepared[i]?.Id, values[i])).ToArray(),
                        Consistency(options),
                        options?.SerialConsistency,
                        options?.DefaultTimestamp,
                        version),
                    options, null, cancellationToken).ConfigureAwait(false);
            }
            catch (CqlUnpreparedException ex) when (attempt == 0)
            {
                foreach (var statement in prepared.Where(p => p is not null && p.Id.AsSpan().SequenceEqual(ex.PreparedIdBytes)).Distinct())
                    await RePrepareAsync(statement!, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task<CqlResult> ExecutePageAsync(
        CqlPreparedStatement statement, IReadOnlyList<CqlValue> values, CqlQueryOptions? options, byte[]? pagingState,
        CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                var id = statement.Id;
                return await RequestAsync(CqlOpcode.Execute,
                    version => CqlRequests.Execute(id, Parameters(options, values, pagingState), version),
                    options, null, cancellationToken).ConfigureAwait(false);
            }
            catch (CqlUnpreparedException) when (attempt == 0)
            {
                // The node forgot the statement (restart, schema change, cache eviction): prepare again, retry once.
                await RePrepareAsync(statement, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private Task<CqlResult> QueryPageAsync(
        string cql, IReadOnlyList<object?>? values, CqlQueryOptions? options, byte[]? pagingState, CancellationToken cancellationToken)
    {
        var encoded = InferValues(values);
        return RequestAsync(CqlOpcode.Query,
            version => CqlRequests.Query(cql, Parameters(options, encoded, pagingState), version),
            options, null, cancellationToken);
    }

    private async Task RePrepareAsync(CqlPreparedStatement statement, CancellationToken cancellationToken)
    {
        var result = await RequestAsync(CqlOpcode.Prepare, _ => CqlRequests.Prepare(statement.Cql), null, statement.Cql, cancellationToken)
            .ConfigureAwait(false);
        statement.Id = result.Prepared?.Id ?? throw new CqlMalformedFrameException($"PREPARE was answered with a {result.Kind} result.");
    }

    private static IReadOnlyList<CqlValue> InferValues(IReadOnlyList<object?>? values)
    {
        if (values is null || values.Count == 0)
            return [];
        var encoded = new CqlValue[values.Count];
        for (var i = 0; i < encoded.Length; i++)
        {
            encoded[i] = values[i] switch
            {
                null => CqlValue.Null,
                CqlUnset => CqlValue.Unset,
                var value => CqlValue.Of(CqlCodec.EncodeNonNull(CqlCodec.InferType(value), value)),
            };
        }
        return encoded;
    }

    private CqlConsistency Consistency(CqlQueryOptions? options) => options?.Consistency ?? _options.DefaultConsistency;

    private CqlQueryParameters Parameters(CqlQueryOptions? options, IReadOnlyList<CqlValue> values, byte[]? pagingState) =>
        new(Consistency(options), values, options?.PageSize ?? _options.DefaultPageSize, pagingState,
            options?.SerialConsistency, options?.DefaultTimestamp);

    private async Task<CqlResult> RequestAsync(
        CqlOpcode opcode, Func<int, byte[]> body, CqlQueryOptions? options, string? cql, CancellationToken cancellationToken)
    {
        var connector = await GetConnectorAsync(cancellationToken).ConfigureAwait(false);
        var flags = options is { Tracing: true } ? CqlFrameFlags.Tracing : CqlFrameFlags.None;
        var frame = await connector.SendAsync(opcode, body(connector.Version), flags, options?.Timeout ?? _options.RequestTimeout, cancellationToken)
            .ConfigureAwait(false);
        return ParseResult(frame, cql);
    }

    private static CqlResult ParseResult(CqlFrame frame, string? cql)
    {
        var payload = CqlResponses.Expect(frame, CqlOpcode.Result, out var warnings, out var tracingId);
        var result = CqlResponses.ParseResult(payload, frame.Header.ProtocolVersion, cql);
        result.Warnings = warnings;
        result.TracingId = tracingId;
        return result;
    }

    internal async ValueTask<CqlConnector> GetConnectorAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Volatile.Read(ref _connector) is { IsFaulted: false } current)
            return current;
        await _connectLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_connector is { IsFaulted: false } again)
                return again;
            if (_connector is { } broken)
                await broken.DisposeAsync().ConfigureAwait(false);
            // A reconnect offers the version negotiated before, so a v3-only server is not probed with v4 again.
            var connector = await CqlConnector.OpenAsync(_options, _negotiatedVersion ?? _options.MaxProtocolVersion, cancellationToken)
                .ConfigureAwait(false);
            _negotiatedVersion = connector.Version;
            if (_options.Keyspace is { } keyspace)
            {
                try
                {
                    // An identifier validated as plain in CqlSessionOptions.Validate, not data.
                    var frame = await connector.SendAsync(CqlOpcode.Query,
                        CqlRequests.Query("USE " + keyspace, new CqlQueryParameters(_options.DefaultConsistency, []), connector.Version),
                        _options.ConnectTimeout, cancellationToken).ConfigureAwait(false);
                    ParseResult(frame, null);
                }
                catch
                {
                    await connector.DisposeAsync().ConfigureAwait(false);
                    throw;
                }
            }
            Volatile.Write(ref _connector, connector);
            return connector;
        }
        finally
        {
            _connectLock.Release();
        }
    }

    /// <summary>Closes the connection; requests in flight fail with <see cref="CqlConnectionException"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        _disposed = true;
        if (Interlocked.Exchange(ref _connector, null) is { } connector)
            await connector.DisposeAsync().ConfigureAwait(false);
    }
}
