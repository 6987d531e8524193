using System.CommandLine;

namespace Konduit.Cli.Commands;

/// <summary><c>konduit migrate [--dry-run]</c>: creates or upgrades the store's schema (and the event log's), idempotently.</summary>
internal static class MigrateCommand
{
    public static Command Create(CliGlobals globals, CliContext context)
    {
        var dryRun = new Option<bool>("--dry-run") { Description = "Check the configuration and say what would be migrated; change nothing." };
        var command = new Command("migrate", "Create or upgrade the schema of the configured store and event log (idempotent; safe to run on every deploy).")
        {
            dryRun,
        };
        CliRun.Bind(command, globals, context, async (run, ct) =>
        {
            var session = run.Session;
            var store = session.Store;
            var storeComponent = session.StoreComponent;
            var eventLog = session.EventLogComponent;
            var steps = new List<(string Component, string Name, string Outcome)>();

            if (run.Value(dryRun))
            {
                // Resolving the store above validated the whole Konduit section; nothing has connected yet.
                steps.Add(("store", storeComponent.Name, storeComponent.Migrate is null ? "has no schema" : "would migrate"));
                if (eventLog is not null)
                    steps.Add(("event log", eventLog.Name, eventLog.Migrate is null ? "has no schema" : "would migrate"));
            }
            else
            {
                var migrated = await session.Startup.MigrateAsync(ct).ConfigureAwait(false);
                steps.Add(("store", storeComponent.Name, migrated ? "migrated" : "has no schema"));
                if (eventLog is not null)
                {
                    if (eventLog.Migrate is { } migrate)
                    {
                        await migrate(session.Services, session.EventLog!, ct).ConfigureAwait(false);
                        steps.Add(("event log", eventLog.Name, "migrated"));
                    }
                    else
                    {
                        steps.Add(("event log", eventLog.Name, "has no schema"));
                    }
                }
            }

            if (run.Json)
            {
                run.Output.WriteJson(w =>
                {
                    w.WriteStartObject();
                    w.WriteBoolean("dryRun", run.Value(dryRun));
                    w.WriteString("store", store.Name);
                    w.WriteStartArray("steps");
                    foreach (var (component, name, outcome) in steps)
                    {
                        w.WriteStartObject();
                        w.WriteString("component", component);
                        w.WriteString("name", name);
                        w.WriteString("outcome", outcome);
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                    w.WriteEndObject();
                });
            }
            else
            {
                foreach (var (component, name, outcome) in steps) run.Output.Line($"{component} {name}: {outcome}");
            }
            return ExitCodes.Success;
        });
        return command;
    }
}
