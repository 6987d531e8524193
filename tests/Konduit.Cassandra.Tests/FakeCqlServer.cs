using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Konduit.Cassandra.Cql;

namespace Konduit.Cassandra.Tests;

/// <summary>
/// An in-process CQL server on a loopback socket that hands each request frame to a script. Tests gate responses on
/// what has arrived (never on time), so interleavings are deterministic.
/// </summary>
internal sealed class FakeCqlServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _acceptLoop;
    private readonly List<FakeConnection> _connections = [];

    public FakeCqlServer(Func<FakeConnection, CqlFrame, Task>? onRequest = null)
    {
        OnRequest = onRequest ?? DefaultHandler;
        _listener.Start();
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public Func<FakeConnection, CqlFrame, Task> OnRequest { get; set; }

    /// <summary>Every request frame received, in arrival order.</summary>
    public Channel<CqlFrame> Received { get; } = Channel.CreateUnbounded<CqlFrame>();

    public int ConnectionCount
    {
        get
        {
            lock (_connections)
                return _connections.Count;
        }
    }

    public CqlSessionOptions Options(Action<CqlSessionOptions>? configure = null)
    {
        var options = new CqlSessionOptions { Host = "127.0.0.1", Port = Port, RequestTimeout = TimeSpan.FromSeconds(10) };
        configure?.Invoke(options);
        return options;
    }

    /// <summary>STARTUP → READY in the request's version; QUERY → Void; OPTIONS → SUPPORTED.</summary>
    public static Task DefaultHandler(FakeConnection connection, CqlFrame request) => request.Header.Opcode switch
    {
        CqlOpcode.Startup => connection.ReplyAsync(request, CqlOpcode.Ready, []),
        CqlOpcode.Options => connection.ReplyAsync(request, CqlOpcode.Supported,
            Bytes.Build(w =>
            {
                w.WriteShort(1);
                w.WriteString("CQL_VERSION");
                w.WriteStringList(["3.4.0"]);
            })),
        _ => connection.ReplyAsync(request, CqlOpcode.Result, Bytes.Build(w => w.WriteInt(1))),
    };

    private async Task AcceptLoopAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                var connection = new FakeConnection(this, client);
                lock (_connections)
                    _connections.Add(connection);
                connection.Start(_stop.Token);
            }
        }
        catch (Exception) when (_stop.IsCancellationRequested)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        await _acceptLoop;
        FakeConnection[] connections;
        lock (_connections)
            connections = [.. _connections];
        foreach (var connection in connections)
            connection.Abort();
        _stop.Dispose();
    }

    internal async Task DispatchAsync(FakeConnection connection, CqlFrame frame)
    {
        await Received.Writer.WriteAsync(frame);
        await OnRequest(connection, frame);
    }
}

internal sealed class FakeConnection(FakeCqlServer server, TcpClient client)
{
    private readonly NetworkStream _stream = client.GetStream();
    private readonly SemaphoreSlim _writeLock = new(1, 1);

    public void Start(CancellationToken cancellationToken) => _ = Task.Run(() => ReadLoopAsync(cancellationToken), cancellationToken);

    private async Task ReadLoopAsync(CancellationToken cancellationToken)
    {
        var header = new byte[CqlFrameHeader.Size];
        try
        {
            while (true)
            {
                await _stream.ReadExactlyAsync(header, cancellationToken);
                var parsed = CqlFrameHeader.Read(header);
                var body = new byte[parsed.Length];
                await _stream.ReadExactlyAsync(body, cancellationToken);
                // Handlers run concurrently so a script can hold one request while answering others.
                _ = server.DispatchAsync(this, new CqlFrame(parsed, body));
            }
        }
        catch (Exception)
        {
            Abort();
        }
    }

    /// <summary>Answers <paramref name="request"/> on its stream, framed in its version.</summary>
    public Task ReplyAsync(CqlFrame request, CqlOpcode opcode, byte[] body, CqlFrameFlags flags = CqlFrameFlags.None) =>
        SendAsync((byte)(0x80 | request.Header.ProtocolVersion), request.Header.Stream, opcode, body, flags);

    public async Task SendAsync(byte version, short stream, CqlOpcode opcode, byte[] body, CqlFrameFlags flags = CqlFrameFlags.None)
    {
        var frame = new byte[CqlFrameHeader.Size + body.Length];
        new CqlFrameHeader(version, flags, stream, opcode, body.Length).WriteTo(frame);
        body.CopyTo(frame, CqlFrameHeader.Size);
        await _writeLock.WaitAsync();
        try
        {
            await _stream.WriteAsync(frame);
        }
        catch (Exception)
        {
            // The client may already be gone.
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Drops the TCP connection (the client sees a reset or end of stream).</summary>
    public void Abort()
    {
        try
        {
            client.Client.LingerState = new LingerOption(true, 0);
        }
        catch (Exception)
        {
        }
        client.Dispose();
    }
}

/// <summary>Response bodies the fake server sends.</summary>
internal static class FakeBodies
{
    public static byte[] Error(CqlErrorCode code, string message, Action<CqlWriter>? details = null) => Bytes.Build(w =>
    {
        w.WriteInt((int)code);
        w.WriteString(message);
        details?.Invoke(w);
    });

    public static byte[] Void() => Bytes.Build(w => w.WriteInt(1));

    public static byte[] SetKeyspace(string keyspace) => Bytes.Build(w =>
    {
        w.WriteInt(3);
        w.WriteString(keyspace);
    });

    /// <summary>A Prepared result for one int bind marker and no result metadata, in the request's version.</summary>
    public static byte[] Prepared(byte[] id, CqlFrame request) => Bytes.Build(w =>
    {
        w.WriteInt(4);
        w.WriteShortBytes(id);
        w.WriteInt(1); // Global_tables_spec
        w.WriteInt(1);
        if (request.Header.ProtocolVersion >= 4)
        {
            w.WriteInt(1); // pk_count
            w.WriteShort(0);
        }
        w.WriteString("ks");
        w.WriteString("t");
        w.WriteString("k");
        w.WriteShort((int)CqlTypeCode.Int);
        w.WriteInt(4); // No_metadata
        w.WriteInt(0);
    });

    public static string LongStringBody(CqlFrame request)
    {
        var reader = new CqlReader(request.Body);
        return reader.ReadLongString();
    }
}
