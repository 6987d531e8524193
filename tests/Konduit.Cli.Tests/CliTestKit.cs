using System.Diagnostics;
using System.Text.Json;
using Konduit.Testing.Conformance;
using Xunit;

namespace Konduit.Cli.Tests;

/// <summary>One CLI run's outcome.</summary>
public sealed record CliResult(int ExitCode, string Out, string Error)
{
    public JsonElement Json()
    {
        try
        {
            return JsonDocument.Parse(Out).RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw new Xunit.Sdk.XunitException($"stdout is not JSON ({ex.Message}):\n{Out}\nstderr:\n{Error}");
        }
    }

    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Out}\nstderr:\n{Error}";
}

/// <summary>Runs the CLI in-process (KonduitCli.RunAsync with captured streams) or as a process (dotnet Konduit.Cli.dll).</summary>
internal static class CliTestKit
{
    public static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static async Task<CliResult> RunAsync(string workingDirectory, params string[] args) =>
        await RunAsync(workingDirectory, new Dictionary<string, string>(), null, args);

    public static async Task<CliResult> RunAsync(string workingDirectory, Dictionary<string, string> environment, string? stdin, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var context = new CliContext
        {
            Out = output,
            Error = error,
            In = new StringReader(stdin ?? ""),
            WorkingDirectory = workingDirectory,
            Environment = environment,
            IsInteractive = false,
        };
        var exit = await KonduitCli.RunAsync(args, context, Ct);
        return new CliResult(exit, output.ToString(), error.ToString());
    }

    /// <summary>The built tool, next to this test assembly (the project reference copies it with its runtimeconfig).</summary>
    public static string ToolPath
    {
        get
        {
            var path = Path.Combine(AppContext.BaseDirectory, "Konduit.Cli.dll");
            Assert.True(File.Exists(path), $"{path} is missing: build tests/Konduit.Cli.Tests (it references src/Konduit.Cli).");
            return path;
        }
    }

    /// <summary>Runs <c>dotnet Konduit.Cli.dll args</c> in <paramref name="workingDirectory"/>, bounded to one minute.</summary>
    public static async Task<CliResult> RunProcessAsync(string workingDirectory, Dictionary<string, string>? environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(ToolPath);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        // The tool must read only what the test gives it, not the developer's Konduit__ variables.
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("Konduit__", StringComparison.OrdinalIgnoreCase)).ToList()) start.Environment.Remove(key);
        foreach (var (key, value) in environment ?? []) start.Environment[key] = value;

        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(Ct);
        var stderr = process.StandardError.ReadToEndAsync(Ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromMinutes(1));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        return new CliResult(process.ExitCode, await stdout, await stderr);
    }

    public static Task<string> PostgresAsync() => TestServer.LocateAsync("KONDUIT_TEST_POSTGRES", "PostgreSQL",
        "run `scripts/services.sh up && source .services/env`", () => throw new InvalidOperationException("no Docker fallback in the CLI tests"));

    public static Task<string> RedisAsync() => TestServer.LocateAsync("KONDUIT_TEST_REDIS", "Redis",
        "run `scripts/services.sh up && source .services/env`", () => throw new InvalidOperationException("no Docker fallback in the CLI tests"));

    /// <summary>A fresh directory holding <c>appsettings.json</c> with <paramref name="json"/>.</summary>
    public static string AppDirectory(string json)
    {
        var dir = Directory.CreateTempSubdirectory("konduit-cli-").FullName;
        File.WriteAllText(Path.Combine(dir, "appsettings.json"), json);
        return dir;
    }

    public static string Quote(string value) => JsonSerializer.Serialize(value);
}
