using System.CommandLine;
using Spectre.Console;

namespace Konduit.Cli.Commands;

/// <summary><c>konduit tasks list|show|retry|cancel</c>.</summary>
internal static class TasksCommands
{
    /// <summary>Most tasks <c>tasks list</c> returns in one run.</summary>
    public const int MaxListLimit = 100_000;

    public static Command Create(CliGlobals globals, CliContext context)
    {
        var tasks = new Command("tasks", "List, inspect, retry and cancel tasks.");
        tasks.Subcommands.Add(List(globals, context));
        tasks.Subcommands.Add(Show(globals, context));
        tasks.Subcommands.Add(Change(globals, context, TaskChange.Retry));
        tasks.Subcommands.Add(Change(globals, context, TaskChange.Cancel));
        return tasks;
    }

    private static Command List(CliGlobals globals, CliContext context)
    {
        var filter = new TaskFilterOptions();
        var limit = new Option<int>("--limit", "-n") { Description = $"Most tasks to show, newest first (default 50, at most {MaxListLimit}).", DefaultValueFactory = _ => 50 };
        var command = new Command("list", "List tasks, newest first.") { limit };
        filter.AddTo(command);
        CliRun.Bind(command, globals, context, async (run, ct) =>
        {
            var max = run.Value(limit);
            if (max is < 1 or > MaxListLimit) throw CliException.Usage($"--limit must be 1–{MaxListLimit}; got {max}.");
            var query = filter.ToQuery(run);
            var items = new List<TaskSnapshot>();
            Guid? cursor = null;
            do
            {
                var page = await run.Store.QueryAsync(query, new PageRequest(Math.Min(1000, max - items.Count), cursor), ct).ConfigureAwait(false);
                items.AddRange(page.Items);
                cursor = page.NextCursor;
            }
            while (cursor is not null && items.Count < max);

            if (run.Json)
            {
                run.Output.WriteJson(w =>
                {
                    w.WriteStartArray();
                    foreach (var task in items) TaskJson.WriteTask(w, task, withData: false);
                    w.WriteEndArray();
                });
                return ExitCodes.Success;
            }
            var table = CliOutput.Table("id", "queue", "state", "attempts", "tenant", "enqueued", "finished", "last error");
            foreach (var t in items)
            {
                CliOutput.Row(table, t.Id.ToString(), t.Queue, CliOutput.StateName(t.State), $"{t.Attempts}/{t.MaxAttempts}", t.Tenant,
                    CliOutput.Time(t.EnqueuedAt), CliOutput.Time(t.FinishedAt), CliOutput.Short(t.Errors.Count > 0 ? t.Errors[^1].Message : null));
            }
            run.Output.Write(table);
            run.Output.Line(cursor is null ? $"{items.Count} task(s)." : $"{items.Count} task(s) shown; more match (raise --limit).");
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Show(CliGlobals globals, CliContext context)
    {
        var id = new Argument<string>("id") { Description = "The task id." };
        var command = new Command("show", "Show one task: its snapshot, error history and, when an event log is configured, its event history.") { id };
        CliRun.Bind(command, globals, context, async (run, ct) =>
        {
            var taskId = CliParsing.ParseTaskId(run.Value(id));
            var task = await run.Store.GetAsync(taskId, ct).ConfigureAwait(false);
            var log = run.Session.EventLog;
            var events = log is null ? null : await log.ReadTaskHistoryAsync(taskId, ct).ConfigureAwait(false);

            if (run.Json)
            {
                run.Output.WriteJson(w =>
                {
                    w.WriteStartObject();
                    w.WritePropertyName("task");
                    TaskJson.WriteTask(w, task, withData: true);
                    if (events is null)
                    {
                        w.WriteNull("events");
                    }
                    else
                    {
                        w.WriteStartArray("events");
                        foreach (var e in events) TaskJson.WriteEvent(w, e);
                        w.WriteEndArray();
                    }
                    w.WriteEndObject();
                });
                return ExitCodes.Success;
            }

            var grid = new Grid().AddColumn().AddColumn();
            void Field(string name, string? value) => grid.AddRow(new Text(name), new Text(value ?? ""));
            Field("id", task.Id.ToString());
            Field("queue", task.Queue);
            Field("state", CliOutput.StateName(task.State));
            Field("attempts", $"{task.Attempts}/{task.MaxAttempts}");
            Field("priority", task.Priority.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Field("tenant", task.Tenant);
            Field("idempotency key", task.IdempotencyKey);
            Field("enqueued", CliOutput.Time(task.EnqueuedAt));
            Field("run at", CliOutput.Time(task.RunAt));
            Field("started", CliOutput.Time(task.StartedAt));
            Field("finished", CliOutput.Time(task.FinishedAt));
            Field("updated", CliOutput.Time(task.UpdatedAt));
            Field("worker", task.WorkerId);
            Field("lease expires", CliOutput.Time(task.LeaseExpiresAt));
            Field("lease token", task.LeaseToken.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Field("payload", CliOutput.Short(TaskJson.IsJson(task.Payload) ? System.Text.Encoding.UTF8.GetString(task.Payload) : $"{task.Payload.Length} bytes", 200));
            run.Output.Write(grid);

            run.Output.Line("");
            if (task.Errors.Count == 0)
            {
                run.Output.Line("errors: none");
            }
            else
            {
                var errors = CliOutput.Table("attempt", "at", "error");
                foreach (var e in task.Errors)
                    CliOutput.Row(errors, e.Attempt.ToString(System.Globalization.CultureInfo.InvariantCulture), CliOutput.Time(e.OccurredAt), CliOutput.Short(e.Message, 160));
                run.Output.Write(errors);
            }

            run.Output.Line("");
            if (events is null)
            {
                run.Output.Line("events: no event log is configured (Konduit:EventLog).");
            }
            else if (events.Count == 0)
            {
                run.Output.Line("events: none recorded (expired, or recorded before the event log was configured).");
            }
            else
            {
                var history = CliOutput.Table("at", "event", "attempt", "worker", "error");
                foreach (var e in events)
                {
                    CliOutput.Row(history, CliOutput.Time(e.Timestamp), e.Kind.ToString().ToLowerInvariant(),
                        e.Attempt.ToString(System.Globalization.CultureInfo.InvariantCulture), e.WorkerId, CliOutput.Short(e.Error));
                }
                run.Output.Write(history);
            }
            return ExitCodes.Success;
        });
        return command;
    }

    internal enum TaskChange
    {
        Retry,
        Cancel,
    }

    private static Command Change(CliGlobals globals, CliContext context, TaskChange change)
    {
        var ids = new Argument<string[]>("id") { Description = "Task ids (or use the filter options instead).", Arity = ArgumentArity.ZeroOrMore };
        var filter = new TaskFilterOptions();
        var yes = new Option<bool>("--yes", "-y") { Description = "With a filter: do it without asking for confirmation." };
        var max = new Option<int>("--max") { Description = $"With a filter: most tasks changed in one run (default 10000, at most {MaxBulkCount}).", DefaultValueFactory = _ => 10_000 };
        var command = change == TaskChange.Retry
            ? new Command("retry", "Redrive failed or canceled tasks (by id, or all matching a filter): back to pending, due now, attempts reset.") { ids, yes, max }
            : new Command("cancel", "Cancel pending or running tasks (by id, or all matching a filter).") { ids, yes, max };
        filter.AddTo(command);
        CliRun.Bind(command, globals, context, async (run, ct) =>
        {
            var given = run.Value(ids) ?? [];
            if (given.Length > 0 && filter.AnyGiven(run)) throw CliException.Usage("give task ids or filter options (--queue, --state, --tenant, --since, --finished-since), not both.");
            if (given.Length == 0 && !filter.AnyGiven(run)) throw CliException.Usage("give task ids, or filter options (--state failed --tenant x --since 24h) to change every matching task.");
            if (given.Length == 0) return await ChangeByFilterAsync(run, filter, change, run.Value(max), run.Value(yes), ct).ConfigureAwait(false);

            var taskIds = given.Select(CliParsing.ParseTaskId).Distinct().ToArray();
            var outcomes = new List<(Guid Id, string Outcome, string? Detail)>();
            bool anyNotFound = false, anyInvalidState = false;
            foreach (var taskId in taskIds)
            {
                try
                {
                    if (change == TaskChange.Retry)
                    {
                        await run.Store.RedriveAsync(taskId, ct).ConfigureAwait(false);
                        outcomes.Add((taskId, "redriven", null));
                    }
                    else if (await run.Store.CancelAsync(taskId, ct).ConfigureAwait(false))
                    {
                        outcomes.Add((taskId, "canceled", null));
                    }
                    else
                    {
                        var state = (await run.Store.GetAsync(taskId, ct).ConfigureAwait(false)).State;
                        outcomes.Add((taskId, "invalid-state", $"already {CliOutput.StateName(state)}"));
                        anyInvalidState = true;
                    }
                }
                catch (TaskNotFoundException)
                {
                    outcomes.Add((taskId, "not-found", "no such task"));
                    anyNotFound = true;
                }
                catch (InvalidTaskStateException ex)
                {
                    outcomes.Add((taskId, "invalid-state", $"is {CliOutput.StateName(ex.CurrentState)}"));
                    anyInvalidState = true;
                }
            }
            WriteOutcomes(run, outcomes);
            // An unknown id is the worse news for a script (a typo, or a purged task): it wins over a state conflict.
            return anyNotFound ? ExitCodes.NotFound : anyInvalidState ? ExitCodes.InvalidState : ExitCodes.Success;
        });
        return command;
    }

    /// <summary>Most tasks one filtered retry or cancel changes.</summary>
    public const int MaxBulkCount = 100_000;

    private static async Task<int> ChangeByFilterAsync(CliRun run, TaskFilterOptions filter, TaskChange change, int max, bool yes, CancellationToken ct)
    {
        if (max is < 1 or > MaxBulkCount) throw CliException.Usage($"--max must be 1–{MaxBulkCount}; got {max}.");
        var query = filter.ToQuery(run);
        // Without --state, only the states the operation applies to: a filter never asks the store to refuse tasks.
        query = query with
        {
            States = query.States ?? (change == TaskChange.Retry ? [TaskState.Failed, TaskState.Canceled] : [TaskState.Pending, TaskState.Running]),
        };
        var verb = change == TaskChange.Retry ? "redrive" : "cancel";

        // The count shown before the prompt: one page more than --max says whether more match than will change.
        var matched = 0;
        Guid? cursor = null;
        do
        {
            var page = await run.Store.QueryAsync(query, new PageRequest(1000, cursor), ct).ConfigureAwait(false);
            matched += page.Items.Count;
            cursor = page.NextCursor;
        }
        while (cursor is not null && matched <= max);

        if (matched == 0)
        {
            if (run.Json) WriteBulk(run, 0, []);
            else run.Output.Line($"no task matches; nothing to {verb}.");
            return ExitCodes.Success;
        }
        var count = matched > max ? $"more than {max} tasks match; the first {max}" : $"{matched} task(s)";
        if (!await run.ConfirmAsync($"{char.ToUpperInvariant(verb[0])}{verb[1..]} {count}?", yes, ct).ConfigureAwait(false))
            return ExitCodes.NotConfirmed;

        // The store changes at most 1000 per call; a changed task no longer matches the filter's states, so each call takes the next ones.
        var changed = new List<Guid>();
        while (changed.Count < max)
        {
            var chunk = Math.Min(1000, max - changed.Count);
            var batch = change == TaskChange.Retry
                ? await run.Store.RedriveManyAsync(query, chunk, ct).ConfigureAwait(false)
                : await run.Store.CancelManyAsync(query, chunk, ct).ConfigureAwait(false);
            changed.AddRange(batch);
            if (batch.Count == 0) break;
        }
        if (run.Json) WriteBulk(run, Math.Min(matched, max), changed);
        else run.Output.Line($"{(change == TaskChange.Retry ? "redriven" : "canceled")} {changed.Count} task(s).");
        return ExitCodes.Success;
    }

    private static void WriteBulk(CliRun run, int matched, IReadOnlyList<Guid> changed) =>
        run.Output.WriteJson(w =>
        {
            w.WriteStartObject();
            w.WriteNumber("matched", matched);
            w.WriteNumber("changed", changed.Count);
            w.WriteStartArray("ids");
            foreach (var id in changed) w.WriteStringValue(id);
            w.WriteEndArray();
            w.WriteEndObject();
        });

    internal static void WriteOutcomes(CliRun run, IReadOnlyList<(Guid Id, string Outcome, string? Detail)> outcomes)
    {
        if (run.Json)
        {
            run.Output.WriteJson(w =>
            {
                w.WriteStartArray();
                foreach (var (id, outcome, detail) in outcomes)
                {
                    w.WriteStartObject();
                    w.WriteString("id", id);
                    w.WriteString("outcome", outcome);
                    TaskJson.WriteNullable(w, "detail", detail);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            });
            return;
        }
        foreach (var (id, outcome, detail) in outcomes)
            run.Output.Line(detail is null ? $"{id}: {outcome}" : $"{id}: {outcome} ({detail})");
    }
}
