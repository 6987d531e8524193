namespace Konduit.Cli;

/// <summary>
/// The exit codes scripts can rely on (README, "The konduit CLI"). Never renumber: they are a contract.
/// </summary>
internal static class ExitCodes
{
    /// <summary>The command did what it was asked.</summary>
    public const int Success = 0;

    /// <summary>An unexpected error (a bug, or a store error that is neither bad input nor unavailability).</summary>
    public const int Failure = 1;

    /// <summary>Bad command line or bad input: an unknown option, a value that does not parse, a payload that is not JSON, input the store refused.</summary>
    public const int Usage = 2;

    /// <summary>The Konduit configuration is invalid or incomplete (unknown key, no store selected, missing connection string).</summary>
    public const int Configuration = 3;

    /// <summary>The store (or its server) could not be reached or did not answer in time.</summary>
    public const int Unavailable = 4;

    /// <summary>A task id does not exist (never enqueued, or purged).</summary>
    public const int NotFound = 5;

    /// <summary>A task was not in a state the operation applies to (retry of a pending task, cancel of a finished one).</summary>
    public const int InvalidState = 6;

    /// <summary>A bulk operation was not confirmed (answered no, or no terminal to ask and no <c>--yes</c>).</summary>
    public const int NotConfirmed = 7;

    /// <summary>Interrupted (Ctrl+C) before the command finished.</summary>
    public const int Interrupted = 130;
}

/// <summary>A failure the CLI reports as one line with a specific exit code.</summary>
internal sealed class CliException : Exception
{
    public CliException(int exitCode, string message, Exception? innerException = null) : base(message, innerException) => ExitCode = exitCode;

    public int ExitCode { get; }

    public static CliException Usage(string message) => new(ExitCodes.Usage, message);
}
