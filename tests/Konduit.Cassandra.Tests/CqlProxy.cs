using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Konduit.Cassandra.Cql;

namespace Konduit.Cassandra.Tests;

/// <summary>What <see cref="CqlProxy"/> does with one request frame.</summary>
internal abstract record ProxyAction
{
    public static readonly ProxyAction Forward = new ForwardAction();

    /// <summary>Swallow the request: the client waits for an answer that never comes (its timeout fires).</summary>
    public static readonly ProxyAction Drop = new DropAction();

    /// <summary>Answer in the server's place, e.g. with an ERROR frame.</summary>
    public static ProxyAction Reply(CqlOpcode opcode, byte[] body) => new ReplyAction(opcode, body);

    internal sealed record ForwardAction : ProxyAction;

    internal sealed record DropAction : ProxyAction;

    internal sealed record ReplyAction(CqlOpcode Opcode, byte[] Body) : ProxyAction;
}

/// <summary>
/// A frame-aware TCP proxy in front of a real node: it records every request frame (so tests count PREPAREs, SELECTs
/// and batch sizes as the server receives them) and can answer or swallow chosen requests, to make the real server
/// look as if it refused a batch or timed out. Frames are forwarded whole, never split.
/// </summary>
internal sealed class CqlProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly string _upstreamHost;
    private readonly int _upstreamPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentBag<TcpClient> _sockets = [];
    private readonly Task _accept;

    public CqlProxy(string upstreamContactPoint)
    {
        var options = CqlSessionOptions.FromContactPoint(upstreamContactPoint);
        _upstreamHost = options.Host;
        _upstreamPort = options.Port;
        _listener.Start();
        _accept = Task.Run(AcceptLoopAsync);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public string ContactPoint => $"127.0.0.1:{Port}";

    /// <summary>Decides per request frame; forwards everything when null.</summary>
    public Func<CqlFrame, ProxyAction>? Intercept { get; set; }

    /// <summary>Every request frame the client sent, in arrival order.</summary>
    public ConcurrentQueue<CqlFrame> Requests { get; } = new();

    public int Count(CqlOpcode opcode) => Requests.Count(f => f.Header.Opcode == opcode);

    public void Clear() => Requests.Clear();

    private async Task AcceptLoopAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                client.NoDelay = true;
                var upstream = new TcpClient { NoDelay = true };
                try
                {
                    await upstream.ConnectAsync(_upstreamHost, _upstreamPort, _stop.Token);
                }
                catch (Exception) when (!_stop.IsCancellationRequested)
                {
                    client.Dispose();
                    upstream.Dispose();
                    continue;
                }
                _sockets.Add(client);
                _sockets.Add(upstream);
                var toClient = new SemaphoreSlim(1, 1);
                _ = Task.Run(() => PumpRequestsAsync(client, upstream, toClient));
                _ = Task.Run(() => PumpResponsesAsync(upstream, client, toClient));
            }
        }
        catch (Exception) when (_stop.IsCancellationRequested)
        {
        }
    }

    private async Task PumpRequestsAsync(TcpClient client, TcpClient upstream, SemaphoreSlim toClient)
    {
        try
        {
            var from = client.GetStream();
            var to = upstream.GetStream();
            while (true)
            {
                var frame = await ReadFrameAsync(from);
                Requests.Enqueue(frame);
                switch (Intercept?.Invoke(frame) ?? ProxyAction.Forward)
                {
                    case ProxyAction.DropAction:
                        break;
                    case ProxyAction.ReplyAction reply:
                        var response = CqlFrame.Encode((byte)(0x80 | frame.Header.ProtocolVersion), CqlFrameFlags.None, frame.Header.Stream, reply.Opcode, reply.Body);
                        await WriteAsync(client.GetStream(), response, toClient);
                        break;
                    default:
                        await to.WriteAsync(Encode(frame), _stop.Token);
                        break;
                }
            }
        }
        catch (Exception)
        {
            client.Dispose();
            upstream.Dispose();
        }
    }

    private async Task PumpResponsesAsync(TcpClient upstream, TcpClient client, SemaphoreSlim toClient)
    {
        try
        {
            var from = upstream.GetStream();
            while (true)
            {
                var frame = await ReadFrameAsync(from);
                await WriteAsync(client.GetStream(), Encode(frame), toClient);
            }
        }
        catch (Exception)
        {
            client.Dispose();
            upstream.Dispose();
        }
    }

    private async Task WriteAsync(NetworkStream stream, byte[] bytes, SemaphoreSlim gate)
    {
        await gate.WaitAsync(_stop.Token);
        try
        {
            await stream.WriteAsync(bytes, _stop.Token);
        }
        finally
        {
            gate.Release();
        }
    }

    private async Task<CqlFrame> ReadFrameAsync(NetworkStream stream)
    {
        var header = new byte[CqlFrameHeader.Size];
        await stream.ReadExactlyAsync(header, _stop.Token);
        var parsed = CqlFrameHeader.Read(header);
        var body = new byte[parsed.Length];
        await stream.ReadExactlyAsync(body, _stop.Token);
        return new CqlFrame(parsed, body);
    }

    private static byte[] Encode(CqlFrame frame)
    {
        var bytes = new byte[CqlFrameHeader.Size + frame.Body.Length];
        frame.Header.WriteTo(bytes);
        frame.Body.CopyTo(bytes, CqlFrameHeader.Size);
        return bytes;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accept;
        foreach (var socket in _sockets)
            socket.Dispose();
        _stop.Dispose();
    }
}
