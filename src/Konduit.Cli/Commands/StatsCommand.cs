using System.CommandLine;
using System.Globalization;
using Spectre.Console;

namespace Konduit.Cli.Commands;

/// <summary><c>konduit stats [--watch]</c>: tasks per queue and state; with --watch, refreshed, with throughput.</summary>
internal static class StatsCommand
{
    public static Command Create(CliGlobals globals, CliContext context)
    {
        var watch = new Option<bool>("--watch", "-w") { Description = "Refresh until Ctrl+C, with finished tasks per second per queue." };
        var interval = new Option<string>("--interval") { Description = "Refresh interval with --watch (default 2s).", DefaultValueFactory = _ => "2s" };
        var queue = new Option<string?>("--queue", "-q") { Description = "Only this queue." };
        var command = new Command("stats", "Tasks per queue and state.") { watch, interval, queue };
        CliRun.Bind(command, globals, context, async (run, ct) =>
        {
            var every = CliParsing.ParseDuration("--interval", run.Value(interval));
            if (every < TimeSpan.FromMilliseconds(100)) throw CliException.Usage("--interval must be at least 100ms.");
            var only = run.Value(queue);
            async Task<IReadOnlyList<QueueStats>> ReadAsync() =>
                [.. (await run.Store.GetStatsAsync(ct).ConfigureAwait(false)).Where(s => only is null || s.Queue == only)];

            var stats = await ReadAsync().ConfigureAwait(false);
            var readAt = run.Context.Time.GetUtcNow();
            if (!run.Value(watch))
            {
                if (run.Json) WriteJson(run, stats, null, readAt);
                else run.Output.Write(Table(stats, null, readAt));
                return ExitCodes.Success;
            }

            try
            {
                if (run.Json || !run.Context.IsInteractive)
                {
                    // A script watching: one document (or table) per refresh, as lines it can read as they come.
                    IReadOnlyDictionary<string, double>? rates = null;
                    while (true)
                    {
                        if (run.Json) WriteJson(run, stats, rates, readAt);
                        else run.Output.Write(Table(stats, rates, readAt));
                        await Task.Delay(every, run.Context.Time, ct).ConfigureAwait(false);
                        (stats, readAt, rates) = await NextAsync(stats, readAt).ConfigureAwait(false);
                    }
                }
                await run.Output.Console.Live(Table(stats, null, readAt)).StartAsync(async live =>
                {
                    while (true)
                    {
                        await Task.Delay(every, run.Context.Time, ct).ConfigureAwait(false);
                        (stats, readAt, var rates) = await NextAsync(stats, readAt).ConfigureAwait(false);
                        live.UpdateTarget(Table(stats, rates, readAt));
                    }
                }).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // Ctrl+C is how a watch ends.
            }
            return ExitCodes.Success;

            async Task<(IReadOnlyList<QueueStats>, DateTimeOffset, IReadOnlyDictionary<string, double>)> NextAsync(IReadOnlyList<QueueStats> previous, DateTimeOffset previousAt)
            {
                var next = await ReadAsync().ConfigureAwait(false);
                var at = run.Context.Time.GetUtcNow();
                return (next, at, Rates(previous, next, at - previousAt));
            }
        });
        return command;
    }

    /// <summary>Finished (succeeded + failed + canceled) tasks per second per queue between two readings.</summary>
    internal static Dictionary<string, double> Rates(IReadOnlyList<QueueStats> before, IReadOnlyList<QueueStats> after, TimeSpan elapsed)
    {
        var rates = new Dictionary<string, double>(StringComparer.Ordinal);
        if (elapsed <= TimeSpan.Zero) return rates;
        var previous = before.ToDictionary(s => s.Queue, Finished, StringComparer.Ordinal);
        foreach (var s in after)
        {
            // A purge lowers the finished counts: never report a negative rate.
            var delta = Finished(s) - previous.GetValueOrDefault(s.Queue, Finished(s));
            rates[s.Queue] = Math.Max(0, delta) / elapsed.TotalSeconds;
        }
        return rates;
    }

    private static long Finished(QueueStats s) => s.Succeeded + s.Failed + s.Canceled;

    private static Table Table(IReadOnlyList<QueueStats> stats, IReadOnlyDictionary<string, double>? rates, DateTimeOffset now)
    {
        string[] columns = ["queue", "pending", "due", "scheduled", "oldest due", "running", "succeeded", "failed", "canceled", "total"];
        var table = CliOutput.Table(rates is null ? columns : [.. columns, "finished/s"]);
        foreach (var s in stats)
        {
            string[] cells = [s.Queue, N(s.Pending), N(s.PendingDue), N(s.PendingScheduled), s.OldestDueAt is { } due ? CliOutput.Age(now - due) : "", N(s.Running), N(s.Succeeded), N(s.Failed), N(s.Canceled), N(s.Total)];
            CliOutput.Row(table, rates is null ? cells : [.. cells, rates.TryGetValue(s.Queue, out var r) ? r.ToString("0.0", CultureInfo.InvariantCulture) : ""]);
        }
        if (stats.Count == 0) CliOutput.Row(table, "(no tasks)");
        for (var i = 1; i < table.Columns.Count; i++) table.Columns[i].RightAligned();
        return table;
    }

    private static string N(long n) => n.ToString(CultureInfo.InvariantCulture);

    private static void WriteJson(CliRun run, IReadOnlyList<QueueStats> stats, IReadOnlyDictionary<string, double>? rates, DateTimeOffset now) =>
        run.Output.WriteJson(w =>
        {
            w.WriteStartArray();
            foreach (var s in stats)
            {
                w.WriteStartObject();
                w.WriteString("queue", s.Queue);
                w.WriteNumber("pending", s.Pending);
                w.WriteNumber("pendingDue", s.PendingDue);
                w.WriteNumber("pendingScheduled", s.PendingScheduled);
                TaskJson.WriteTime(w, "oldestDueAt", s.OldestDueAt);
                if (s.OldestDueAt is { } due) w.WriteNumber("oldestDueAgeSeconds", Math.Round(Math.Max(0, (now - due).TotalSeconds), 3));
                else w.WriteNull("oldestDueAgeSeconds");
                w.WriteNumber("running", s.Running);
                w.WriteNumber("succeeded", s.Succeeded);
                w.WriteNumber("failed", s.Failed);
                w.WriteNumber("canceled", s.Canceled);
                w.WriteNumber("total", s.Total);
                if (rates is not null && rates.TryGetValue(s.Queue, out var rate)) w.WriteNumber("finishedPerSecond", Math.Round(rate, 3));
                w.WriteEndObject();
            }
            w.WriteEndArray();
        });
}
