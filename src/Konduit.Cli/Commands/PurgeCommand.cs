using System.CommandLine;

namespace Konduit.Cli.Commands;

/// <summary><c>konduit purge --older-than 7d --state succeeded</c>: deletes finished tasks (their idempotency keys become free).</summary>
internal static class PurgeCommand
{
    public static Command Create(CliGlobals globals, CliContext context)
    {
        var olderThan = new Option<string>("--older-than") { Description = "Only tasks that finished at least this long ago (7d, 12h).", Required = true };
        var state = new Option<string[]>("--state", "-s") { Description = "Only these terminal states (succeeded, failed, canceled; default all three)." };
        var queue = new Option<string?>("--queue", "-q") { Description = "Only this queue." };
        var command = new Command("purge", "Delete finished tasks older than a given age.") { olderThan, state, queue };
        CliRun.Bind(command, globals, context, async (run, ct) =>
        {
            var age = CliParsing.ParseDuration("--older-than", run.Value(olderThan));
            var states = CliParsing.ParseStates("--state", run.Value(state));
            if (states?.FirstOrDefault(s => !s.IsTerminal()) is { } live && states.Any(s => !s.IsTerminal()))
                throw CliException.Usage($"--state: only finished tasks are purged (succeeded, failed, canceled), not {CliOutput.StateName(live)}.");
            var purged = await run.Store.PurgeAsync(age, states, run.Value(queue), ct).ConfigureAwait(false);
            if (run.Json)
            {
                run.Output.WriteJson(w =>
                {
                    w.WriteStartObject();
                    w.WriteNumber("purged", purged.Count);
                    w.WriteStartObject("byState");
                    foreach (var group in purged.GroupBy(p => p.State).OrderBy(g => g.Key))
                        w.WriteNumber(CliOutput.StateName(group.Key), group.Count());
                    w.WriteEndObject();
                    w.WriteEndObject();
                });
            }
            else
            {
                var detail = string.Join(", ", purged.GroupBy(p => p.State).OrderBy(g => g.Key).Select(g => $"{g.Count()} {CliOutput.StateName(g.Key)}"));
                run.Output.Line(purged.Count == 0 ? "purged 0 tasks." : $"purged {purged.Count} task(s): {detail}.");
            }
            return ExitCodes.Success;
        });
        return command;
    }
}
