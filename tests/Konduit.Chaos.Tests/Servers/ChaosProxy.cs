using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Konduit.Chaos.Tests.Servers;

/// <summary>
/// A TCP proxy on loopback between the workers and a server, that can cut every connection (RST) or stall all
/// traffic for a while. Faults land during whatever the workers are doing (lease, heartbeat, complete): the
/// workers never idle under the suite's backlog.
/// </summary>
public sealed class ChaosProxy : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly int _targetPort;
    private readonly ConcurrentDictionary<long, (TcpClient Client, TcpClient Server)> _pairs = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accept;
    private TaskCompletionSource _flowing = NewOpenGate();
    private long _next;

    public ChaosProxy(int listenPort, int targetPort)
    {
        _targetPort = targetPort;
        _listener = new TcpListener(IPAddress.Loopback, listenPort);
        _listener.Start();
        Port = listenPort;
        _accept = Task.Run(AcceptLoopAsync);
    }

    public int Port { get; }

    /// <summary>Connections cut so far.</summary>
    public int Cuts { get; private set; }

    /// <summary>Closes every open connection with a reset, as a dropped route or a killed middlebox would.</summary>
    public void CutAll()
    {
        foreach (var (id, pair) in _pairs)
        {
            if (!_pairs.TryRemove(id, out _)) continue;
            Reset(pair.Client);
            Reset(pair.Server);
            Cuts++;
        }
    }

    /// <summary>Stops forwarding in both directions (connections stay open) until the returned task completes.</summary>
    public async Task StallAsync(TimeSpan duration, CancellationToken cancellationToken)
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Interlocked.Exchange(ref _flowing, gate);
        try
        {
            await Task.Delay(duration, cancellationToken);
        }
        finally
        {
            gate.TrySetResult();
        }
    }

    private static TaskCompletionSource NewOpenGate()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        gate.SetResult();
        return gate;
    }

    private static void Reset(TcpClient client)
    {
        try
        {
            // Null once the pump closed it: nothing left to reset.
            if (client.Client is { } socket) socket.LingerState = new LingerOption(true, 0);
            client.Close();
        }
        catch (ObjectDisposedException)
        {
            // Already closed by its pump.
        }
        catch (SocketException)
        {
            // Already reset.
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        var server = new TcpClient();
        try
        {
            await server.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
            // The server is down: the client sees its connection closed, as it would against the server itself.
            Reset(client);
            server.Dispose();
            return;
        }
        client.NoDelay = true;
        server.NoDelay = true;
        var id = Interlocked.Increment(ref _next);
        _pairs[id] = (client, server);
        var up = PumpAsync(client, server);
        var down = PumpAsync(server, client);
        await Task.WhenAny(up, down);
        _pairs.TryRemove(id, out _);
        client.Dispose();
        server.Dispose();
    }

    private async Task PumpAsync(TcpClient from, TcpClient to)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            var source = from.GetStream();
            var target = to.GetStream();
            while (true)
            {
                var read = await source.ReadAsync(buffer, _stop.Token);
                if (read == 0) return;
                // A stall holds bytes already read: the peer waits on the proxy, as on a congested link.
                await Volatile.Read(ref _flowing).Task.WaitAsync(_stop.Token);
                await target.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            // A cut, a close by either side, or the proxy stopping.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        CutAll();
        await _accept;
        _stop.Dispose();
    }
}
