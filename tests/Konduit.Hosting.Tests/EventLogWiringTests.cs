using Xunit;
using Konduit.InMemory;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Konduit.Hosting.Tests;

public sealed class EventLogWiringTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task EventLog_in_configuration_records_every_transition_the_store_accepts()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Konduit:Store"] = "InMemory",
            ["Konduit:EventLog"] = "InMemory",
        }).Build();
        var services = new ServiceCollection();
        services.AddKonduit(configuration.GetSection("Konduit"));
        await using var provider = services.BuildServiceProvider();
        var store = provider.GetRequiredService<ITaskStore>();
        var recorder = provider.GetRequiredService<TaskEventRecorder>();

        var id = (await store.EnqueueAsync(new EnqueueRequest("q", [1]) { Tenant = "t" }, Ct)).TaskId;
        var lease = Assert.Single(await store.LeaseAsync("q", "w", 1, TimeSpan.FromMinutes(1), Ct));
        await store.FailAsync(lease, "boom", new FailOptions { RetryDelay = TimeSpan.Zero }, Ct);
        lease = Assert.Single(await store.LeaseAsync("q", "w", 1, TimeSpan.FromMinutes(1), Ct));
        await store.CompleteAsync(lease, null, Ct);
        var other = (await store.EnqueueAsync(new EnqueueRequest("q", [2]), Ct)).TaskId;
        Assert.True(await store.CancelAsync(other, Ct));
        await store.RedriveAsync(other, Ct);
        await recorder.FlushAsync(Ct);

        Assert.IsType<EventRecordingTaskStore>(store);
        Assert.IsType<InMemoryTaskEventLog>(recorder.Log);
        var history = await recorder.Log.ReadTaskHistoryAsync(id, Ct);
        Assert.Equal([TaskEventKind.Enqueued, TaskEventKind.Leased, TaskEventKind.Retried, TaskEventKind.Leased, TaskEventKind.Completed], history.Select(e => e.Kind));
        Assert.All(history, e => Assert.Equal("t", e.Tenant));
        Assert.Equal("boom", history[2].Error);
        Assert.Equal([1, 2], history.Where(e => e.Kind == TaskEventKind.Leased).Select(e => e.Attempt));
        Assert.Equal([TaskEventKind.Enqueued, TaskEventKind.Canceled, TaskEventKind.Redriven], (await recorder.Log.ReadTaskHistoryAsync(other, Ct)).Select(e => e.Kind));
    }

    [Fact]
    public async Task Reclaims_and_purges_are_recorded_per_task_by_whichever_node_sweeps()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero));
        await using var shared = new InMemoryTaskStore(null, time);
        var log = new InMemoryTaskEventLog();
        await using var recorderA = new TaskEventRecorder(log);
        await using var recorderB = new TaskEventRecorder(log);
        var nodeA = new EventRecordingTaskStore(shared, recorderA, time);
        var nodeB = new EventRecordingTaskStore(shared, recorderB, time);

        var id = (await nodeA.EnqueueAsync(new EnqueueRequest("q", [1]) { Tenant = "t" }, Ct)).TaskId;
        var first = Assert.Single(await nodeA.LeaseAsync("q", "worker-a", 1, TimeSpan.FromSeconds(30), Ct));
        time.Advance(TimeSpan.FromSeconds(31));
        Assert.Single(await nodeB.ReclaimExpiredAsync(Ct)); // node A never learns its lease was reclaimed
        time.Advance(TimeSpan.FromSeconds(1));
        var second = Assert.Single(await nodeA.LeaseAsync("q", "worker-a", 1, TimeSpan.FromSeconds(30), Ct));
        await nodeA.CompleteAsync(second, null, Ct);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Single(await nodeB.PurgeAsync(TimeSpan.Zero, cancellationToken: Ct));
        await recorderA.FlushAsync(Ct);
        await recorderB.FlushAsync(Ct);

        var history = await log.ReadTaskHistoryAsync(id, Ct);
        Assert.Equal([TaskEventKind.Enqueued, TaskEventKind.Leased, TaskEventKind.Reclaimed, TaskEventKind.Leased, TaskEventKind.Completed, TaskEventKind.Purged],
            history.Select(e => e.Kind));
        Assert.All(history, e => Assert.Equal("t", e.Tenant));
        var reclaimed = history[2];
        Assert.Equal((1, first.LeaseToken, "worker-a", "lease expired"), (reclaimed.Attempt, reclaimed.LeaseToken, reclaimed.WorkerId, reclaimed.Error));
    }

    [Fact]
    public async Task A_reclaim_that_dead_letters_says_so_in_its_event()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero));
        await using var shared = new InMemoryTaskStore(null, time);
        var log = new InMemoryTaskEventLog();
        await using var recorder = new TaskEventRecorder(log);
        var store = new EventRecordingTaskStore(shared, recorder, time);

        var id = (await store.EnqueueAsync(new EnqueueRequest("q", [1]) { MaxAttempts = 1 }, Ct)).TaskId;
        Assert.Single(await store.LeaseAsync("q", "w", 1, TimeSpan.FromSeconds(30), Ct));
        time.Advance(TimeSpan.FromSeconds(31));
        Assert.Equal(TaskState.Failed, Assert.Single(await store.ReclaimExpiredAsync(Ct)).State);
        await recorder.FlushAsync(Ct);

        var last = (await log.ReadTaskHistoryAsync(id, Ct))[^1];
        Assert.Equal(TaskEventKind.Reclaimed, last.Kind);
        Assert.Contains("dead-lettered", last.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_full_buffer_drops_events_without_blocking_or_failing_the_store_and_the_rest_catch_up()
    {
        var log = new SwitchableEventLog { Down = true };
        await using var recorder = new TaskEventRecorder(log, new TaskEventRecorderOptions { Capacity = 3, MaxRetryDelay = TimeSpan.FromMilliseconds(50) });
        await using var store = new EventRecordingTaskStore(new InMemoryTaskStore(), recorder);

        for (var i = 0; i < 5; i++)
            await store.EnqueueAsync(new EnqueueRequest("q", [1]), Ct);

        Assert.Equal(3, recorder.Buffered);
        Assert.Equal(2, recorder.Dropped);
        log.Down = false;
        await recorder.FlushAsync(Ct);
        Assert.Equal(3, recorder.Appended);
    }
}

/// <summary>The Postgres event log has no native TTL: the runtime's upkeep deletes expired rows on every node.</summary>
public sealed class PostgresEventLogMaintenanceTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Expired_events_are_deleted_from_the_table_by_the_runtime_upkeep()
    {
        var connectionString = PostgresRuntimeFixture.RequireConnectionString();
        var schema = "konduit_ev_" + Guid.NewGuid().ToString("N")[..8];
        var queue = TestKit.NewQueue();
        var config = TestKit.Config(queue, "InMemory",
            ("Konduit:EventLog", "Postgres"),
            ("Konduit:EventLogMaintenanceInterval", "00:00:00.100"),
            ("Konduit:PostgresEventLog:ConnectionString", connectionString),
            ("Konduit:PostgresEventLog:Schema", schema),
            ("Konduit:PostgresEventLog:TimeToLive", "00:00:00.500"));
        await using var dataSource = Npgsql.NpgsqlDataSource.Create(connectionString);
        using var host = TestKit.BuildHost(config, null, _ => { });
        try
        {
            await host.StartAsync(Ct);
            var store = host.Services.GetRequiredService<ITaskStore>();
            var recorder = host.Services.GetRequiredService<TaskEventRecorder>();
            for (var i = 0; i < 3; i++) await store.EnqueueAsync(new EnqueueRequest(queue, [1]), Ct);
            await recorder.FlushAsync(Ct);
            Assert.Equal(3, recorder.Appended); // three rows were inserted (new event ids are never conflicts)

            await TestKit.Eventually(async () =>
            {
                await using var count = dataSource.CreateCommand($"SELECT count(*) FROM \"{schema}\".task_events");
                return (long)(await count.ExecuteScalarAsync(Ct))! == 0;
            }, "the upkeep deletes the expired rows from the table (reads alone only hide them)");
            await host.StopAsync(Ct);
        }
        finally
        {
            await using var drop = dataSource.CreateCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            await drop.ExecuteNonQueryAsync(Ct);
        }
    }
}
