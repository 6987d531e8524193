using System.Collections.Concurrent;
using System.Net.Sockets;

namespace Konduit.Cassandra.Cql;

/// <summary>
/// One connection: frames with stream-id multiplexing (many requests in flight, one reader loop). A stream id is
/// reused only after its response arrived, so a late answer to a timed-out request can never be taken for another
/// request's. When the connection breaks, every request in flight fails with <see cref="CqlConnectionException"/>
/// and the connector stays faulted (the session opens a new one).
/// </summary>
internal sealed class CqlConnector : IAsyncDisposable
{
    /// <summary>host:port of the node.</summary>
    public string Endpoint => _endpoint;

    private readonly Stream _stream;
    private readonly IDisposable? _owner;
    private readonly string _endpoint;
    private readonly PendingRequest?[] _slots;
    private readonly ConcurrentQueue<short> _freeStreams = new();
    private readonly SemaphoreSlim _streamGate;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly CancellationTokenSource _closed = new();
    private Exception? _failure;
    private Task _reader = Task.CompletedTask;

    internal CqlConnector(Stream stream, IDisposable? owner, string endpoint, int version, int maxInFlight)
    {
        _stream = stream;
        _owner = owner;
        _endpoint = endpoint;
        Version = version;
        _slots = new PendingRequest?[maxInFlight];
        for (short i = 0; i < maxInFlight; i++)
            _freeStreams.Enqueue(i);
        _streamGate = new SemaphoreSlim(maxInFlight, maxInFlight);
    }

    /// <summary>The negotiated protocol version.</summary>
    public int Version { get; }

    public bool IsFaulted => Volatile.Read(ref _failure) is not null;

    /// <summary>Requests waiting for a response (including timed-out ones whose answer has not come yet).</summary>
    public int InFlight => _slots.Length - _streamGate.CurrentCount;

    /// <summary>Opens a connection and completes STARTUP (and authentication), offering v4 first and falling back to
    /// v3 when the server refuses v4 (Cassandra 2.1 answers a v4 STARTUP with an ERROR frame of version 0x83).</summary>
    /// <param name="options">The session options.</param>
    /// <param name="maxVersion">The version to offer first: the options' maximum, or what an earlier connection negotiated.</param>
    /// <param name="cancellationToken">Cancels the attempt.</param>
    public static Task<CqlConnector> OpenAsync(CqlSessionOptions options, int maxVersion, CancellationToken cancellationToken) =>
        OpenAsync(options, options.Host, options.Port, maxVersion, cancellationToken);

    /// <summary>As <see cref="OpenAsync(CqlSessionOptions, int, CancellationToken)"/>, to the node at <paramref name="host"/>:<paramref name="port"/>.</summary>
    public static async Task<CqlConnector> OpenAsync(CqlSessionOptions options, string host, int port, int maxVersion, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.ConnectTimeout);
        var endpoint = $"{host}:{port}";
        try
        {
            for (var version = maxVersion; ; version--)
            {
                var connector = await ConnectAsync(options, host, port, endpoint, version, timeout.Token).ConfigureAwait(false);
                try
                {
                    await connector.StartupAsync(options, timeout.Token).ConfigureAwait(false);
                    return connector;
                }
                catch (VersionRefusedException) when (version > 3)
                {
                    await connector.DisposeAsync().ConfigureAwait(false);
                }
                catch (VersionRefusedException ex)
                {
                    await connector.DisposeAsync().ConfigureAwait(false);
                    throw new CqlConnectionException($"{endpoint} speaks neither protocol v4 nor v3: {ex.Message}");
                }
                catch
                {
                    await connector.DisposeAsync().ConfigureAwait(false);
                    throw;
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new CqlConnectionException($"Could not connect to {endpoint} within {options.ConnectTimeout}.");
        }
        catch (CqlRequestTimeoutException ex)
        {
            throw new CqlConnectionException($"{endpoint} did not complete the STARTUP handshake within {options.ConnectTimeout}.", ex);
        }
        catch (CqlException)
        {
            throw;
        }
        catch (System.Security.Authentication.AuthenticationException ex)
        {
            throw new CqlConnectionException($"TLS handshake with {endpoint} failed: {ex.Message}", ex);
        }
        catch (Exception ex) when (ex is SocketException or IOException)
        {
            throw new CqlConnectionException($"Could not connect to {endpoint}: {ex.Message}", ex);
        }
    }

    private static async Task<CqlConnector> ConnectAsync(CqlSessionOptions options, string host, int port, string endpoint, int version, CancellationToken cancellationToken)
    {
        var client = new TcpClient { NoDelay = true };
        try
        {
            await client.ConnectAsync(host, port, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            client.Dispose();
            throw;
        }
        Stream stream = client.GetStream();
        if (options.UseTls)
        {
            try
            {
                stream = await CqlTls.AuthenticateAsync(stream, options, host, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                client.Dispose();
                throw;
            }
        }
        var connector = new CqlConnector(stream, client, endpoint, version, options.MaxRequestsInFlight);
        connector.Start();
        return connector;
    }

    /// <summary>Starts the reader loop (separate from the constructor so tests can wrap any stream).</summary>
    internal void Start() => _reader = Task.Run(ReadLoopAsync);

    private async Task StartupAsync(CqlSessionOptions options, CancellationToken cancellationToken)
    {
        var frame = await SendAsync(CqlOpcode.Startup, CqlRequests.Startup(), options.ConnectTimeout, cancellationToken).ConfigureAwait(false);
        if (frame.Header.Opcode == CqlOpcode.Error && IsVersionRefusal(frame))
            throw new VersionRefusedException(CqlResponses.ParseError(frame.Body).Message);
        switch (frame.Header.Opcode)
        {
            case CqlOpcode.Ready:
                return;
            case CqlOpcode.Authenticate:
                var authenticator = CqlResponses.ParseAuthenticate(CqlResponses.Expect(frame, CqlOpcode.Authenticate, out _));
                await AuthenticateAsync(options, authenticator, cancellationToken).ConfigureAwait(false);
                return;
            default:
                CqlResponses.Expect(frame, CqlOpcode.Ready, out _);
                return;
        }
    }

    /// <summary>A refusal of the offered version: a protocol error, or an ERROR framed in another version.</summary>
    internal bool IsVersionRefusal(CqlFrame frame)
    {
        if (frame.Header.ProtocolVersion != Version)
            return true;
        try
        {
            var error = CqlResponses.ParseError(frame.Body);
            return error.Code == CqlErrorCode.ProtocolError
                || error.Message.Contains("protocol version", StringComparison.OrdinalIgnoreCase);
        }
        catch (CqlMalformedFrameException)
        {
            return false;
        }
    }

    private async Task AuthenticateAsync(CqlSessionOptions options, string authenticator, CancellationToken cancellationToken)
    {
        if (options.Username is null || options.Password is null)
            throw new CqlAuthenticationException($"{_endpoint} requires authentication ({authenticator}); set Username and Password.");
        var token = CqlRequests.PlainSaslToken(options.Username, options.Password);
        // PasswordAuthenticator answers the PLAIN initial response with AUTH_SUCCESS; a challenge gets the same token.
        for (var round = 0; round < 8; round++)
        {
            var frame = await SendAsync(CqlOpcode.AuthResponse, CqlRequests.AuthResponse(token), options.ConnectTimeout, cancellationToken)
                .ConfigureAwait(false);
            if (frame.Header.Opcode == CqlOpcode.AuthSuccess)
            {
                CqlResponses.Expect(frame, CqlOpcode.AuthSuccess, out _);
                return;
            }
            CqlResponses.Expect(frame, CqlOpcode.AuthChallenge, out _);
        }
        throw new CqlAuthenticationException($"{_endpoint} kept challenging after 8 SASL PLAIN responses.");
    }

    /// <summary>Sends one request and returns its response frame (which may be an ERROR: callers map it).</summary>
    public Task<CqlFrame> SendAsync(CqlOpcode opcode, byte[] body, TimeSpan timeout, CancellationToken cancellationToken) =>
        SendAsync(opcode, body, CqlFrameFlags.None, timeout, cancellationToken);

    /// <summary>Sends one request with frame <paramref name="flags"/> (tracing) and returns its response frame.</summary>
    public async Task<CqlFrame> SendAsync(CqlOpcode opcode, byte[] body, CqlFrameFlags flags, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ThrowIfFaulted();
        if (!_streamGate.Wait(0, CancellationToken.None))
        {
            // All stream ids busy: wait for one, but give up when the connection breaks or the timeout passes.
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closed.Token);
            bool acquired;
            try
            {
                acquired = await _streamGate.WaitAsync(timeout, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw ConnectionLost(_failure);
            }
            if (!acquired)
                throw new CqlRequestTimeoutException($"All {_slots.Length} stream ids to {_endpoint} stayed busy for {timeout}.", timeout);
        }
        if (!_freeStreams.TryDequeue(out var stream))
        {
            _streamGate.Release();
            throw new InvalidOperationException("No free stream id although the gate allowed one.");
        }
        var pending = new PendingRequest();
        Volatile.Write(ref _slots[stream], pending);
        if (IsFaulted)
        {
            // The failure sweep may have run before the slot was filled: fail this request the same way.
            pending.TrySetException(ConnectionLost(_failure));
        }
        else
        {
            var frame = CqlFrame.Encode((byte)Version, flags, stream, opcode, body);
            try
            {
                await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Nothing was written: the stream id goes straight back.
                Release(stream, pending);
                throw;
            }
            try
            {
                // Never cancel a write half-way: a partial frame would corrupt the connection for every request.
                await _stream.WriteAsync(frame, _closed.Token).ConfigureAwait(false);
                await _stream.FlushAsync(_closed.Token).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                Fail(ex);
            }
            finally
            {
                _writeLock.Release();
            }
        }
        try
        {
            return await pending.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new CqlRequestTimeoutException(
                $"No response from {_endpoint} to {opcode} within {timeout.TotalMilliseconds:0} ms.", timeout);
        }
    }

    private void Release(short stream, PendingRequest pending)
    {
        if (Interlocked.CompareExchange(ref _slots[stream], null, pending) == pending)
        {
            _freeStreams.Enqueue(stream);
            _streamGate.Release();
        }
    }

    private async Task ReadLoopAsync()
    {
        var header = new byte[CqlFrameHeader.Size];
        try
        {
            while (true)
            {
                await _stream.ReadExactlyAsync(header, _closed.Token).ConfigureAwait(false);
                var parsed = CqlFrameHeader.Read(header);
                if (!parsed.IsResponse)
                    throw new CqlMalformedFrameException($"Expected a response frame; version byte was 0x{parsed.Version:X2}.");
                var body = parsed.Length == 0 ? [] : new byte[parsed.Length];
                if (body.Length > 0)
                    await _stream.ReadExactlyAsync(body, _closed.Token).ConfigureAwait(false);
                var frame = new CqlFrame(parsed, body);
                if (parsed.Stream < 0)
                    continue; // EVENT frames (stream -1): this client registers for none.
                if (parsed.Stream >= _slots.Length || Volatile.Read(ref _slots[parsed.Stream]) is not { } pending)
                    continue; // Not ours (never sent); ignore rather than tear down every request.
                pending.TrySetResult(frame);
                Release(parsed.Stream, pending);
            }
        }
        catch (Exception ex)
        {
            Fail(ex is EndOfStreamException ? new IOException($"{_endpoint} closed the connection.", ex) : ex);
        }
    }

    private CqlConnectionException ConnectionLost(Exception? cause) =>
        cause as CqlConnectionException ?? new CqlConnectionException($"The connection to {_endpoint} was lost: {cause?.Message}", cause);

    private void Fail(Exception cause)
    {
        if (Interlocked.CompareExchange(ref _failure, cause, null) is not null)
            return;
        try
        {
            _closed.Cancel();
        }
        catch (AggregateException)
        {
            // Callbacks only; the socket is closed below either way.
        }
        _owner?.Dispose();
        _stream.Dispose();
        var error = ConnectionLost(cause);
        for (var i = 0; i < _slots.Length; i++)
            Interlocked.Exchange(ref _slots[i], null)?.TrySetException(error);
    }

    private void ThrowIfFaulted()
    {
        if (Volatile.Read(ref _failure) is { } failure)
            throw ConnectionLost(failure);
    }

    public async ValueTask DisposeAsync()
    {
        Fail(new CqlConnectionException($"The connection to {_endpoint} was closed by the client."));
        try
        {
            await _reader.ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The reader ends by failing the connector; nothing more to report.
        }
        // The semaphores and the token source are left to the GC: a caller racing with disposal may still touch them.
    }

    private sealed class PendingRequest() : TaskCompletionSource<CqlFrame>(TaskCreationOptions.RunContinuationsAsynchronously);

    private sealed class VersionRefusedException(string message) : Exception(message);
}
