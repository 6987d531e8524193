using System.Collections;

namespace Konduit.Cli;

/// <summary>
/// Everything the CLI reads from and writes to the outside world, so tests drive it in-process with their own
/// streams, working directory and environment (process-wide environment variables would leak between tests).
/// </summary>
internal sealed class CliContext
{
    public required TextWriter Out { get; init; }
    public required TextWriter Error { get; init; }
    public required TextReader In { get; init; }

    /// <summary>Where <c>appsettings.json</c> is looked for and relative paths (<c>--payload @file</c>) start.</summary>
    public required string WorkingDirectory { get; init; }

    /// <summary>Environment variables, as the process sees them (the configuration reads <c>Konduit__…</c> ones).</summary>
    public required IReadOnlyDictionary<string, string> Environment { get; init; }

    /// <summary>A person is at a terminal: confirmation prompts may be asked and live views drawn.</summary>
    public bool IsInteractive { get; init; }

    /// <summary>The clock for relative times (<c>--since 24h</c>, <c>--run-at +10m</c>).</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>The real console of this process.</summary>
    public static CliContext FromProcess() => new()
    {
        Out = Console.Out,
        Error = Console.Error,
        In = Console.In,
        WorkingDirectory = Directory.GetCurrentDirectory(),
        Environment = ReadEnvironment(),
        IsInteractive = !Console.IsInputRedirected && !Console.IsOutputRedirected,
    };

    private static Dictionary<string, string> ReadEnvironment()
    {
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (DictionaryEntry entry in System.Environment.GetEnvironmentVariables())
        {
            if (entry.Key is string key && entry.Value is string value) result[key] = value;
        }
        return result;
    }
}
