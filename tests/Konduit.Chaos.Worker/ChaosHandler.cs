using System.Globalization;
using Konduit.Hosting;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace Konduit.Chaos.Worker;

/// <summary>The worker's settings, from the "Chaos" configuration section.</summary>
internal sealed record ChaosSettings(string Queue, string EffectsConnectionString, string EffectsTable, TimeSpan Work)
{
    public static ChaosSettings From(IConfiguration configuration)
    {
        var section = configuration.GetSection("Chaos");
        string Required(string key) => section[key] is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException($"Chaos:{key} is required.");
        var work = double.Parse(section["WorkMilliseconds"] ?? "20", CultureInfo.InvariantCulture);
        return new ChaosSettings(Required("Queue"), Required("EffectsConnectionString"), Required("EffectsTable"),
            TimeSpan.FromMilliseconds(work));
    }
}

/// <summary>Writes one effect row per handler run; a repeated (task, token) pair increments <c>runs</c>.</summary>
internal sealed class EffectRecorder : IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly string _insert;

    public EffectRecorder(ChaosSettings settings)
    {
        _dataSource = NpgsqlDataSource.Create(settings.EffectsConnectionString);
        // The table name is the test's own identifier (schema.effects), never user input; values are parameters.
        // ON CONFLICT counts a second run under the same token instead of failing it: a repeated token is the
        // failure the suite looks for (issue 13, hole 1), so it must be recorded, not hidden by a unique violation.
        _insert = $"""
            INSERT INTO {settings.EffectsTable} (task_id, lease_token, attempt, worker_pid)
            VALUES ($1, $2, $3, $4)
            ON CONFLICT (task_id, lease_token) DO UPDATE SET runs = {settings.EffectsTable}.runs + 1
            """;
    }

    public async Task RecordAsync(TaskContext context, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand(_insert);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = context.TaskId });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = context.Lease.LeaseToken });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = context.Attempt });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = Environment.ProcessId });
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public ValueTask DisposeAsync() => _dataSource.DisposeAsync();
}

/// <summary>Does a little "work" (a delay, so throughput is bounded by concurrency, not by a shared CPU), then records its effect.</summary>
internal sealed class ChaosHandler(EffectRecorder effects, ChaosSettings settings) : ITaskHandler
{
    public async Task HandleAsync(TaskContext context, CancellationToken cancellationToken)
    {
        await Task.Delay(settings.Work, cancellationToken).ConfigureAwait(false);
        await effects.RecordAsync(context, cancellationToken).ConfigureAwait(false);
    }
}
