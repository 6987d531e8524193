using System.CommandLine;

namespace Konduit.Cli.Commands;

/// <summary><c>konduit queues pause|resume &lt;queue&gt;</c> and <c>konduit queues paused</c>: workers on every node stop leasing a paused queue.</summary>
internal static class QueuesCommand
{
    public static Command Create(CliGlobals globals, CliContext context)
    {
        var queues = new Command("queues", "Pause and resume queues (the state is in the store: every node's workers obey it).");
        queues.Subcommands.Add(Change(globals, context, pause: true));
        queues.Subcommands.Add(Change(globals, context, pause: false));
        var paused = new Command("paused", "List the paused queues.");
        CliRun.Bind(paused, globals, context, async (run, ct) =>
        {
            var names = (await run.Store.GetPausedQueuesAsync(ct).ConfigureAwait(false)).Order(StringComparer.Ordinal).ToList();
            if (run.Json)
            {
                run.Output.WriteJson(w =>
                {
                    w.WriteStartArray();
                    foreach (var name in names) w.WriteStringValue(name);
                    w.WriteEndArray();
                });
            }
            else
            {
                run.Output.Line(names.Count == 0 ? "no queue is paused." : string.Join(Environment.NewLine, names));
            }
            return ExitCodes.Success;
        });
        queues.Subcommands.Add(paused);
        return queues;
    }

    private static Command Change(CliGlobals globals, CliContext context, bool pause)
    {
        var queue = new Argument<string>("queue") { Description = "The queue." };
        var command = new Command(pause ? "pause" : "resume", pause
            ? "Pause a queue: no worker leases from it until it is resumed (running tasks finish)."
            : "Resume a paused queue.") { queue };
        CliRun.Bind(command, globals, context, async (run, ct) =>
        {
            var name = run.Value(queue);
            if (pause) await run.Store.PauseQueueAsync(name, ct).ConfigureAwait(false);
            else await run.Store.ResumeQueueAsync(name, ct).ConfigureAwait(false);
            if (run.Json)
            {
                run.Output.WriteJson(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("queue", name);
                    w.WriteBoolean("paused", pause);
                    w.WriteEndObject();
                });
            }
            else
            {
                run.Output.Line(pause ? $"paused {name}" : $"resumed {name}");
            }
            return ExitCodes.Success;
        });
        return command;
    }
}
