using System.CommandLine;
using System.Net.Sockets;
using Konduit.Cli.Commands;
using Microsoft.Extensions.Options;

namespace Konduit.Cli;

/// <summary>The options every command takes (recursive: they may stand before or after the command name).</summary>
internal sealed class CliGlobals
{
    public Option<string?> Config { get; } = new("--config")
    {
        Description = "The JSON settings file to read (default: appsettings.json and appsettings.<DOTNET_ENVIRONMENT>.json in the current directory).",
        Recursive = true,
    };

    public Option<string?> Store { get; } = new("--store")
    {
        Description = "Overrides Konduit:Store (Postgres, Redis, PostgresRedis, Sqlite, InMemory).",
        Recursive = true,
    };

    public Option<string?> Connection { get; } = new("--connection")
    {
        Description = "Overrides the selected store's connection setting (Konduit:Postgres:ConnectionString, Konduit:Redis:Configuration, …).",
        Recursive = true,
    };

    public Option<bool> Json { get; } = new("--json")
    {
        Description = "Write the result as JSON on stdout (for scripts) instead of tables.",
        Recursive = true,
    };

    public CliSettings Settings(ParseResult parse) => new(parse.GetValue(Config), parse.GetValue(Store), parse.GetValue(Connection));
}

/// <summary>The <c>konduit</c> command line: parsing, dispatch, and the mapping of every failure to one line and an exit code.</summary>
internal static class KonduitCli
{
    public static RootCommand BuildRoot(CliContext context)
    {
        var globals = new CliGlobals();
        var root = new RootCommand("Operate Konduit task queues on the store your Konduit configuration selects.");
        root.Options.Add(globals.Config);
        root.Options.Add(globals.Store);
        root.Options.Add(globals.Connection);
        root.Options.Add(globals.Json);
        root.Subcommands.Add(MigrateCommand.Create(globals, context));
        root.Subcommands.Add(EnqueueCommand.Create(globals, context));
        root.Subcommands.Add(TasksCommands.Create(globals, context));
        root.Subcommands.Add(StatsCommand.Create(globals, context));
        root.Subcommands.Add(PurgeCommand.Create(globals, context));
        root.Subcommands.Add(QueuesCommand.Create(globals, context));
        return root;
    }

    /// <summary>Runs one command line; returns its exit code (<see cref="ExitCodes"/>).</summary>
    public static async Task<int> RunAsync(string[] args, CliContext context, CancellationToken cancellationToken = default)
    {
        var root = BuildRoot(context);
        // No response files: "@file.json" is a payload argument (--payload @order.json), read by the enqueue command.
        var parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (parse.Errors.Count > 0)
        {
            await context.Error.WriteLineAsync($"konduit: {parse.Errors[0].Message} (see konduit --help)").ConfigureAwait(false);
            return ExitCodes.Usage;
        }
        try
        {
            return await parse.InvokeAsync(new InvocationConfiguration
            {
                Output = context.Out,
                Error = context.Error,
                // Failures are reported here, as one line with a specific exit code, never as a stack trace.
                EnableDefaultExceptionHandler = false,
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            var (code, message) = Describe(ex, cancellationToken);
            await context.Error.WriteLineAsync($"konduit: {message}").ConfigureAwait(false);
            return code;
        }
    }

    /// <summary>The exit code and one-line message for a failure.</summary>
    internal static (int Code, string Message) Describe(Exception ex, CancellationToken cancellationToken) => ex switch
    {
        CliException cli => (cli.ExitCode, OneLine(cli.Message)),
        OperationCanceledException when cancellationToken.IsCancellationRequested => (ExitCodes.Interrupted, "interrupted."),
        OptionsValidationException options => (ExitCodes.Configuration, "invalid configuration: " + OneLine(string.Join("; ", options.Failures))),
        TaskNotFoundException notFound => (ExitCodes.NotFound, OneLine(notFound.Message)),
        InvalidTaskStateException state => (ExitCodes.InvalidState, OneLine(state.Message)),
        ArgumentException argument => (ExitCodes.Usage, "refused by the store: " + OneLine(argument.Message)),
        Hosting.KonduitStartupException startup => (ExitCodes.Unavailable, OneLine(startup.Message)),
        StoreUnavailableException unavailable => (ExitCodes.Unavailable, OneLine(unavailable.Message + Inner(unavailable))),
        TimeoutException or SocketException => (ExitCodes.Unavailable, "the store did not answer: " + OneLine(ex.Message)),
        InvalidOperationException { InnerException: null } invalid when invalid.Message.Contains("Konduit:", StringComparison.Ordinal)
            => (ExitCodes.Configuration, OneLine(invalid.Message)),
        _ when Unreachable(ex) => (ExitCodes.Unavailable, "the store could not be reached: " + OneLine(Innermost(ex).Message)),
        KonduitException konduit => (ExitCodes.Failure, OneLine(konduit.Message)
            + (konduit.Message.Contains("MigrateAsync", StringComparison.Ordinal) ? " (konduit migrate does that)" : "")),
        _ => (ExitCodes.Failure, $"{ex.GetType().Name}: {OneLine(ex.Message)}{Inner(ex)}"),
    };

    private static bool Unreachable(Exception ex)
    {
        for (var e = ex; e is not null; e = e.InnerException)
        {
            if (e is SocketException or TimeoutException or StoreUnavailableException) return true;
        }
        return false;
    }

    private static Exception Innermost(Exception ex)
    {
        var e = ex;
        while (e.InnerException is not null) e = e.InnerException;
        return e;
    }

    private static string Inner(Exception ex) =>
        ex.InnerException is { } inner && !ex.Message.Contains(inner.Message, StringComparison.Ordinal) ? $" ({OneLine(inner.Message)})" : "";

    internal static string OneLine(string text) =>
        string.Join(' ', text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
