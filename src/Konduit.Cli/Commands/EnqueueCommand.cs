using System.CommandLine;
using System.Text;

namespace Konduit.Cli.Commands;

/// <summary><c>konduit enqueue &lt;queue&gt; --payload @file.json</c>: puts one task into a queue.</summary>
internal static class EnqueueCommand
{
    public static Command Create(CliGlobals globals, CliContext context)
    {
        var queue = new Argument<string>("queue") { Description = "The queue (1–128 characters of A-Z a-z 0-9 . _ : -)." };
        var payload = new Option<string>("--payload", "-p")
        {
            Description = "The payload: @path to read a file, - to read stdin, or the JSON text itself.",
            Required = true,
        };
        var raw = new Option<bool>("--raw") { Description = "Send the payload bytes as they are, without checking that they are JSON." };
        var key = new Option<string?>("--key") { Description = "Idempotency key: a second enqueue with the same key returns the first task." };
        var priority = new Option<int>("--priority") { Description = "Higher runs first (default 0)." };
        var runAt = new Option<string?>("--run-at") { Description = "Earliest run time: ISO 8601 (2026-12-01T10:00:00Z) or +duration (+10m)." };
        var tenant = new Option<string?>("--tenant") { Description = "The tenant, for queries." };
        var maxAttempts = new Option<int?>("--max-attempts") { Description = "Attempts before the task is dead-lettered (default 10)." };
        var command = new Command("enqueue", "Enqueue one task.") { queue, payload, raw, key, priority, runAt, tenant, maxAttempts };

        CliRun.Bind(command, globals, context, async (run, ct) =>
        {
            var bytes = await ReadPayloadAsync(run.Value(payload), run.Context, ct).ConfigureAwait(false);
            if (!run.Value(raw) && !TaskJson.IsJson(bytes))
                throw CliException.Usage("--payload is not valid JSON (pass --raw to send other bytes).");
            var request = new EnqueueRequest(run.Value(queue), bytes)
            {
                IdempotencyKey = run.Value(key),
                Priority = run.Value(priority),
                RunAt = run.Value(runAt) is { } at ? CliParsing.ParseInstant("--run-at", at, run.Context.Time) : null,
                Tenant = run.Value(tenant),
                MaxAttempts = run.Value(maxAttempts) ?? TaskValidation.DefaultMaxAttempts,
            };
            var result = await run.Store.EnqueueAsync(request, ct).ConfigureAwait(false);
            if (run.Json)
            {
                run.Output.WriteJson(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("id", result.TaskId);
                    w.WriteBoolean("created", result.Created);
                    w.WriteEndObject();
                });
            }
            else
            {
                run.Output.Line(result.Created
                    ? $"enqueued {result.TaskId} in {request.Queue}"
                    : $"exists {result.TaskId} in {request.Queue} (idempotency key '{request.IdempotencyKey}'; nothing changed)");
            }
            return ExitCodes.Success;
        });
        return command;
    }

    private static async Task<byte[]> ReadPayloadAsync(string value, CliContext context, CancellationToken cancellationToken)
    {
        if (value == "-")
            return Encoding.UTF8.GetBytes(await context.In.ReadToEndAsync(cancellationToken).ConfigureAwait(false));
        if (value.StartsWith('@'))
        {
            var path = Path.GetFullPath(value[1..], context.WorkingDirectory);
            if (!File.Exists(path)) throw CliException.Usage($"--payload: the file '{path}' does not exist.");
            return await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        }
        return Encoding.UTF8.GetBytes(value);
    }
}
