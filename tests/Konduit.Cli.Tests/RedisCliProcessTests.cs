using StackExchange.Redis;
using Xunit;
using static Konduit.Cli.Tests.CliTestKit;

namespace Konduit.Cli.Tests;

/// <summary>A private Redis key prefix and an app directory whose appsettings.json selects it.</summary>
public sealed class RedisCliFixture : IAsyncLifetime
{
    public string KeyPrefix { get; } = "konduit-cli-" + Guid.NewGuid().ToString("N")[..8];
    public string Configuration { get; private set; } = "";
    public string Directory { get; private set; } = "";
    public Redis.RedisTaskStore Store { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Configuration = await RedisAsync();
        Directory = AppDirectory($$"""
            { "Konduit": { "Store": "Redis", "Redis": { "Configuration": {{Quote(Configuration)}}, "KeyPrefix": "{{KeyPrefix}}" } } }
            """);
        Store = new Redis.RedisTaskStore(new Redis.RedisTaskStoreOptions { Configuration = Configuration, KeyPrefix = KeyPrefix });
    }

    public async ValueTask DisposeAsync()
    {
        await Store.DisposeAsync();
        await using var redis = await ConnectionMultiplexer.ConnectAsync(Configuration);
        foreach (var server in redis.GetServers())
        {
            // One DEL per key: a cluster spreads a prefix over slots.
            await foreach (var key in server.KeysAsync(pattern: KeyPrefix + "*")) await redis.GetDatabase().KeyDeleteAsync(key);
        }
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}

/// <summary>The built tool as a process (<c>dotnet Konduit.Cli.dll</c>) against the shared Redis: what a script sees.</summary>
public sealed class RedisCliProcessTests(RedisCliFixture fixture) : IClassFixture<RedisCliFixture>
{
    private static string NewQueue() => "cli." + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task A_script_enqueues_lists_cancels_and_retries_through_the_process()
    {
        var queue = NewQueue();
        var enqueued = await RunProcessAsync(fixture.Directory, null, "enqueue", queue, "--payload", """{"to":"ada"}""", "--tenant", "t1", "--json");
        Assert.True(enqueued.ExitCode == 0, enqueued.ToString());
        var id = enqueued.Json().GetProperty("id").GetGuid();
        Assert.Equal(("t1", TaskState.Pending), ((await fixture.Store.GetAsync(id, Ct)).Tenant, (await fixture.Store.GetAsync(id, Ct)).State));

        var listed = await RunProcessAsync(fixture.Directory, null, "tasks", "list", "--queue", queue, "--tenant", "t1", "--json");
        Assert.True(listed.ExitCode == 0, listed.ToString());
        Assert.Equal(id, Assert.Single(listed.Json().EnumerateArray()).GetProperty("id").GetGuid());

        Assert.Equal(0, (await RunProcessAsync(fixture.Directory, null, "tasks", "cancel", id.ToString())).ExitCode);
        Assert.Equal(TaskState.Canceled, (await fixture.Store.GetAsync(id, Ct)).State);
        var again = await RunProcessAsync(fixture.Directory, null, "tasks", "cancel", id.ToString());
        Assert.Equal(ExitCodes.InvalidState, again.ExitCode);

        Assert.Equal(0, (await RunProcessAsync(fixture.Directory, null, "tasks", "retry", id.ToString())).ExitCode);
        Assert.Equal(TaskState.Pending, (await fixture.Store.GetAsync(id, Ct)).State);

        var stats = await RunProcessAsync(fixture.Directory, null, "stats", "--queue", queue, "--json");
        Assert.Equal(1L, Assert.Single(stats.Json().EnumerateArray()).GetProperty("pending").GetInt64());
    }

    [Fact]
    public async Task Environment_variables_and_flags_override_appsettings_in_the_process()
    {
        // appsettings.json selects a prefix nobody uses; the environment points at the fixture's.
        var dir = AppDirectory($$"""{ "Konduit": { "Store": "InMemory", "Redis": { "KeyPrefix": "konduit-cli-unused" } } }""");
        try
        {
            var queue = NewQueue();
            var id = (await fixture.Store.EnqueueAsync(new EnqueueRequest(queue, "{}"u8.ToArray()), Ct)).TaskId;
            var env = new Dictionary<string, string> { ["Konduit__Redis__KeyPrefix"] = fixture.KeyPrefix };
            var shown = await RunProcessAsync(dir, env, "tasks", "show", id.ToString(), "--store", "Redis", "--connection", fixture.Configuration, "--json");
            Assert.True(shown.ExitCode == 0, shown.ToString());
            Assert.Equal(id, shown.Json().GetProperty("task").GetProperty("id").GetGuid());
            Assert.True(shown.Json().GetProperty("events").ValueKind == System.Text.Json.JsonValueKind.Null);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Failures_are_one_line_with_their_exit_code_in_the_process()
    {
        var unknown = await RunProcessAsync(fixture.Directory, null, "tasks", "show", Guid.CreateVersion7().ToString());
        Assert.Equal(ExitCodes.NotFound, unknown.ExitCode);
        Assert.Single(unknown.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal("", unknown.Out);

        var unreachable = await RunProcessAsync(fixture.Directory, null, "stats", "--connection", "127.0.0.1:1,connectTimeout=500");
        Assert.Equal(ExitCodes.Unavailable, unreachable.ExitCode);
        Assert.Single(unreachable.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));

        var usage = await RunProcessAsync(fixture.Directory, null, "enqueue");
        Assert.Equal(ExitCodes.Usage, usage.ExitCode);

        // Redis has no schema: migrate says so and succeeds.
        var migrate = await RunProcessAsync(fixture.Directory, null, "migrate");
        Assert.Equal(0, migrate.ExitCode);
        Assert.Contains("has no schema", migrate.Out, StringComparison.Ordinal);
    }
}
