using System.Diagnostics;
using Konduit.Cassandra.Cql;
using Konduit.Hosting;
using Konduit.InMemory;
using Konduit.Testing.Conformance;

namespace Konduit.Cassandra.Tests;

/// <summary>
/// The two-node ring from KONDUIT_TEST_CASSANDRA_RING (scripts/services.d/cassandra.sh ring-up; scripts/test.sh
/// starts it): a keyspace at replication factor 2, the log at its default consistency (LOCAL_QUORUM both ways), the
/// session given one contact point and left to learn the other node.
/// </summary>
public sealed class CassandraRingEventLogFixture() : CassandraLogFixture("konduit_ring_")
{
    public const string Variable = "KONDUIT_TEST_CASSANDRA_RING";

    public static string RingContactPoints() => Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } ring
        ? ring
        : throw new InvalidOperationException($"{Variable} is not set: run scripts/services.d/cassandra.sh ring-up && source .services/env");

    public static string FirstContactPoint() => RingContactPoints().Split(',')[0];

    public override async ValueTask InitializeAsync()
    {
        var options = CqlSessionOptions.FromContactPoint(FirstContactPoint());
        options.RequestTimeout = TimeSpan.FromSeconds(30);
        options.DiscoverPeers = true;
        Session = new CqlSession(options);
        await CreateLogAsync();
    }

    public CassandraTaskEventLogOptions Options(int ttlSeconds) => new()
    {
        Keyspace = Keyspace(ttlSeconds),
        Replication = "{'class': 'SimpleStrategy', 'replication_factor': 2}",
        TimeToLive = ttlSeconds == 0 ? null : TimeSpan.FromSeconds(ttlSeconds),
        RequestTimeout = TimeSpan.FromSeconds(30),
    };

    private protected override async Task<CassandraTaskEventLog> CreateAsync(int ttlSeconds)
    {
        var log = new CassandraTaskEventLog(Options(ttlSeconds), Session);
        await log.MigrateAsync();
        return log;
    }

}

// The event-log suite on the ring at replication factor 2, LOCAL_QUORUM reads and writes.
public sealed class CassandraRingEventHistoryConformanceTests(CassandraRingEventLogFixture f) : TaskEventHistoryConformance<CassandraRingEventLogFixture>(f);
public sealed class CassandraRingEventQueueConformanceTests(CassandraRingEventLogFixture f) : TaskEventQueueConformance<CassandraRingEventLogFixture>(f);
public sealed class CassandraRingEventIdempotencyConformanceTests(CassandraRingEventLogFixture f) : TaskEventIdempotencyConformance<CassandraRingEventLogFixture>(f);
public sealed class CassandraRingEventExpiryConformanceTests(CassandraRingEventLogFixture f) : TaskEventExpiryConformance<CassandraRingEventLogFixture>(f);

// Stops a ring node: alone, after the parallel classes (which use the ring too).
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CassandraRingOutageCollection
{
    public const string Name = "Cassandra ring outage";
}

/// <summary>Issue 14, "A real ring": one node stopped and started again under a recording store.</summary>
[Collection(CassandraRingOutageCollection.Name)]
public sealed class RingOutageTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task With_a_node_stopped_quorum_appends_are_unavailable_and_buffered_ONE_goes_on_and_every_history_is_complete_once_it_is_back()
    {
        var keyspace = "konduit_ringout_" + Guid.NewGuid().ToString("N")[..8];
        var sessionOptions = CqlSessionOptions.FromContactPoint(CassandraRingEventLogFixture.FirstContactPoint());
        sessionOptions.DiscoverPeers = true;
        sessionOptions.RequestTimeout = TimeSpan.FromSeconds(5);
        sessionOptions.ConnectTimeout = TimeSpan.FromSeconds(2);
        await using var session = new CqlSession(sessionOptions);
        var quorumOptions = new CassandraTaskEventLogOptions
        {
            Keyspace = keyspace,
            Replication = "{'class': 'SimpleStrategy', 'replication_factor': 2}",
            TimeToLive = TimeSpan.FromHours(1),
            RequestTimeout = TimeSpan.FromSeconds(5),
        };
        var quorum = new CassandraTaskEventLog(quorumOptions, session);
        await quorum.MigrateAsync(Ct);
        var one = new CassandraTaskEventLog(new CassandraTaskEventLogOptions
        {
            Keyspace = keyspace,
            TimeToLive = quorumOptions.TimeToLive,
            RequestTimeout = quorumOptions.RequestTimeout,
            WriteConsistency = CassandraConsistency.One,
            ReadConsistency = CassandraConsistency.One,
        }, session);
        var queue = "ring." + Guid.NewGuid().ToString("N")[..8];
        var expected = new Dictionary<Guid, List<TaskEventKind>>();

        // The session learned the second node from the first and spreads requests over both.
        var warmUp = NewEvents(queue, 50, expected);
        await quorum.AppendAsync(warmUp, Ct);
        Assert.Equal(2, session.Hosts.Count);
        Assert.All(session.Hosts, h => Assert.True(h.Requests > 0, $"{h.Endpoint} got no request"));

        var recorder = new TaskEventRecorder(quorum, new TaskEventRecorderOptions { BatchSize = 50, MaxRetryDelay = TimeSpan.FromSeconds(1) });
        await using var store = new EventRecordingTaskStore(new InMemoryTaskStore(), recorder);
        await RoundAsync(store, queue, 20, expected);
        await recorder.FlushAsync(Ct);
        Assert.Equal(0, recorder.Buffered);

        await RingAsync("cassandra_ring_node_down 2");
        try
        {
            // The coordinator learns of the shutdown by gossip: from then on LOCAL_QUORUM (2 of 2) is refused up front.
            CassandraUnavailableException? unavailable = null;
            await Await.Until(async () =>
            {
                try
                {
                    await quorum.AppendAsync(NewEvents(queue + ".probe", 1, []), Ct);
                    return false;
                }
                catch (CassandraUnavailableException ex)
                {
                    unavailable = ex;
                    return true;
                }
                catch (CassandraEventLogException)
                {
                    return false; // a timeout or a broken connection while the node goes away
                }
            }, TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(200), "LOCAL_QUORUM appends are refused as unavailable");
            Assert.Equal((CassandraConsistency.LocalQuorum, 2, 1), (unavailable!.Consistency, unavailable.Required, unavailable.Alive));

            await RoundAsync(store, queue, 20, expected);
            Assert.True(recorder.Buffered > 0, "events recorded at LOCAL_QUORUM wait in the buffer while a replica is down");

            // At ONE the same ring takes appends and serves reads: the session fails over to the live node.
            var atOne = NewEvents(queue, 100, expected);
            await one.AppendAsync(atOne, Ct);
            Assert.Equal(atOne.Where(e => e.TaskId == atOne[0].TaskId).Select(e => e.EventId), (await one.ReadTaskHistoryAsync(atOne[0].TaskId, Ct)).Select(e => e.EventId));
            Assert.All(session.Hosts.Where(h => h.Endpoint == CassandraRingEventLogFixture.FirstContactPoint()), h => Assert.True(h.IsUp));
        }
        finally
        {
            await RingAsync("cassandra_ring_node_up 2");
        }

        using (var catchUp = CancellationTokenSource.CreateLinkedTokenSource(Ct))
        {
            catchUp.CancelAfter(TimeSpan.FromMinutes(2));
            await recorder.FlushAsync(catchUp.Token);
        }
        await recorder.DisposeAsync();
        Assert.Equal(0, recorder.Dropped);

        // At LOCAL_QUORUM (both replicas): every task's history complete, each event once.
        foreach (var (task, kinds) in expected)
            Assert.Equal(kinds, (await quorum.ReadTaskHistoryAsync(task, Ct)).Select(e => e.Kind).ToList());
        var window = new List<TaskEvent>();
        Guid? cursor = null;
        do
        {
            var page = await quorum.ReadQueueEventsAsync(queue, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddMinutes(1), new TaskEventPageRequest(500, cursor), Ct);
            window.AddRange(page.Events);
            cursor = page.NextCursor;
        }
        while (cursor is not null);
        Assert.Equal(expected.Values.Sum(k => k.Count), window.Count);
        Assert.Equal(window.Count, window.Select(e => e.EventId).Distinct().Count());
        Assert.All(window, e => Assert.Contains(e.TaskId, expected.Keys));

        await session.ExecuteAsync($"DROP KEYSPACE IF EXISTS {keyspace}", options: new CqlQueryOptions { Prepare = false, Timeout = TimeSpan.FromSeconds(60) }, cancellationToken: Ct);
    }

    private static readonly TaskEventKind[] Lifecycle = [TaskEventKind.Enqueued, TaskEventKind.Leased, TaskEventKind.Completed];

    private static List<TaskEvent> NewEvents(string queue, int tasks, Dictionary<Guid, List<TaskEventKind>> expected)
    {
        var events = new List<TaskEvent>();
        for (var t = 0; t < tasks; t++)
        {
            var task = Guid.NewGuid();
            foreach (var kind in Lifecycle)
                events.Add(TaskEvent.Create(kind, task, queue, DateTimeOffset.UtcNow) with { Attempt = 1, LeaseToken = 1 });
            expected[task] = [.. Lifecycle];
        }
        return events;
    }

    /// <summary>Enqueues, leases and completes <paramref name="count"/> tasks through the recording store.</summary>
    private static async Task RoundAsync(EventRecordingTaskStore store, string queue, int count, Dictionary<Guid, List<TaskEventKind>> expected)
    {
        var ids = new List<Guid>();
        for (var i = 0; i < count; i++)
            ids.Add((await store.EnqueueAsync(new EnqueueRequest(queue, [1]), Ct)).TaskId);
        foreach (var lease in await store.LeaseAsync(queue, "w1", count, TimeSpan.FromMinutes(5), Ct))
            await store.CompleteAsync(lease, null, Ct);
        foreach (var id in ids) expected[id] = [.. Lifecycle];
    }

    private static async Task RingAsync(string function)
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
        timeout.CancelAfter(TimeSpan.FromMinutes(4));
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, $"{function} failed ({process.ExitCode}): {await stdout}{await stderr}");
    }
}
