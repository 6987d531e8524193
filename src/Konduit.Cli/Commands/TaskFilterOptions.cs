using System.CommandLine;

namespace Konduit.Cli.Commands;

/// <summary>The task filter options <c>tasks list</c> (and the bulk forms of retry and cancel) share: one TaskQuery.</summary>
internal sealed class TaskFilterOptions
{
    public Option<string?> Queue { get; } = new("--queue", "-q") { Description = "Only this queue." };

    public Option<string[]> State { get; } = new("--state", "-s")
    {
        Description = $"Only these states ({CliParsing.StateNames}); repeat or comma-separate.",
        AllowMultipleArgumentsPerToken = false,
    };

    public Option<string?> Tenant { get; } = new("--tenant", "-t") { Description = "Only this tenant." };

    public Option<string?> Since { get; } = new("--since") { Description = "Only tasks enqueued within this long (24h, 7d) or since this time (ISO 8601)." };

    public Option<string?> FinishedSince { get; } = new("--finished-since") { Description = "Only tasks that finished within this long (24h) or since this time (ISO 8601)." };

    public void AddTo(Command command)
    {
        command.Options.Add(FinishedSince);
        command.Options.Add(Queue);
        command.Options.Add(State);
        command.Options.Add(Tenant);
        command.Options.Add(Since);
    }

    /// <summary>True when any filter option was given.</summary>
    public bool AnyGiven(CliRun run) =>
        run.Value(Queue) is not null || run.Value(State) is { Length: > 0 } || run.Value(Tenant) is not null || run.Value(Since) is not null
        || run.Value(FinishedSince) is not null;

    public TaskQuery ToQuery(CliRun run) => new()
    {
        Queue = run.Value(Queue),
        States = CliParsing.ParseStates("--state", run.Value(State)),
        Tenant = run.Value(Tenant),
        EnqueuedFrom = ParseSince(run, "--since", run.Value(Since)),
        FinishedFrom = ParseSince(run, "--finished-since", run.Value(FinishedSince)),
    };

    /// <summary>A duration back from now (<c>24h</c>) or an absolute time.</summary>
    internal static DateTimeOffset? ParseSince(CliRun run, string option, string? value)
    {
        if (value is null) return null;
        if (string.IsNullOrWhiteSpace(value)) throw CliException.Usage($"{option} needs a duration (24h) or a time (ISO 8601).");
        return char.IsAsciiDigit(value.Trim()[0]) && !value.Contains('-', StringComparison.Ordinal)
            ? run.Context.Time.GetUtcNow() - CliParsing.ParseDuration(option, value)
            : CliParsing.ParseInstant(option, value, run.Context.Time);
    }
}
