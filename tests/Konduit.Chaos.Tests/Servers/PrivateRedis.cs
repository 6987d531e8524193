using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;

namespace Konduit.Chaos.Tests.Servers;

/// <summary>
/// A redis-server of the chaos suite's own (own port and data dir), in the foreground, so that SIGKILL and
/// restart never touch the shared server. AOF on with fsync every second, like scripts/services.d/redis.sh.
/// </summary>
public sealed class PrivateRedis : IAsyncDisposable
{
    private readonly string _directory;
    private Process? _process;

    private PrivateRedis(int port, string directory)
    {
        Port = port;
        _directory = directory;
    }

    public int Port { get; }

    /// <summary>A StackExchange.Redis configuration string for this server (or a proxy in front of it).</summary>
    public string Configuration(int? port = null) =>
        $"127.0.0.1:{port ?? Port},abortConnect=false,connectTimeout=2000,syncTimeout=2000,asyncTimeout=2000";

    public static async Task<PrivateRedis> StartAsync(int port, CancellationToken cancellationToken)
    {
        if (!File.Exists("/usr/bin/redis-server") && !File.Exists("/usr/local/bin/redis-server"))
            throw new InvalidOperationException(
                "The chaos suite starts its own redis-server and found none: run `scripts/services.sh up` (as root it installs the redis-server package).");
        var directory = Path.Combine(Path.GetTempPath(), $"konduit-chaos-redis-{port}-{Guid.NewGuid():N}"[..44]);
        Directory.CreateDirectory(directory);
        var server = new PrivateRedis(port, directory);
        await server.StartProcessAsync(cancellationToken);
        return server;
    }

    /// <summary>SIGKILL: what the process wrote to the AOF stays in the page cache, so nothing acknowledged is lost.</summary>
    public async Task KillAsync()
    {
        if (_process is null) return;
        _process.Kill();
        await _process.WaitForExitAsync();
        _process.Dispose();
        _process = null;
    }

    /// <summary>Deletes the data dir's contents (the server must be stopped): Redis comes back empty.</summary>
    public void WipeData()
    {
        foreach (var entry in Directory.EnumerateFileSystemEntries(_directory))
        {
            if (Directory.Exists(entry)) Directory.Delete(entry, recursive: true);
            else File.Delete(entry);
        }
    }

    public Task RestartAsync(CancellationToken cancellationToken) => StartProcessAsync(cancellationToken);

    /// <summary>Length of the AOF's current increment file (Redis 7 multi-part AOF under appendonlydir/).</summary>
    public long AofLength() => new FileInfo(IncrementFile()).Length;

    /// <summary>
    /// Cuts the AOF back to <paramref name="length"/> (the server must be stopped): what a host crash inside
    /// <c>appendfsync everysec</c> loses. A command cut in half is dropped on load (<c>aof-load-truncated</c>, the default).
    /// </summary>
    public void TruncateAof(long length)
    {
        using var file = new FileStream(IncrementFile(), FileMode.Open, FileAccess.Write);
        file.SetLength(Math.Min(length, file.Length));
    }

    private string IncrementFile() =>
        Directory.GetFiles(Path.Combine(_directory, "appendonlydir"), "*.incr.aof").OrderBy(File.GetLastWriteTimeUtc).Last();

    private async Task StartProcessAsync(CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("redis-server") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[]
                 {
                     "--port", Port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "yes", "--appendfsync", "everysec", "--dir", _directory, "--daemonize", "no",
                     "--logfile", _directory + ".log",
                 })
            start.ArgumentList.Add(arg);
        _process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited) throw new InvalidOperationException($"redis-server on port {Port} exited with {_process.ExitCode}");
            if (await PingAsync(cancellationToken)) return;
            await Task.Delay(50, cancellationToken);
        }
        throw new InvalidOperationException($"redis-server on port {Port} did not answer PING within 30 s");
    }

    private async Task<bool> PingAsync(CancellationToken cancellationToken)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", Port, cancellationToken);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray(), cancellationToken);
            var buffer = new byte[64];
            var read = await stream.ReadAsync(buffer, cancellationToken);
            // +PONG once the AOF is loaded; -LOADING before.
            return read > 0 && buffer[0] == (byte)'+';
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        try
        {
            Directory.Delete(_directory, recursive: true);
            File.Delete(_directory + ".log");
        }
        catch (IOException)
        {
            // Best effort: under the temp path.
        }
    }
}
