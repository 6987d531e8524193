using System.Text.Json;
using Konduit.Postgres;
using Npgsql;
using Xunit;
using static Konduit.Cli.Tests.CliTestKit;

namespace Konduit.Cli.Tests;

/// <summary>A private Postgres schema (store and event log) and an app directory whose appsettings.json selects it.</summary>
public sealed class PostgresCliFixture : IAsyncLifetime
{
    public string Schema { get; } = "konduit_cli_" + Guid.NewGuid().ToString("N")[..8];
    public string ConnectionString { get; private set; } = "";
    public string Directory { get; private set; } = "";
    public PostgresTaskStore Store { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        ConnectionString = await PostgresAsync();
        Directory = AppDirectory($$"""
            { "Konduit": {
                "Store": "Postgres",
                "Postgres": { "ConnectionString": {{Quote(ConnectionString)}}, "Schema": "{{Schema}}" },
                "EventLog": "Postgres",
                "PostgresEventLog": { "Schema": "{{Schema}}" } } }
            """);
        Store = new PostgresTaskStore(new PostgresTaskStoreOptions { ConnectionString = ConnectionString, Schema = Schema });
    }

    public async ValueTask DisposeAsync()
    {
        await Store.DisposeAsync();
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS \"{Schema}\" CASCADE", connection);
        await drop.ExecuteNonQueryAsync();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}

/// <summary>
/// The Postgres CLI test classes: every test migrates first (idempotent, and xUnit orders tests freely) because some write
/// through the store before their first CLI call; <see cref="Cli"/> migrates again, so each CLI call also runs alone.
/// </summary>
public abstract class PostgresCliTestBase(PostgresCliFixture fixture) : IAsyncLifetime
{
    public async ValueTask InitializeAsync()
    {
        var migrate = await RunAsync(fixture.Directory, "migrate");
        Assert.True(migrate.ExitCode == 0, migrate.ToString());
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    protected PostgresCliFixture Fixture => fixture;

    protected static string NewQueue() => "cli." + Guid.NewGuid().ToString("N")[..8];

    protected async Task<CliResult> Cli(params string[] args)
    {
        var migrate = await RunAsync(fixture.Directory, "migrate");
        Assert.True(migrate.ExitCode == 0, migrate.ToString());
        return await RunAsync(fixture.Directory, args);
    }
}

/// <summary>The CLI in-process against the shared Postgres: exit codes, --json output, and the store read back.</summary>
/// <remarks>Every test migrates first (idempotent) so that each runs alone; they share the class's schema, each in its own queue.</remarks>
public sealed class PostgresCliTests(PostgresCliFixture fixture) : PostgresCliTestBase(fixture), IClassFixture<PostgresCliFixture>
{

    [Fact]
    public async Task Migrate_creates_the_schema_of_the_store_and_the_event_log()
    {
        var result = await RunAsync(Fixture.Directory, "migrate", "--json");
        Assert.True(result.ExitCode == 0, result.ToString());
        var steps = result.Json().GetProperty("steps").EnumerateArray().Select(s => (s.GetProperty("component").GetString(), s.GetProperty("outcome").GetString())).ToList();
        Assert.Equal([("store", "migrated"), ("event log", "migrated")], steps);
        // The store's tables answer.
        Assert.Empty((await Fixture.Store.QueryAsync(new TaskQuery { Queue = NewQueue() }, cancellationToken: Ct)).Items);
    }

    [Fact]
    public async Task Migrate_dry_run_changes_nothing()
    {
        var schema = "konduit_cli_dry_" + Guid.NewGuid().ToString("N")[..6];
        var result = await RunAsync(Fixture.Directory, "migrate", "--dry-run", "--json", "--connection", Fixture.ConnectionString);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.True(result.Json().GetProperty("dryRun").GetBoolean());
        Assert.All(result.Json().GetProperty("steps").EnumerateArray(), s => Assert.Equal("would migrate", s.GetProperty("outcome").GetString()));

        var env = new Dictionary<string, string> { ["Konduit__Postgres__Schema"] = schema, ["Konduit__PostgresEventLog__Schema"] = schema };
        Assert.Equal(0, (await RunAsync(Fixture.Directory, env, null, "migrate", "--dry-run")).ExitCode);
        await using var connection = new NpgsqlConnection(Fixture.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var exists = new NpgsqlCommand("SELECT count(*) FROM pg_namespace WHERE nspname = $1", connection) { Parameters = { new() { Value = schema } } };
        Assert.Equal(0L, (long)(await exists.ExecuteScalarAsync(Ct))!);
    }

    [Fact]
    public async Task Enqueue_reads_the_payload_file_and_stores_every_option()
    {
        var queue = NewQueue();
        await File.WriteAllTextAsync(Path.Combine(Fixture.Directory, "order.json"), """{"order":42}""", Ct);
        var result = await Cli("enqueue", queue, "--payload", "@order.json", "--key", "order-42", "--priority", "5",
            "--run-at", "2030-01-02T03:04:05Z", "--tenant", "acme", "--max-attempts", "3", "--json");
        Assert.True(result.ExitCode == 0, result.ToString());
        var json = result.Json();
        Assert.True(json.GetProperty("created").GetBoolean());

        var task = await Fixture.Store.GetAsync(json.GetProperty("id").GetGuid(), Ct);
        Assert.Equal((queue, TaskState.Pending, 5, "acme", "order-42", 3), (task.Queue, task.State, task.Priority, task.Tenant, task.IdempotencyKey, task.MaxAttempts));
        Assert.Equal(new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero), task.RunAt);
        Assert.Equal("""{"order":42}""", System.Text.Encoding.UTF8.GetString(task.Payload));

        // The same key again: the existing task, nothing changed, still exit 0.
        var again = await Cli("enqueue", queue, "--payload", "{}", "--key", "order-42", "--json");
        Assert.Equal(0, again.ExitCode);
        Assert.False(again.Json().GetProperty("created").GetBoolean());
        Assert.Equal(task.Id, again.Json().GetProperty("id").GetGuid());
    }

    [Fact]
    public async Task Tasks_list_filters_by_queue_state_tenant_and_age()
    {
        var queue = NewQueue();
        var a = (await Fixture.Store.EnqueueAsync(new EnqueueRequest(queue, "{}"u8.ToArray()) { Tenant = "a" }, Ct)).TaskId;
        var b = (await Fixture.Store.EnqueueAsync(new EnqueueRequest(queue, "{}"u8.ToArray()) { Tenant = "b" }, Ct)).TaskId;
        await Fixture.Store.CancelAsync(b, Ct);

        var all = await Cli("tasks", "list", "--queue", queue, "--json");
        Assert.True(all.ExitCode == 0, all.ToString());
        Assert.Equal([b, a], all.Json().EnumerateArray().Select(t => t.GetProperty("id").GetGuid())); // newest first

        var canceled = await Cli("tasks", "list", "-q", queue, "--state", "canceled", "--json");
        var only = Assert.Single(canceled.Json().EnumerateArray());
        Assert.Equal((b, "canceled", "b"), (only.GetProperty("id").GetGuid(), only.GetProperty("state").GetString(), only.GetProperty("tenant").GetString()));

        Assert.Equal(a, Assert.Single((await Cli("tasks", "list", "-q", queue, "--tenant", "a", "--since", "1h", "--json")).Json().EnumerateArray()).GetProperty("id").GetGuid());
        Assert.Empty((await Cli("tasks", "list", "-q", queue, "--since", "2099-01-01T00:00:00Z", "--json")).Json().EnumerateArray());
        Assert.Single((await Cli("tasks", "list", "-q", queue, "--limit", "1", "--json")).Json().EnumerateArray());

        var table = await Cli("tasks", "list", "-q", queue);
        Assert.Contains(a.ToString(), table.Out, StringComparison.Ordinal);
        Assert.Contains("2 task(s).", table.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tasks_show_gives_the_snapshot_the_error_history_and_the_event_history()
    {
        var queue = NewQueue();
        var enqueued = await Cli("enqueue", queue, "--payload", """{"n":1}""", "--max-attempts", "1", "--json");
        var id = enqueued.Json().GetProperty("id").GetGuid();
        var lease = Assert.Single(await Fixture.Store.LeaseAsync(queue, "cli-test", 1, TimeSpan.FromMinutes(1), Ct));
        await Fixture.Store.FailAsync(lease, "boom [red]not markup[/]", cancellationToken: Ct);

        var shown = await Cli("tasks", "show", id.ToString(), "--json");
        Assert.True(shown.ExitCode == 0, shown.ToString());
        var task = shown.Json().GetProperty("task");
        Assert.Equal("failed", task.GetProperty("state").GetString());
        Assert.Equal(1, task.GetProperty("payload").GetProperty("n").GetInt32());
        var error = Assert.Single(task.GetProperty("errors").EnumerateArray());
        Assert.Equal(("boom [red]not markup[/]", 1), (error.GetProperty("message").GetString(), error.GetProperty("attempt").GetInt32()));
        // The CLI's own enqueue went through the event recorder (flushed when the CLI exits); the test's lease did not.
        Assert.Equal(["enqueued"], shown.Json().GetProperty("events").EnumerateArray().Select(e => e.GetProperty("kind").GetString()));

        var table = await Cli("tasks", "show", id.ToString());
        Assert.Contains("boom [red]not markup[/]", table.Out, StringComparison.Ordinal);
        Assert.Contains("enqueued", table.Out, StringComparison.Ordinal);

        var missing = await Cli("tasks", "show", Guid.CreateVersion7().ToString());
        Assert.Equal(ExitCodes.NotFound, missing.ExitCode);
        Assert.Equal(ExitCodes.Usage, (await Cli("tasks", "show", "not-a-guid")).ExitCode);
    }

    [Fact]
    public async Task Tasks_retry_and_cancel_change_the_store_and_report_each_id()
    {
        var queue = NewQueue();
        var pending = (await Fixture.Store.EnqueueAsync(new EnqueueRequest(queue, "{}"u8.ToArray()), Ct)).TaskId;
        var other = (await Fixture.Store.EnqueueAsync(new EnqueueRequest(queue, "{}"u8.ToArray()), Ct)).TaskId;

        var cancel = await Cli("tasks", "cancel", pending.ToString(), other.ToString(), "--json");
        Assert.True(cancel.ExitCode == 0, cancel.ToString());
        Assert.All(cancel.Json().EnumerateArray(), o => Assert.Equal("canceled", o.GetProperty("outcome").GetString()));
        Assert.Equal(TaskState.Canceled, (await Fixture.Store.GetAsync(pending, Ct)).State);

        var retry = await Cli("tasks", "retry", pending.ToString(), "--json");
        Assert.Equal(0, retry.ExitCode);
        Assert.Equal(TaskState.Pending, (await Fixture.Store.GetAsync(pending, Ct)).State);
        Assert.Equal(TaskState.Canceled, (await Fixture.Store.GetAsync(other, Ct)).State);

        // Retrying a pending task is a state conflict (6); an unknown id is 5 and wins; known ids are still handled.
        var conflict = await Cli("tasks", "retry", pending.ToString(), "--json");
        Assert.Equal(ExitCodes.InvalidState, conflict.ExitCode);
        Assert.Equal("invalid-state", Assert.Single(conflict.Json().EnumerateArray()).GetProperty("outcome").GetString());
        var unknown = Guid.CreateVersion7();
        var mixed = await Cli("tasks", "retry", unknown.ToString(), other.ToString(), "--json");
        Assert.Equal(ExitCodes.NotFound, mixed.ExitCode);
        Assert.Equal(["not-found", "redriven"], mixed.Json().EnumerateArray().Select(o => o.GetProperty("outcome").GetString()));
        Assert.Equal(TaskState.Pending, (await Fixture.Store.GetAsync(other, Ct)).State);
    }

    [Fact]
    public async Task Stats_counts_each_queue_by_state()
    {
        var queue = NewQueue();
        for (var i = 0; i < 3; i++) await Fixture.Store.EnqueueAsync(new EnqueueRequest(queue, "{}"u8.ToArray()), Ct);
        var lease = Assert.Single(await Fixture.Store.LeaseAsync(queue, "cli-test", 1, TimeSpan.FromMinutes(1), Ct));
        await Fixture.Store.CompleteAsync(lease, cancellationToken: Ct);

        var result = await Cli("stats", "--queue", queue, "--json");
        Assert.True(result.ExitCode == 0, result.ToString());
        var row = Assert.Single(result.Json().EnumerateArray());
        Assert.Equal((queue, 2L, 1L, 3L), (row.GetProperty("queue").GetString(), row.GetProperty("pending").GetInt64(), row.GetProperty("succeeded").GetInt64(), row.GetProperty("total").GetInt64()));

        var table = await Cli("stats", "-q", queue);
        Assert.Contains(queue, table.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stats_watch_writes_a_reading_per_interval_until_interrupted()
    {
        var queue = NewQueue();
        await Fixture.Store.EnqueueAsync(new EnqueueRequest(queue, "{}"u8.ToArray()), Ct);
        Assert.Equal(0, (await RunAsync(Fixture.Directory, "migrate")).ExitCode);
        using var output = new StringWriter();
        var synchronized = TextWriter.Synchronized(output); // the watch writes while the test reads
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var context = new CliContext { Out = synchronized, Error = TextWriter.Null, In = TextReader.Null, WorkingDirectory = Fixture.Directory, Environment = new Dictionary<string, string>() };
        var watch = KonduitCli.RunAsync(["stats", "--watch", "--interval", "100ms", "-q", queue, "--json"], context, stop.Token);
        // Two readings, the second with a rate: then Ctrl+C, which ends a watch with exit 0.
        bool SawRate() { lock (synchronized) return output.ToString().Contains("finishedPerSecond", StringComparison.Ordinal); }
        await Testing.Conformance.Await.Until(() => Task.FromResult(SawRate()), TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(50), "a second reading with a rate");
        await stop.CancelAsync();
        Assert.Equal(0, await watch);
    }

    [Fact]
    public async Task Purge_deletes_finished_tasks_of_the_given_state()
    {
        var queue = NewQueue();
        var done = (await Fixture.Store.EnqueueAsync(new EnqueueRequest(queue, "{}"u8.ToArray()), Ct)).TaskId;
        var canceled = (await Fixture.Store.EnqueueAsync(new EnqueueRequest(queue, "{}"u8.ToArray()), Ct)).TaskId;
        var lease = Assert.Single(await Fixture.Store.LeaseAsync(queue, "cli-test", 1, TimeSpan.FromMinutes(1), Ct));
        Assert.Equal(done, lease.TaskId);
        await Fixture.Store.CompleteAsync(lease, cancellationToken: Ct);
        await Fixture.Store.CancelAsync(canceled, Ct);

        Assert.Equal(0, (await Cli("purge", "--older-than", "7d", "--state", "succeeded", "-q", queue, "--json")).Json().GetProperty("purged").GetInt32());
        var result = await Cli("purge", "--older-than", "1ms", "--state", "succeeded", "-q", queue, "--json");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(1, result.Json().GetProperty("purged").GetInt32());
        await Assert.ThrowsAsync<TaskNotFoundException>(() => Fixture.Store.GetAsync(done, Ct));
        Assert.Equal(TaskState.Canceled, (await Fixture.Store.GetAsync(canceled, Ct)).State);

        Assert.Equal(ExitCodes.Usage, (await Cli("purge", "--older-than", "1d", "--state", "pending")).ExitCode);
        Assert.Equal(ExitCodes.Usage, (await Cli("purge", "--state", "succeeded")).ExitCode); // --older-than is required
    }
}
