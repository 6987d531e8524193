using Xunit;
using static Konduit.Cli.Tests.CliTestKit;

namespace Konduit.Cli.Tests;

/// <summary>The operator questions of issue 17 through the CLI: retry/cancel by filter, finished-since, pause/resume, due vs scheduled.</summary>
public sealed class PostgresCliOperatorTests(PostgresCliFixture fixture) : PostgresCliTestBase(fixture), IClassFixture<PostgresCliFixture>
{

    private async Task<Guid> FailedAsync(string queue, string tenant)
    {
        var id = (await Fixture.Store.EnqueueAsync(new EnqueueRequest(queue, "{}"u8.ToArray()) { Tenant = tenant, MaxAttempts = 1 }, Ct)).TaskId;
        var lease = Assert.Single(await Fixture.Store.LeaseAsync(queue, "cli-test", 1, TimeSpan.FromMinutes(1), Ct));
        await Fixture.Store.FailAsync(lease, "boom", cancellationToken: Ct);
        return id;
    }

    [Fact]
    public async Task Retry_by_filter_asks_first_and_changes_only_the_matching_tasks()
    {
        var queue = NewQueue();
        var x1 = await FailedAsync(queue, "x");
        var x2 = await FailedAsync(queue, "x");
        var y = await FailedAsync(queue, "y");

        // No terminal and no --yes: not confirmed (7), nothing changed.
        var refused = await Cli("tasks", "retry", "--queue", queue, "--state", "failed", "--tenant", "x", "--finished-since", "24h");
        Assert.Equal(ExitCodes.NotConfirmed, refused.ExitCode);
        Assert.Contains("2 task(s)", refused.Error, StringComparison.Ordinal);
        Assert.Equal(TaskState.Failed, (await Fixture.Store.GetAsync(x1, Ct)).State);

        var done = await Cli("tasks", "retry", "--queue", queue, "--state", "failed", "--tenant", "x", "--since", "1h", "--yes", "--json");
        Assert.True(done.ExitCode == 0, done.ToString());
        Assert.Equal(2, done.Json().GetProperty("changed").GetInt32());
        Assert.Equal([x1, x2], done.Json().GetProperty("ids").EnumerateArray().Select(e => e.GetGuid()).Order());
        Assert.Equal(TaskState.Pending, (await Fixture.Store.GetAsync(x2, Ct)).State);
        Assert.Equal(TaskState.Failed, (await Fixture.Store.GetAsync(y, Ct)).State);

        // Ids and a filter together are a usage error; so is neither.
        Assert.Equal(ExitCodes.Usage, (await Cli("tasks", "retry", y.ToString(), "--tenant", "y")).ExitCode);
        Assert.Equal(ExitCodes.Usage, (await Cli("tasks", "cancel")).ExitCode);
    }

    [Fact]
    public async Task Cancel_by_filter_respects_max()
    {
        var queue = NewQueue();
        for (var i = 0; i < 3; i++) await Fixture.Store.EnqueueAsync(new EnqueueRequest(queue, "{}"u8.ToArray()), Ct);
        var result = await Cli("tasks", "cancel", "--queue", queue, "--max", "2", "--yes", "--json");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(2, result.Json().GetProperty("changed").GetInt32());
        var stats = (await Fixture.Store.GetStatsAsync(Ct)).Single(s => s.Queue == queue);
        Assert.Equal((1L, 2L), (stats.Pending, stats.Canceled));
    }

    [Fact]
    public async Task Tasks_list_filters_by_finished_time()
    {
        var queue = NewQueue();
        var failed = await FailedAsync(queue, "t");
        await Fixture.Store.EnqueueAsync(new EnqueueRequest(queue, "{}"u8.ToArray()), Ct);
        var list = await Cli("tasks", "list", "-q", queue, "--finished-since", "1h", "--json");
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Equal(failed, Assert.Single(list.Json().EnumerateArray()).GetProperty("id").GetGuid());
    }

    [Fact]
    public async Task Queues_pause_and_resume_are_kept_in_the_store()
    {
        var queue = NewQueue();
        await Fixture.Store.EnqueueAsync(new EnqueueRequest(queue, "{}"u8.ToArray()), Ct);
        Assert.Equal(0, (await Cli("queues", "pause", queue)).ExitCode);
        Assert.Contains(queue, await Fixture.Store.GetPausedQueuesAsync(Ct));
        Assert.Empty(await Fixture.Store.LeaseAsync(queue, "cli-test", 1, TimeSpan.FromMinutes(1), Ct));
        Assert.Contains(queue, (await Cli("queues", "paused", "--json")).Json().EnumerateArray().Select(e => e.GetString()));

        Assert.Equal(0, (await Cli("queues", "resume", queue)).ExitCode);
        Assert.DoesNotContain(queue, await Fixture.Store.GetPausedQueuesAsync(Ct));
        Assert.Single(await Fixture.Store.LeaseAsync(queue, "cli-test", 1, TimeSpan.FromMinutes(1), Ct));
    }

    [Fact]
    public async Task Stats_tell_due_from_scheduled_with_the_oldest_due_age()
    {
        var queue = NewQueue();
        await Fixture.Store.EnqueueAsync(new EnqueueRequest(queue, "{}"u8.ToArray()), Ct);
        await Fixture.Store.EnqueueAsync(new EnqueueRequest(queue, "{}"u8.ToArray()) { RunAt = DateTimeOffset.UtcNow.AddHours(1) }, Ct);
        var result = await Cli("stats", "-q", queue, "--json");
        Assert.True(result.ExitCode == 0, result.ToString());
        var row = Assert.Single(result.Json().EnumerateArray());
        Assert.Equal((2L, 1L, 1L), (row.GetProperty("pending").GetInt64(), row.GetProperty("pendingDue").GetInt64(), row.GetProperty("pendingScheduled").GetInt64()));
        Assert.True(row.GetProperty("oldestDueAt").ValueKind == System.Text.Json.JsonValueKind.String);
        Assert.True(row.GetProperty("oldestDueAgeSeconds").GetDouble() >= 0);
    }
}
