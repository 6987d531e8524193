using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace Konduit.Chaos.Tests.Servers;

/// <summary>
/// A PostgreSQL cluster of the chaos suite's own (initdb into a temp dir, a port of the chaos range), so that
/// killing its postmaster can never disturb the shared test server. Run as the <c>postgres</c> OS user when the
/// tests run as root (initdb refuses root); binaries from /usr/lib/postgresql/*/bin (scripts/services.sh installs them).
/// </summary>
public sealed class PrivatePostgres : IAsyncDisposable
{
    /// <summary>The role the stores and workers use: not a superuser, so the reserved slots stay the admin's.</summary>
    public const string Role = "konduit";
    public const string Database = "chaos";
    public const int MaxConnections = 100;
    private const string OsUser = "postgres";

    private readonly string _bin;
    private readonly string _root;
    private readonly string _data;
    private readonly string _socket;
    private readonly string _log;
    private Process? _server;

    private PrivatePostgres(string bin, string root, int port)
    {
        _bin = bin;
        _root = root;
        _data = Path.Combine(root, "data");
        _socket = Path.Combine(root, "run");
        _log = Path.Combine(root, "postgres.log");
        Port = port;
    }

    public int Port { get; }

    public string LogPath => _log;

    /// <summary>The stores' connection string (role <see cref="Role"/>); <paramref name="applicationName"/> lets faults pick the library's sessions.</summary>
    public string ConnectionString(string applicationName, int? port = null) =>
        $"Host=127.0.0.1;Port={port ?? Port};Username={Role};Database={Database};Application Name={applicationName};Timeout=5;Command Timeout=20";

    /// <summary>The superuser, for faults (pg_terminate_backend) and for the test's own bookkeeping.</summary>
    public string AdminConnectionString =>
        $"Host=127.0.0.1;Port={Port};Username=postgres;Database={Database};Application Name=chaos-admin;Timeout=5;Pooling=false";

    public static async Task<PrivatePostgres> StartAsync(int port, CancellationToken cancellationToken)
    {
        var bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql")
                .Select(d => Path.Combine(d, "bin"))
                .Where(d => File.Exists(Path.Combine(d, "initdb")))
                .OrderBy(d => int.TryParse(Path.GetFileName(Path.GetDirectoryName(d)), CultureInfo.InvariantCulture, out var v) ? v : 0)
                .LastOrDefault()
            : null;
        if (bin is null)
            throw new InvalidOperationException(
                "The chaos suite starts its own PostgreSQL and found no /usr/lib/postgresql/*/bin/initdb: run `scripts/services.sh up` (as root it installs the postgresql package).");

        var root = Path.Combine(Path.GetTempPath(), $"konduit-chaos-pg-{port}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(root);
        var server = new PrivatePostgres(bin, root, port);
        try
        {
            await server.InitAsync(cancellationToken);
            await server.StartServerAsync(cancellationToken);
            await server.ProvisionAsync(cancellationToken);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>kill -9 of the postmaster (its backends then exit on their own, as after a crash).</summary>
    public void KillPostmaster()
    {
        var pid = PostmasterPid() ?? throw new InvalidOperationException("no postmaster.pid: the server is not running");
        using var process = Process.GetProcessById(pid);
        process.Kill(); // SIGKILL on Unix
    }

    /// <summary>Starts the server again on the same data dir (crash recovery replays the WAL) and waits until it answers.</summary>
    public Task RestartAsync(CancellationToken cancellationToken) => StartServerAsync(cancellationToken);

    private int? PostmasterPid()
    {
        var file = Path.Combine(_data, "postmaster.pid");
        if (!File.Exists(file)) return null;
        var first = File.ReadLines(file).FirstOrDefault();
        return int.TryParse(first, CultureInfo.InvariantCulture, out var pid) ? pid : null;
    }

    private static bool IsRoot => Environment.UserName == "root";

    private ProcessStartInfo AsServerUser(string program, params string[] args)
    {
        ProcessStartInfo start;
        if (IsRoot)
        {
            start = new ProcessStartInfo("runuser");
            foreach (var a in new[] { "-u", OsUser, "--", Path.Combine(_bin, program) }) start.ArgumentList.Add(a);
        }
        else
        {
            start = new ProcessStartInfo(Path.Combine(_bin, program));
        }
        foreach (var a in args) start.ArgumentList.Add(a);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        return start;
    }

    private async Task InitAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(_socket);
        if (IsRoot)
        {
            await RunAsync(new ProcessStartInfo("chown") { ArgumentList = { "-R", OsUser + ":", _root } }, cancellationToken);
        }
        // trust on loopback: a throwaway cluster that listens on 127.0.0.1 only and lives for one test run.
        await RunAsync(AsServerUser("initdb", "-D", _data, "-U", "postgres", "-E", "UTF8", "--no-locale", "--auth=trust", "--no-sync"), cancellationToken);
        var conf = string.Join('\n',
            "listen_addresses = '127.0.0.1'",
            $"port = {Port}",
            $"unix_socket_directories = '{_socket}'",
            $"max_connections = {MaxConnections}",
            "superuser_reserved_connections = 3",
            // Durability at the defaults: postgres_restart asserts that every acknowledged enqueue survives kill -9.
            "fsync = on",
            "synchronous_commit = on",
            "shared_buffers = 64MB",
            "log_min_messages = warning",
            "");
        await File.AppendAllTextAsync(Path.Combine(_data, "postgresql.conf"), conf, cancellationToken);
    }

    private async Task StartServerAsync(CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            // After kill -9, orphaned backends hold the old shared memory until they notice; the postmaster then
            // refuses to start, so a start that exits at once is retried until the deadline.
            var start = AsServerUser("postgres", "-D", _data);
            var server = Process.Start(start) ?? throw new InvalidOperationException("postgres did not start");
            var log = File.AppendText(_log);
            log.AutoFlush = true;
            server.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
            server.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
            server.BeginOutputReadLine();
            server.BeginErrorReadLine();
            _server?.Dispose();
            _server = server;
            while (!server.HasExited && DateTime.UtcNow < deadline)
            {
                if (await AnswersAsync(cancellationToken)) return;
                await Task.Delay(100, cancellationToken);
            }
            if (DateTime.UtcNow >= deadline)
                throw new InvalidOperationException($"the private PostgreSQL on port {Port} did not answer within 60 s (log: {_log})");
            await Task.Delay(200, cancellationToken);
        }
    }

    private async Task<bool> AnswersAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = new NpgsqlConnection($"Host=127.0.0.1;Port={Port};Username=postgres;Database=postgres;Timeout=2;Pooling=false");
            await connection.OpenAsync(cancellationToken);
            return true;
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            return false;
        }
    }

    private async Task ProvisionAsync(CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection($"Host=127.0.0.1;Port={Port};Username=postgres;Database=postgres;Pooling=false");
        await connection.OpenAsync(cancellationToken);
        await using (var role = new NpgsqlCommand($"CREATE ROLE {Role} LOGIN", connection)) await role.ExecuteNonQueryAsync(cancellationToken);
        await using (var db = new NpgsqlCommand($"CREATE DATABASE {Database} OWNER {Role}", connection)) await db.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task RunAsync(ProcessStartInfo start, CancellationToken cancellationToken)
    {
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{start.FileName} did not start");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0)
            throw new InvalidOperationException(
                $"{start.FileName} {string.Join(' ', start.ArgumentList)} exited with {process.ExitCode}: {await stderr}{await stdout}");
    }

    public async ValueTask DisposeAsync()
    {
        if (PostmasterPid() is { } pid)
        {
            try
            {
                using var process = Process.GetProcessById(pid);
                process.Kill();
                await process.WaitForExitAsync();
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
            {
                // Already gone.
            }
        }
        _server?.Dispose();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Best effort: orphaned backends may still hold files for a moment; the dir is under the temp path.
        }
    }
}
