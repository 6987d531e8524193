using System.Diagnostics;
using System.Globalization;
using Konduit.Tests.Shared;
using Npgsql;
using Xunit;

namespace Konduit.Postgres.Tests;

/// <summary>
/// A private PostgreSQL primary with a streaming standby on loopback, made by scripts/services.d/postgres-standby.sh
/// in a temp dir of its own, on two free ports of 25700–25789, and destroyed on dispose: the failover tests stop and promote servers, so each test gets a
/// fresh pair and the shared server (25432) is never touched. The role <c>konduit</c> owns database <c>konduit</c>
/// (trust on loopback).
/// </summary>
internal sealed class PostgresStandbyPair : IAsyncDisposable
{
    private readonly string _script;
    private readonly string _root;

    private PostgresStandbyPair(string script, string root, int primaryPort, int standbyPort)
    {
        _script = script;
        _root = root;
        PrimaryPort = primaryPort;
        StandbyPort = standbyPort;
    }

    public int PrimaryPort { get; }

    public int StandbyPort { get; }

    /// <summary>Where the servers' logs are, for failure messages.</summary>
    public string Directory => Path.Combine(_root, "pair");

    /// <summary>
    /// What an application configures: both hosts, read-write sessions only (a standby or a dead host is skipped), and
    /// host states re-checked every second instead of Npgsql's 10 s, so a promoted standby is found within a second.
    /// </summary>
    public string MultiHostConnectionString(string applicationName) =>
        $"Host=127.0.0.1:{PrimaryPort},127.0.0.1:{StandbyPort};Username=konduit;Database=konduit;" +
        $"Target Session Attributes=read-write;Host Recheck Seconds=1;Timeout=3;Command Timeout=10;Application Name={applicationName}";

    /// <summary>One server only, unpooled: how the test reads a server's own rows.</summary>
    public static string SingleHostConnectionString(int port) =>
        $"Host=127.0.0.1;Port={port};Username=konduit;Database=konduit;Timeout=5;Pooling=false;Application Name=failover-check";

    /// <summary>
    /// Makes and starts a pair on two free ports of 25700–25789, a range of its own (the chaos suite, which runs at the
    /// same time in scripts/test.sh's other lane, uses 25500–25699). A port taken between the check and the server's
    /// start is retried on the next free pair.
    /// </summary>
    /// <param name="synchronous">Sets <c>synchronous_standby_names</c> to the standby.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    public static async Task<PostgresStandbyPair> StartAsync(bool synchronous, CancellationToken cancellationToken)
    {
        var script = Path.Combine(RepositoryRoot(), "scripts", "services.d", "postgres-standby.sh");
        var below = LastPort + 1;
        for (var attempt = 1; ; attempt++)
        {
            var primaryPort = FreePortBelow(below);
            var standbyPort = FreePortBelow(primaryPort);
            below = standbyPort;
            var root = Path.Combine(Path.GetTempPath(), $"konduit-failover-{primaryPort}-{Guid.NewGuid():N}"[..40]);
            System.IO.Directory.CreateDirectory(root);
            // The server user must reach the dir the script makes inside this one (whatever the umask).
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
            var pair = new PostgresStandbyPair(script, root, primaryPort, standbyPort);
            var (exitCode, output) = await pair.TryRunAsync(cancellationToken, "up", pair.Directory,
                primaryPort.ToString(CultureInfo.InvariantCulture), standbyPort.ToString(CultureInfo.InvariantCulture), synchronous ? "sync" : "async");
            if (exitCode == 0) return pair;
            await pair.DisposeAsync();
            var portTaken = output.Contains("is in use", StringComparison.Ordinal) || output.Contains("could not bind", StringComparison.Ordinal);
            if (!portTaken || attempt == 3) Assert.Fail(Failure(["up", primaryPort.ToString(CultureInfo.InvariantCulture)], exitCode, output));
        }
    }

    private const int FirstPort = 25700;
    private const int LastPort = 25789;

    private static int FreePortBelow(int below) =>
        LoopbackPorts.FirstFree(Enumerable.Range(FirstPort, below - FirstPort).Reverse(), $"a failover pair ({FirstPort}–{LastPort})");

    /// <summary>
    /// Stops the primary's walsender (SIGSTOP): the standby receives nothing more, as when the replication link fails
    /// just before the primary does. An asynchronous primary keeps acknowledging commits; a synchronous one holds them.
    /// </summary>
    public Task CutReplicationAsync(CancellationToken cancellationToken) => RunAsync(cancellationToken, "cut-replication", Directory);

    /// <summary>How many of the primary's sessions wait for the synchronous standby to confirm their commit.</summary>
    public async Task<long> CommitsWaitingForStandbyAsync(CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(SingleHostConnectionString(PrimaryPort));
        await connection.OpenAsync(cancellationToken);
        await using var count = new NpgsqlCommand("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'", connection);
        return (long)(await count.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary><c>pg_ctl stop -m immediate</c> of the primary: its backends are gone at once, nothing is checkpointed.</summary>
    public Task StopPrimaryAsync(CancellationToken cancellationToken) => RunAsync(cancellationToken, "stop-primary", Directory);

    /// <summary><c>pg_ctl promote -w</c>: the standby accepts writes when this returns.</summary>
    public Task PromoteAsync(CancellationToken cancellationToken) => RunAsync(cancellationToken, "promote", Directory);

    /// <summary>The server clock of <paramref name="port"/> (<c>now()</c>), the reference for its rows' timestamps.</summary>
    public static async Task<DateTimeOffset> ServerNowAsync(int port, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(SingleHostConnectionString(port));
        await connection.OpenAsync(cancellationToken);
        await using var now = new NpgsqlCommand("SELECT now()", connection);
        return new DateTimeOffset((DateTime)(await now.ExecuteScalarAsync(cancellationToken))!, TimeSpan.Zero);
    }

    private async Task RunAsync(CancellationToken cancellationToken, params string[] args)
    {
        var (exitCode, output) = await TryRunAsync(cancellationToken, args);
        if (exitCode != 0) Assert.Fail(Failure(args, exitCode, output));
    }

    private static string Failure(string[] args, int exitCode, string output) =>
        $"postgres-standby.sh {string.Join(' ', args)} exited with {exitCode} (it needs the postgresql package and the postgres OS " +
        $"user: run scripts/services.sh up as root): {output}";

    private async Task<(int ExitCode, string Output)> TryRunAsync(CancellationToken cancellationToken, params string[] args)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(_script);
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("bash did not start");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        return (process.ExitCode, await stderr + await stdout);
    }

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Konduit.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Konduit.sln not found above " + AppContext.BaseDirectory);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (System.IO.Directory.Exists(Directory)) await RunAsync(CancellationToken.None, "down", Directory);
        }
        finally
        {
            try
            {
                System.IO.Directory.Delete(_root, recursive: true);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Best effort: the dir is under the temp path.
            }
        }
    }
}
