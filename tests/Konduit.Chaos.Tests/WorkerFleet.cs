using System.Diagnostics;
using System.Reflection;

namespace Konduit.Chaos.Tests;

/// <summary>
/// K chaos workers (tests/Konduit.Chaos.Worker) as separate OS processes. A killed worker is SIGKILLed: no
/// shutdown hook runs, its leases are left to expire, exactly as when a host dies.
/// </summary>
internal sealed class WorkerFleet : IAsyncDisposable
{
    private readonly IReadOnlyList<string> _arguments;
    private readonly StreamWriter _log;
    private readonly Process?[] _workers;
    private readonly Lock _gate = new();

    public WorkerFleet(int count, IReadOnlyList<string> arguments, string logPath)
    {
        _arguments = arguments;
        _workers = new Process?[count];
        _log = new StreamWriter(logPath, append: false) { AutoFlush = true };
    }

    public int Count => _workers.Length;

    public int Kills { get; private set; }

    private static string WorkerPath()
    {
        var path = typeof(WorkerFleet).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(a => a.Key == "ChaosWorkerPath").Value!;
        if (!File.Exists(path))
            throw new InvalidOperationException($"the chaos worker is not built at {path}: build tests/Konduit.Chaos.Tests (it builds the worker first)");
        return Path.GetFullPath(path);
    }

    /// <summary>Starts every worker and waits until each one's host has started (its store is migrated and reachable).</summary>
    public async Task StartAllAsync(CancellationToken cancellationToken)
    {
        var started = new List<Task>();
        for (var i = 0; i < _workers.Length; i++) started.Add(StartAsync(i, cancellationToken));
        await Task.WhenAll(started);
    }

    private Task StartAsync(int slot, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(WorkerPath());
        foreach (var a in _arguments) start.ArgumentList.Add(a);
        start.Environment["DOTNET_gcServer"] = "0";
        start.Environment["DOTNET_TieredPGO"] = "0";
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            if (e.Data.Contains("chaos-worker: started", StringComparison.Ordinal)) ready.TrySetResult();
            Write(slot, e.Data);
        };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) Write(slot, e.Data); };
        process.Exited += (_, _) => ready.TrySetException(new InvalidOperationException($"chaos worker {slot} exited before it started (see the worker log)"));
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        lock (_gate) _workers[slot] = process;
        Write(slot, $"-- started pid {process.Id}");
        return ready.Task.WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);
    }

    /// <summary>The OS process id of the worker in <paramref name="slot"/>, or null when the slot is empty.</summary>
    public int? ProcessId(int slot)
    {
        lock (_gate) return _workers[slot]?.Id;
    }

    /// <summary>SIGKILLs one worker and leaves its slot empty; returns once the process has exited.</summary>
    public async Task KillAsync(int slot, CancellationToken cancellationToken)
    {
        Process? victim;
        lock (_gate)
        {
            victim = _workers[slot];
            _workers[slot] = null;
        }
        if (victim is null) return;
        Write(slot, $"-- SIGKILL pid {victim.Id}");
        try
        {
            victim.Kill();
            await victim.WaitForExitAsync(cancellationToken);
        }
        catch (InvalidOperationException)
        {
            // Exited on its own already.
        }
        victim.Dispose();
        Kills++;
    }

    /// <summary>SIGKILLs one worker and starts a replacement in its slot (not awaited: the fleet runs short-handed meanwhile).</summary>
    public async Task KillAndRestartAsync(int slot, CancellationToken cancellationToken)
    {
        await KillAsync(slot, cancellationToken);
        _ = StartAsync(slot, cancellationToken).ContinueWith(
            t => Write(slot, $"-- restart did not report started: {t.Exception?.GetBaseException().Message}"),
            CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
    }

    private void Write(int slot, string line)
    {
        lock (_log) _log.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} [w{slot}] {line}");
    }

    public async ValueTask DisposeAsync()
    {
        Process?[] workers;
        lock (_gate) workers = [.. _workers];
        foreach (var worker in workers.OfType<Process>())
        {
            try
            {
                worker.Kill();
                await worker.WaitForExitAsync();
            }
            catch (InvalidOperationException)
            {
                // Already exited.
            }
            worker.Dispose();
        }
        await _log.DisposeAsync();
    }
}
