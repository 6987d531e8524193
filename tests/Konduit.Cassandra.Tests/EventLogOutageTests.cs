using System.Diagnostics;
using Konduit.Cassandra.Cql;
using Konduit.Hosting;
using Konduit.InMemory;
using Konduit.Tests.Shared;

namespace Konduit.Cassandra.Tests;

// Stops the shared Cassandra server: runs alone, after every parallel test class of this assembly (xUnit runs
// collections with DisableParallelization last).
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CassandraOutageCollection
{
    public const string Name = "Cassandra outage";
}

/// <summary>
/// Issue 6, part 3: a store recording into Cassandra keeps working while Cassandra is stopped, buffers the events,
/// and catches up once the server is back, leaving every task's history complete (and free of duplicates).
/// </summary>
[Collection(CassandraOutageCollection.Name)]
public sealed class EventLogOutageTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Every_tasks_history_is_complete_after_the_server_is_stopped_and_restarted_mid_run()
    {
        var contactPoint = Environment.GetEnvironmentVariable(CassandraFixture.Variable)
            ?? throw new InvalidOperationException($"{CassandraFixture.Variable} is not set: run scripts/services.sh up && source .services/env");
        // The chaos module runs beside this one and records into the same server: it must not see it stopped.
        await using var serverLock = await SharedServerLock.AcquireAsync("cassandra-" + contactPoint, Ct);
        var keyspace = "konduit_outage_" + Guid.NewGuid().ToString("N")[..8];
        var sessionOptions = CqlSessionOptions.FromContactPoint(contactPoint);
        sessionOptions.RequestTimeout = TimeSpan.FromSeconds(3);
        sessionOptions.ConnectTimeout = TimeSpan.FromSeconds(2);
        await using var session = new CqlSession(sessionOptions);
        var log = new CassandraTaskEventLog(new CassandraTaskEventLogOptions { Keyspace = keyspace, TimeToLive = TimeSpan.FromHours(1), RequestTimeout = TimeSpan.FromSeconds(3) }, session);
        await log.MigrateAsync(Ct);
        var recorder = new TaskEventRecorder(log, new TaskEventRecorderOptions { BatchSize = 25, MaxRetryDelay = TimeSpan.FromSeconds(1) });
        await using var store = new EventRecordingTaskStore(new InMemoryTaskStore(), recorder);
        var queue = "outage." + Guid.NewGuid().ToString("N")[..8];
        var expected = new Dictionary<Guid, List<TaskEventKind>>();

        async Task Round(int enqueue)
        {
            for (var i = 0; i < enqueue; i++)
            {
                var id = (await store.EnqueueAsync(new EnqueueRequest(queue, [1]), Ct)).TaskId;
                expected[id] = [TaskEventKind.Enqueued];
            }
            var leases = await store.LeaseAsync(queue, "w1", 1000, TimeSpan.FromMinutes(5), Ct);
            for (var i = 0; i < leases.Count; i++)
            {
                var lease = leases[i];
                expected[lease.TaskId].Add(TaskEventKind.Leased);
                if (i % 3 == 0)
                {
                    var result = await store.FailAsync(lease, "transient", new FailOptions { RetryDelay = TimeSpan.Zero }, Ct);
                    expected[lease.TaskId].Add(result.WillRetry ? TaskEventKind.Retried : TaskEventKind.Failed);
                }
                else
                {
                    await store.CompleteAsync(lease, null, Ct);
                    expected[lease.TaskId].Add(TaskEventKind.Completed);
                }
            }
        }

        await Round(30);
        await recorder.FlushAsync(Ct);
        Assert.Equal(0, recorder.Buffered);

        await Services("cassandra_down");
        await Round(30);
        await Round(10);
        Assert.True(recorder.Buffered > 0, "events recorded while the server is down wait in the buffer");

        await Services("cassandra_up");
        await Round(10);
        using (var catchUp = CancellationTokenSource.CreateLinkedTokenSource(Ct))
        {
            catchUp.CancelAfter(TimeSpan.FromMinutes(2));
            await recorder.FlushAsync(catchUp.Token);
        }
        await recorder.DisposeAsync();

        Assert.Equal(0, recorder.Dropped);
        var total = 0;
        foreach (var (taskId, kinds) in expected)
        {
            var history = await log.ReadTaskHistoryAsync(taskId, Ct);
            Assert.Equal(kinds, history.Select(e => e.Kind).ToList());
            Assert.All(history, e => Assert.Equal(queue, e.Queue));
            total += kinds.Count;
        }
        var window = new List<TaskEvent>();
        Guid? cursor = null;
        do
        {
            var page = await log.ReadQueueEventsAsync(queue, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddHours(1), new TaskEventPageRequest(100, cursor), Ct);
            window.AddRange(page.Events);
            cursor = page.NextCursor;
        }
        while (cursor is not null);
        Assert.Equal(total, window.Count);
        Assert.Equal(total, window.Select(e => e.EventId).Distinct().Count());

        await session.ExecuteAsync($"DROP KEYSPACE IF EXISTS {keyspace}", options: new CqlQueryOptions { Prepare = false, Timeout = TimeSpan.FromSeconds(60) }, cancellationToken: Ct);
    }

    /// <summary>Runs a function of scripts/services.d/cassandra.sh (the repository's own start/stop, by pid file).</summary>
    private static async Task Services(string function)
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Konduit.sln")))
            root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("Konduit.sln not found above the test binaries.");
        var start = new ProcessStartInfo("bash", ["-c", $"source scripts/services.d/cassandra.sh && {function}"])
        {
            WorkingDirectory = root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(Ct);
        var stderr = process.StandardError.ReadToEndAsync(Ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, $"{function} failed ({process.ExitCode}): {await stdout}{await stderr}");
    }
}
