using System.Diagnostics;
using System.Globalization;

namespace Konduit.Tests.Shared;

/// <summary>
/// redis-server processes a test starts on its own ports (the redis slice's 26410–26499, cluster bus ports
/// 28410–28499: below the ephemeral range), each with its own data directory, so stopping or killing them cannot
/// disturb the shared servers other test projects use. A test that needs one fails, with instructions, when
/// redis-server is not installed.
/// </summary>
internal sealed class PrivateRedis : IAsyncDisposable
{
    private readonly List<Node> _nodes = [];

    private PrivateRedis(string directory) => Directory = directory;

    /// <summary>The data directory (one sub-directory per node).</summary>
    public string Directory { get; }

    /// <summary>The nodes, in the order they were started.</summary>
    public IReadOnlyList<Node> Nodes => _nodes;

    /// <summary>A StackExchange.Redis configuration string naming every node.</summary>
    public string Configuration => string.Join(",", _nodes.Select(n => "127.0.0.1:" + n.Port.ToString(CultureInfo.InvariantCulture)));

    /// <summary>One standalone server on <paramref name="port"/>.</summary>
    public static async Task<PrivateRedis> StartAsync(int port)
    {
        var redis = new PrivateRedis(NewDirectory());
        try
        {
            await redis.StartNodeAsync(port, clusterPort: null);
            return redis;
        }
        catch
        {
            await redis.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// One standalone server that speaks only TLS on <paramref name="port"/> (no plaintext port), with the certificate
    /// and key given and clients not asked for certificates.
    /// </summary>
    public static async Task<PrivateRedis> StartTlsAsync(int port, string certificateFile, string keyFile, string certificateAuthorityFile)
    {
        var redis = new PrivateRedis(NewDirectory());
        try
        {
            var node = new Node(port, null, Path.Combine(redis.Directory, port.ToString(CultureInfo.InvariantCulture)), 1000)
            {
                Tls = (certificateFile, keyFile, certificateAuthorityFile),
            };
            System.IO.Directory.CreateDirectory(node.Directory);
            redis._nodes.Add(node);
            await node.StartAsync();
            return redis;
        }
        catch
        {
            await redis.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// A Redis Cluster of 3 masters and 3 replicas on ports <paramref name="firstPort"/>… (bus ports
    /// <paramref name="firstBusPort"/>…), node timeout <paramref name="nodeTimeoutMs"/>, created with
    /// <c>redis-cli --cluster create --cluster-replicas 1</c>; returns once every slot is served and every replica has
    /// finished its first sync (a replica that never synced refuses to take over its master's slots: a master killed
    /// before that left the cluster CLUSTERDOWN for good, issue 16).
    /// </summary>
    public static async Task<PrivateRedis> StartClusterAsync(int firstPort, int firstBusPort, int nodeTimeoutMs = 1000)
    {
        var redis = new PrivateRedis(NewDirectory());
        try
        {
            for (var i = 0; i < 6; i++) await redis.StartNodeAsync(firstPort + i, firstBusPort + i, nodeTimeoutMs);
            var create = new List<string> { "--cluster", "create" };
            create.AddRange(redis._nodes.Select(n => "127.0.0.1:" + n.Port.ToString(CultureInfo.InvariantCulture)));
            create.AddRange(["--cluster-replicas", "1", "--cluster-yes"]);
            var (code, output) = await CliAsync(null, [.. create]);
            if (code != 0) throw new InvalidOperationException("redis-cli --cluster create failed: " + output);
            await redis.WaitForClusterOkAsync(TimeSpan.FromSeconds(30));
            await redis.WaitForReplicasInSyncAsync(TimeSpan.FromSeconds(30));
            return redis;
        }
        catch
        {
            await redis.DisposeAsync();
            throw;
        }
    }

    /// <summary>Waits until every running replica reports <c>master_link_status:up</c> (its first sync is done).</summary>
    public async Task WaitForReplicasInSyncAsync(TimeSpan deadline)
    {
        var until = DateTime.UtcNow + deadline;
        while (true)
        {
            var inSync = true;
            foreach (var node in _nodes.Where(n => n.IsRunning))
            {
                var replication = (await CliAsync(node.Port, "info", "replication")).Output;
                if (replication.Contains("role:slave", StringComparison.Ordinal))
                    inSync &= replication.Contains("master_link_status:up", StringComparison.Ordinal);
            }
            if (inSync) return;
            if (DateTime.UtcNow > until) throw new TimeoutException("the cluster's replicas did not finish their first sync");
            await Task.Delay(100); // polling the server's state: there is nothing to await
        }
    }

    /// <summary>The running node that replicates <paramref name="master"/> (from its <c>INFO replication</c>).</summary>
    public async Task<Node> ReplicaOfAsync(Node master)
    {
        foreach (var node in _nodes.Where(n => n.IsRunning && n != master))
        {
            var replication = (await CliAsync(node.Port, "info", "replication")).Output;
            if (replication.Contains("role:slave", StringComparison.Ordinal) &&
                replication.Contains($"master_port:{master.Port.ToString(CultureInfo.InvariantCulture)}\r", StringComparison.Ordinal))
                return node;
        }
        throw new InvalidOperationException($"no running replica of the master on port {master.Port}");
    }

    /// <summary>Waits until <paramref name="replica"/> reports <c>role:master</c> (it took over its failed master's slots).</summary>
    public static async Task WaitForPromotionAsync(Node replica, TimeSpan deadline)
    {
        var until = DateTime.UtcNow + deadline;
        while (!(await CliAsync(replica.Port, "info", "replication")).Output.Contains("role:master", StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > until) throw new TimeoutException($"the replica on port {replica.Port} was not promoted");
            await Task.Delay(50); // polling the server's state: there is nothing to await
        }
    }

    /// <summary>Waits until every node still running reports <c>cluster_state:ok</c>.</summary>
    public async Task WaitForClusterOkAsync(TimeSpan deadline)
    {
        var until = DateTime.UtcNow + deadline;
        while (true)
        {
            var ok = true;
            foreach (var node in _nodes.Where(n => n.IsRunning))
                ok &= (await CliAsync(node.Port, "cluster", "info")).Output.Contains("cluster_state:ok", StringComparison.Ordinal);
            if (ok) return;
            if (DateTime.UtcNow > until) throw new TimeoutException("the cluster did not reach cluster_state:ok");
            await Task.Delay(100); // polling the server's state: there is nothing to await
        }
    }

    /// <summary>Runs redis-cli against <paramref name="port"/> (or none, for <c>--cluster</c> commands).</summary>
    public static async Task<(int Code, string Output)> CliAsync(int? port, params string[] args)
    {
        var start = new ProcessStartInfo("redis-cli") { RedirectStandardOutput = true, RedirectStandardError = true };
        if (port is { } p)
            foreach (var arg in new[] { "-h", "127.0.0.1", "-p", p.ToString(CultureInfo.InvariantCulture) }) start.ArgumentList.Add(arg);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var cli = Start(start, "redis-cli");
        var output = await cli.StandardOutput.ReadToEndAsync();
        var error = await cli.StandardError.ReadToEndAsync();
        await cli.WaitForExitAsync();
        return (cli.ExitCode, output + error);
    }

    private static string NewDirectory()
    {
        var directory = Path.Combine(Path.GetTempPath(), "konduit-redis-" + Guid.NewGuid().ToString("N")[..8]);
        System.IO.Directory.CreateDirectory(directory);
        return directory;
    }

    private static Process Start(ProcessStartInfo start, string what)
    {
        try
        {
            return Process.Start(start) ?? throw new InvalidOperationException(what + " did not start");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException(
                $"{what} is not installed: run `scripts/services.sh up` (it installs Debian's redis-server) or `apt-get install redis-server`.", ex);
        }
    }

    private async Task StartNodeAsync(int port, int? clusterPort, int nodeTimeoutMs = 1000)
    {
        var node = new Node(port, clusterPort, Path.Combine(Directory, port.ToString(CultureInfo.InvariantCulture)), nodeTimeoutMs);
        System.IO.Directory.CreateDirectory(node.Directory);
        _nodes.Add(node);
        await node.StartAsync();
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var node in _nodes) await node.KillAsync();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: the directory is under the temp folder.
        }
    }

    /// <summary>One redis-server process.</summary>
    public sealed class Node(int port, int? clusterPort, string directory, int nodeTimeoutMs)
    {
        private Process? _process;

        /// <summary>The client port.</summary>
        public int Port { get; } = port;

        /// <summary>The data directory.</summary>
        public string Directory { get; } = directory;

        /// <summary>Certificate, key and CA files when the node speaks only TLS.</summary>
        public (string Certificate, string Key, string Authority)? Tls { get; init; }

        /// <summary>True while the process runs.</summary>
        public bool IsRunning => _process is { HasExited: false };

        /// <summary>Starts (or restarts) the server on its port and data directory; returns once it answers PING.</summary>
        public async Task StartAsync()
        {
            var start = new ProcessStartInfo("redis-server") { RedirectStandardOutput = true, RedirectStandardError = true };
            var args = new List<string>
            {
                "--port", Port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "yes", "--dir", Directory, "--daemonize", "no", "--logfile", "redis.log",
                // A replica's first sync at once, not after the default 5 s wait for more replicas to join it.
                "--repl-diskless-sync-delay", "0",
            };
            string[] probe = ["ping"];
            if (Tls is { } tls)
            {
                args[1] = "0";
                args.AddRange(["--tls-port", Port.ToString(CultureInfo.InvariantCulture), "--tls-cert-file", tls.Certificate,
                    "--tls-key-file", tls.Key, "--tls-ca-cert-file", tls.Authority, "--tls-auth-clients", "no"]);
                probe = ["--tls", "--cacert", tls.Authority, "ping"];
            }
            if (clusterPort is { } bus)
            {
                args.AddRange(["--cluster-enabled", "yes", "--cluster-port", bus.ToString(CultureInfo.InvariantCulture),
                    "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", nodeTimeoutMs.ToString(CultureInfo.InvariantCulture)]);
            }
            foreach (var arg in args) start.ArgumentList.Add(arg);
            _process = Start(start, "redis-server");
            _process.OutputDataReceived += (_, _) => { };
            _process.ErrorDataReceived += (_, _) => { };
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (DateTime.UtcNow < deadline)
            {
                if (_process.HasExited) throw new InvalidOperationException($"redis-server on port {Port} exited (is the port taken?)");
                if ((await CliAsync(Port, probe)).Output.Contains("PONG", StringComparison.Ordinal)) return;
                await Task.Delay(50); // polling a starting process: there is nothing to await
            }
            throw new InvalidOperationException($"redis-server on port {Port} did not answer PING");
        }

        /// <summary>The last <paramref name="lines"/> lines of the server's log (redis.log in its directory), for failure messages.</summary>
        public string LogTail(int lines)
        {
            var path = Path.Combine(Directory, "redis.log");
            return File.Exists(path) ? string.Join("\n", File.ReadLines(path).TakeLast(lines)) : "(no log)";
        }

        /// <summary>SIGKILL: no shutdown, no final fsync.</summary>
        public async Task KillAsync()
        {
            if (_process is null) return;
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
    }
}
