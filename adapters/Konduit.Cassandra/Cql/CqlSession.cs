using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

namespace Konduit.Cassandra.Cql;

/// <summary>
/// A CQL session over one multiplexed connection per node (native protocol v4, or v3 when the server refuses v4).
/// Connects lazily to any contact point; with <see cref="CqlSessionOptions.DiscoverPeers"/> it learns the other nodes
/// from <c>system.peers</c>. Requests go round-robin over the nodes that are up; a node whose connection fails is
/// marked down for a backoff and its requests move to the next node (requests that may have reached the server only
/// when <see cref="CqlQueryOptions.IsIdempotent"/>). Statements are prepared once per text (concurrent first uses
/// share one PREPARE) and re-prepared on the node that answers UNPREPARED. Values are always bound. Thread-safe.
/// Not token-aware: the coordinator forwards to the replicas (docs/adr/005).
/// </summary>
internal sealed class CqlSession : IAsyncDisposable
{
    private static readonly TimeSpan DiscoveryInterval = TimeSpan.FromSeconds(30);

    private readonly CqlSessionOptions _options;
    private readonly ConcurrentDictionary<string, Task<CqlPreparedStatement>> _prepared = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _discoveryLock = new(1, 1);
    private readonly Lock _hostsGate = new();
    private CqlHost[] _hosts;
    private int _next = -1;
    private int? _negotiatedVersion;
    private long _lastDiscovery;
    private volatile bool _disposed;

    /// <summary>Creates a session; nothing connects until the first call.</summary>
    /// <param name="options">The settings (validated here).</param>
    public CqlSession(CqlSessionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _hosts = [.. options.Endpoints().Select(e => new CqlHost(e.Host, e.Port))];
    }

    /// <summary>The protocol version negotiated with the nodes; null before the first connection.</summary>
    public int? ProtocolVersion => _negotiatedVersion;

    /// <summary>The nodes known: the contact points and, once discovered, their peers.</summary>
    internal IReadOnlyList<CqlHost> Hosts => Volatile.Read(ref _hosts);

    /// <summary>Connects now (otherwise the first request does), negotiating the protocol version.</summary>
    /// <param name="cancellationToken">Cancels the connection attempt.</param>
    public async Task ConnectAsync(CancellationToken cancellationToken = default) =>
        await GetConnectorAsync(cancellationToken).ConfigureAwait(false);

    /// <summary>Asks the server which STARTUP options it supports (OPTIONS → SUPPORTED).</summary>
    public async Task<IReadOnlyDictionary<string, IReadOnlyList<string>>> GetSupportedOptionsAsync(CancellationToken cancellationToken = default)
    {
        var connector = await GetConnectorAsync(cancellationToken).ConfigureAwait(false);
        var frame = await connector.SendAsync(CqlOpcode.Options, CqlRequests.Options(), _options.RequestTimeout, cancellationToken)
            .ConfigureAwait(false);
        return CqlResponses.ParseSupported(CqlResponses.Expect(frame, CqlOpcode.Supported, out _));
    }

    /// <summary>Prepares <paramref name="cql"/>, or returns the cached statement. Concurrent first calls share one PREPARE.</summary>
    public async Task<CqlPreparedStatement> PrepareAsync(string cql, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(cql);
        var task = _prepared.GetOrAdd(cql, static (text, session) => session.PrepareCoreAsync(text), this);
        try
        {
            return await task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception) when (task.IsFaulted || task.IsCanceled)
        {
            // A failed PREPARE is not cached: the next caller tries again.
            _prepared.TryRemove(new KeyValuePair<string, Task<CqlPreparedStatement>>(cql, task));
            throw;
        }
    }

    // Not tied to the first caller's token: other callers wait on the same PREPARE (bounded by the request timeout).
    private async Task<CqlPreparedStatement> PrepareCoreAsync(string cql)
    {
        await Task.Yield();
        var result = await SendAsync(CqlOpcode.Prepare, _ => CqlRequests.Prepare(cql), new CqlQueryOptions { IsIdempotent = true }, cql, [], CancellationToken.None)
            .ConfigureAwait(false);
        return result.Prepared ?? throw new CqlMalformedFrameException($"PREPARE was answered with a {result.Kind} result.");
    }

    /// <summary>Executes one statement (prepared and cached unless <see cref="CqlQueryOptions.Prepare"/> is false).</summary>
    public async Task<CqlResult> ExecuteAsync(
        string cql, IReadOnlyList<object?>? values = null, CqlQueryOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(cql);
        if (options is { Prepare: false })
            return await QueryPageAsync(cql, values, options, options.PagingState, cancellationToken).ConfigureAwait(false);
        var prepared = await PrepareAsync(cql, cancellationToken).ConfigureAwait(false);
        return await ExecuteAsync(prepared, values, options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Executes a prepared statement (re-preparing once on the node that forgot it).</summary>
    public Task<CqlResult> ExecuteAsync(
        CqlPreparedStatement statement, IReadOnlyList<object?>? values = null, CqlQueryOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(statement);
        return ExecutePageAsync(statement, statement.Bind(values), options, options?.PagingState, cancellationToken);
    }

    /// <summary>Runs a SELECT and streams every row, fetching page after page (page size from the options).</summary>
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
                prepared[i] = statement.Prepared ?? await PrepareAsync(statement.Cql, cancellationToken).ConfigureAwait(false);
                values[i] = prepared[i]!.Bind(statement.Values);
            }
            else
            {
                values[i] = InferValues(statement.Values);
            }
        }
        return await SendAsync(CqlOpcode.Batch, version => CqlRequests.Batch(
                batch.Type,
                batch.Statements.Select((s, i) => new CqlBatchEntry(prepared[i] is null ? s.Cql : null, prepared[i]?.Id, values[i])).ToArray(),
                Consistency(options),
                options?.SerialConsistency,
                options?.DefaultTimestamp,
                version),
            options, null, [.. prepared.OfType<CqlPreparedStatement>().Distinct()], cancellationToken).ConfigureAwait(false);
    }

    private Task<CqlResult> ExecutePageAsync(
        CqlPreparedStatement statement, IReadOnlyList<CqlValue> values, CqlQueryOptions? options, byte[]? pagingState,
        CancellationToken cancellationToken) =>
        SendAsync(CqlOpcode.Execute, version => CqlRequests.Execute(statement.Id, Parameters(options, values, pagingState), version),
            options, null, [statement], cancellationToken);

    private Task<CqlResult> QueryPageAsync(
        string cql, IReadOnlyList<object?>? values, CqlQueryOptions? options, byte[]? pagingState, CancellationToken cancellationToken)
    {
        var encoded = InferValues(values);
        return SendAsync(CqlOpcode.Query,
            version => CqlRequests.Query(cql, Parameters(options, encoded, pagingState), version),
            options, null, [], cancellationToken);
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

    /// <summary>
    /// Sends one request along the query plan: the next node that is up, then the others. A node that cannot be
    /// connected to is marked down and the next one tried (nothing was sent); a connection lost after sending moves
    /// on only for idempotent requests. UNPREPARED is answered by preparing on that same node and retrying there once.
    /// </summary>
    private async Task<CqlResult> SendAsync(
        CqlOpcode opcode, Func<int, byte[]> body, CqlQueryOptions? options, string? cql, IReadOnlyList<CqlPreparedStatement> prepared,
        CancellationToken cancellationToken)
    {
        Exception? last = null;
        foreach (var host in QueryPlan())
        {
            CqlConnector connector;
            try
            {
                connector = await host.GetConnectorAsync(this, cancellationToken).ConfigureAwait(false);
            }
            catch (CqlConnectionException ex)
            {
                host.MarkDown();
                last = ex;
                continue;
            }
            try
            {
                var result = await SendOnAsync(host, connector, opcode, body, options, cql, prepared, cancellationToken).ConfigureAwait(false);
                host.MarkUp();
                return result;
            }
            catch (CqlConnectionException ex) when (options is { IsIdempotent: true })
            {
                host.MarkDown();
                last = ex;
            }
            catch (CqlServerException ex) when (options is { IsIdempotent: true } && ex is CqlIsBootstrappingException or CqlOverloadedException)
            {
                last = ex;
            }
        }
        throw last ?? new CqlConnectionException("No node to send the request to.");
    }

    private async Task<CqlResult> SendOnAsync(
        CqlHost host, CqlConnector connector, CqlOpcode opcode, Func<int, byte[]> body, CqlQueryOptions? options, string? cql,
        IReadOnlyList<CqlPreparedStatement> prepared, CancellationToken cancellationToken)
    {
        var flags = options is { Tracing: true } ? CqlFrameFlags.Tracing : CqlFrameFlags.None;
        for (var attempt = 0; ; attempt++)
        {
            host.CountRequest();
            try
            {
                var frame = await connector.SendAsync(opcode, body(connector.Version), flags, options?.Timeout ?? _options.RequestTimeout, cancellationToken)
                    .ConfigureAwait(false);
                return ParseResult(frame, cql);
            }
            catch (CqlUnpreparedException ex) when (attempt == 0 && prepared.Count > 0)
            {
                // This node forgot (or never saw) the statement: restart, schema change, or another node prepared it.
                // The reply names only the first unknown id, and a batch's other statements are just as likely
                // unknown on this node (a ring spreads requests), so every statement of the request is prepared here
                // before the one retry.
                ex.RequestOpcode = opcode;
                foreach (var statement in prepared.Distinct())
                    await RePrepareAsync(host, connector, statement, cancellationToken).ConfigureAwait(false);
            }
            catch (CqlServerException ex)
            {
                ex.RequestOpcode ??= opcode;
                throw;
            }
        }
    }

    private async Task RePrepareAsync(CqlHost host, CqlConnector connector, CqlPreparedStatement statement, CancellationToken cancellationToken)
    {
        host.CountRequest();
        var frame = await connector.SendAsync(CqlOpcode.Prepare, CqlRequests.Prepare(statement.Cql), _options.RequestTimeout, cancellationToken)
            .ConfigureAwait(false);
        CqlResult result;
        try
        {
            result = ParseResult(frame, statement.Cql);
        }
        catch (CqlServerException ex)
        {
            ex.RequestOpcode = CqlOpcode.Prepare;
            throw;
        }
        statement.Id = result.Prepared?.Id ?? throw new CqlMalformedFrameException($"PREPARE was answered with a {result.Kind} result.");
    }

    private static CqlResult ParseResult(CqlFrame frame, string? cql)
    {
        var payload = CqlResponses.Expect(frame, CqlOpcode.Result, out var warnings, out var tracingId);
        var result = CqlResponses.ParseResult(payload, frame.Header.ProtocolVersion, cql);
        result.Warnings = warnings;
        result.TracingId = tracingId;
        return result;
    }

    /// <summary>Round-robin over the nodes: those that are up first, from the next one on; then the ones marked down.</summary>
    private IEnumerable<CqlHost> QueryPlan()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var hosts = Volatile.Read(ref _hosts);
        var start = (int)((uint)Interlocked.Increment(ref _next) % (uint)hosts.Length);
        var down = new List<CqlHost>();
        for (var i = 0; i < hosts.Length; i++)
        {
            var host = hosts[(start + i) % hosts.Length];
            if (host.IsUp) yield return host;
            else down.Add(host);
        }
        foreach (var host in down)
            yield return host;
    }

    /// <summary>The connector of the next node in the plan (tests reach below the session with it).</summary>
    internal async ValueTask<CqlConnector> GetConnectorAsync(CancellationToken cancellationToken)
    {
        Exception? last = null;
        foreach (var host in QueryPlan())
        {
            try
            {
                return await host.GetConnectorAsync(this, cancellationToken).ConfigureAwait(false);
            }
            catch (CqlConnectionException ex)
            {
                host.MarkDown();
                last = ex;
            }
        }
        throw last ?? new CqlConnectionException("No node to connect to.");
    }

    /// <summary>Opens a connection to <paramref name="host"/>: STARTUP, USE keyspace, then (at most every 30 s) peer discovery.</summary>
    internal async Task<CqlConnector> OpenAsync(CqlHost host, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        // A reconnect offers the version negotiated before, so a v3-only server is not probed with v4 again.
        var connector = await CqlConnector.OpenAsync(_options, host.Address, host.Port, _negotiatedVersion ?? _options.MaxProtocolVersion, cancellationToken)
            .ConfigureAwait(false);
        _negotiatedVersion = connector.Version;
        try
        {
            if (_options.Keyspace is { } keyspace)
            {
                // An identifier validated as plain in CqlSessionOptions.Validate, not data.
                var frame = await connector.SendAsync(CqlOpcode.Query,
                    CqlRequests.Query("USE " + keyspace, new CqlQueryParameters(_options.DefaultConsistency, []), connector.Version),
                    _options.ConnectTimeout, cancellationToken).ConfigureAwait(false);
                ParseResult(frame, null);
            }
            if (_options.DiscoverPeers)
                await DiscoverAsync(host, connector, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await connector.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return connector;
    }

    // system.peers lists every other node with the address clients should use (rpc_address; peer when that is 0.0.0.0).
    // Cassandra before 4.0 has no native port there: peers are assumed to listen on the contact point's port.
    private const string PeersQuery = "SELECT peer, rpc_address FROM system.peers";

    private async Task DiscoverAsync(CqlHost via, CqlConnector connector, CancellationToken cancellationToken)
    {
        var now = Environment.TickCount64;
        var last = Interlocked.Read(ref _lastDiscovery);
        if ((last != 0 && now - last < (long)DiscoveryInterval.TotalMilliseconds) || !await _discoveryLock.WaitAsync(0, cancellationToken).ConfigureAwait(false))
            return;
        try
        {
            var frame = await connector.SendAsync(CqlOpcode.Query,
                CqlRequests.Query(PeersQuery, new CqlQueryParameters(CqlConsistency.One, []), connector.Version),
                _options.ConnectTimeout, cancellationToken).ConfigureAwait(false);
            var result = ParseResult(frame, null);
            var found = new List<string>();
            foreach (var row in result.Rows)
            {
                var address = row[1] as System.Net.IPAddress;
                if (address is null || address.Equals(System.Net.IPAddress.Any) || address.Equals(System.Net.IPAddress.IPv6Any))
                    address = row[0] as System.Net.IPAddress;
                if (address is not null)
                    found.Add(address.ToString());
            }
            lock (_hostsGate)
            {
                var known = _hosts.ToList();
                foreach (var address in found.Where(a => !known.Any(h => h.Address == a && h.Port == via.Port)))
                    known.Add(new CqlHost(address, via.Port));
                Volatile.Write(ref _hosts, [.. known]);
            }
            Interlocked.Exchange(ref _lastDiscovery, now);
        }
        finally
        {
            _discoveryLock.Release();
        }
    }

    /// <summary>Closes every connection; requests in flight fail with <see cref="CqlConnectionException"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        _disposed = true;
        foreach (var host in Volatile.Read(ref _hosts))
            await host.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>One node: its connection (opened lazily, replaced when it breaks) and whether it is marked down.</summary>
internal sealed class CqlHost(string address, int port) : IAsyncDisposable
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(10);

    private readonly SemaphoreSlim _connectLock = new(1, 1);
    private CqlConnector? _connector;
    private long _downUntil;
    private int _failures;
    private long _requests;

    public string Address { get; } = address;

    public int Port { get; } = port;

    public string Endpoint => $"{Address}:{Port}";

    /// <summary>Requests sent to this node (counted by the session; tests check the spread).</summary>
    public long Requests => Interlocked.Read(ref _requests);

    public bool IsUp => Environment.TickCount64 >= Interlocked.Read(ref _downUntil);

    public void CountRequest() => Interlocked.Increment(ref _requests);

    /// <summary>Skip this node for a backoff that doubles with each failure (100 ms … 10 s).</summary>
    public void MarkDown()
    {
        var failures = Math.Min(Interlocked.Increment(ref _failures), 7);
        var backoff = Math.Min(100L << failures, (long)MaxBackoff.TotalMilliseconds);
        Interlocked.Exchange(ref _downUntil, Environment.TickCount64 + backoff);
    }

    public void MarkUp()
    {
        if (Volatile.Read(ref _failures) == 0) return;
        Interlocked.Exchange(ref _failures, 0);
        Interlocked.Exchange(ref _downUntil, 0);
    }

    public async ValueTask<CqlConnector> GetConnectorAsync(CqlSession session, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _connector) is { IsFaulted: false } current)
            return current;
        await _connectLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_connector is { IsFaulted: false } again)
                return again;
            if (_connector is { } broken)
                await broken.DisposeAsync().ConfigureAwait(false);
            var connector = await session.OpenAsync(this, cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _connector, connector);
            return connector;
        }
        finally
        {
            _connectLock.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _connector, null) is { } connector)
            await connector.DisposeAsync().ConfigureAwait(false);
    }
}
