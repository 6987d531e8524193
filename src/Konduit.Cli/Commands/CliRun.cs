using System.CommandLine;

namespace Konduit.Cli.Commands;

/// <summary>One invocation of a command: its parse result, output, and the store session, opened on first use (after the
/// command has checked its own arguments, so a bad argument is reported before the configuration is read).</summary>
internal sealed class CliRun : IAsyncDisposable
{
    private readonly CliGlobals _globals;
    private CliSession? _session;

    private CliRun(ParseResult parse, CliGlobals globals, CliContext context)
    {
        Parse = parse;
        _globals = globals;
        Context = context;
        Output = new CliOutput(context, parse.GetValue(globals.Json));
    }

    public ParseResult Parse { get; }
    public CliContext Context { get; }
    public CliOutput Output { get; }
    public bool Json => Output.Json;

    public CliSession Session => _session ??= CliSession.Open(Context, _globals.Settings(Parse));

    public ITaskStore Store => Session.Store;

    public T Value<T>(Option<T> option) => Parse.GetValue(option)!;

    public T Value<T>(Argument<T> argument) => Parse.GetValue(argument)!;

    public ValueTask DisposeAsync() => _session?.DisposeAsync() ?? ValueTask.CompletedTask;

    /// <summary>Sets <paramref name="command"/>'s action to <paramref name="action"/> with a fresh run.</summary>
    public static void Bind(Command command, CliGlobals globals, CliContext context, Func<CliRun, CancellationToken, Task<int>> action) =>
        command.SetAction(async (parse, cancellationToken) =>
        {
            var run = new CliRun(parse, globals, context);
            await using (run.ConfigureAwait(false))
                return await action(run, cancellationToken).ConfigureAwait(false);
        });

    /// <summary>
    /// Asks "<paramref name="question"/> [y/N]" on the terminal; true for yes. Without a terminal (a script) and without
    /// <c>--yes</c> the answer is no, so that nothing destructive happens unattended by accident.
    /// </summary>
    public async Task<bool> ConfirmAsync(string question, bool yes, CancellationToken cancellationToken)
    {
        if (yes) return true;
        if (!Context.IsInteractive)
        {
            await Context.Error.WriteLineAsync($"konduit: {question} Not confirmed: pass --yes to run it without a prompt.").ConfigureAwait(false);
            return false;
        }
        await Context.Error.WriteAsync($"{question} [y/N] ").ConfigureAwait(false);
        var answer = await Context.In.ReadLineAsync(cancellationToken).ConfigureAwait(false);
        return answer?.Trim() is "y" or "Y" or "yes" or "YES" or "Yes";
    }
}
