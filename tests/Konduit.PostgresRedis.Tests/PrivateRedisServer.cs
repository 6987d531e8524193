using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Konduit.PostgresRedis.Tests;

/// <summary>
/// A redis-server this test starts on a free port, with its own data directory, so that stopping it cannot
/// disturb the shared test server other test projects use in parallel.
/// </summary>
public sealed class PrivateRedisServer : IAsyncDisposable
{
    private Process? _process;

    private PrivateRedisServer(int port, string directory)
    {
        Port = port;
        Directory = directory;
    }

    public int Port { get; }

    public string Directory { get; }

    public string Configuration => $"127.0.0.1:{Port}";

    public static async Task<PrivateRedisServer> StartAsync()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var directory = Path.Combine(Path.GetTempPath(), "konduit-redis-" + Guid.NewGuid().ToString("N")[..8]);
        System.IO.Directory.CreateDirectory(directory);
        var server = new PrivateRedisServer(port, directory);
        await server.StartProcessAsync();
        return server;
    }

    /// <summary>Starts the server again (same port and data directory).</summary>
    public Task RestartAsync() => StartProcessAsync();

    /// <summary><c>SHUTDOWN NOSAVE</c>: the server stops; the AOF written so far stays on disk.</summary>
    public async Task ShutdownAsync()
    {
        await RunCliAsync("shutdown", "nosave");
        if (_process is not null)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _process.WaitForExitAsync(cts.Token);
            _process.Dispose();
            _process = null;
        }
    }

    /// <summary>Deletes the data directory's contents (the server must be stopped): Redis "loses its data".</summary>
    public void WipeData()
    {
        foreach (var entry in System.IO.Directory.EnumerateFileSystemEntries(Directory))
        {
            if (System.IO.Directory.Exists(entry)) System.IO.Directory.Delete(entry, recursive: true);
            else File.Delete(entry);
        }
    }

    private async Task StartProcessAsync()
    {
        var start = new ProcessStartInfo("redis-server") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1",
                     "--save", "", "--appendonly", "yes", "--dir", Directory, "--daemonize", "no" })
            start.ArgumentList.Add(arg);
        _process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (DateTime.UtcNow < deadline)
        {
            if ((await RunCliAsync("ping")).Contains("PONG", StringComparison.Ordinal)) return;
            await Task.Delay(50);
        }
        throw new InvalidOperationException($"redis-server on port {Port} did not answer PING");
    }

    private async Task<string> RunCliAsync(params string[] args)
    {
        var start = new ProcessStartInfo("redis-cli") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "-h", "127.0.0.1", "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture) }.Concat(args))
            start.ArgumentList.Add(arg);
        using var cli = Process.Start(start) ?? throw new InvalidOperationException("redis-cli did not start");
        var output = await cli.StandardOutput.ReadToEndAsync();
        await cli.WaitForExitAsync();
        return output;
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is not null)
        {
            try
            {
                _process.Kill();
                await _process.WaitForExitAsync();
            }
            catch (InvalidOperationException)
            {
                // Already exited.
            }
            _process.Dispose();
            _process = null;
        }
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort.
        }
    }
}
