using System.Globalization;
using Konduit.Cassandra;
using Konduit.Chaos.Tests.Servers;
using Konduit.Tests.Shared;

namespace Konduit.Chaos.Tests;

/// <summary>
/// The Postgres store, its workers recording into the Cassandra event log of KONDUIT_TEST_CASSANDRA (a keyspace per
/// run, dropped after it). The store's verdicts are the Postgres target's; the log's come from Cassandra: no
/// completion or lease recorded twice, no completion recorded for a task that did not succeed or under another
/// lease than the accepted one. A SIGKILLed worker loses the events still in its buffer (ADR 005): how many are
/// present is reported, not asserted.
/// </summary>
internal sealed class CassandraEventLogTarget(PrivatePostgres postgres, string scenario) : PostgresTarget(postgres, scenario)
{
    private const string Variable = "KONDUIT_TEST_CASSANDRA";

    private CassandraTaskEventLog? _log;
    private SharedServerLock? _serverLock;

    public override string StoreName => "Postgres+CassandraLog";

    private string ContactPoint { get; } = Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } cp ? cp
        : throw new InvalidOperationException($"{Variable} is not set: run scripts/services.sh up && source .services/env");

    private string Keyspace => Schema.Length <= 48 ? Schema : Schema[..48];

    private CassandraTaskEventLogOptions LogOptions => new()
    {
        ContactPoints = ContactPoint,
        Keyspace = Keyspace,
        TimeToLive = TimeSpan.FromHours(1),
        // One node: ONE is what it can always satisfy, and reads see every acknowledged append on one replica.
        WriteConsistency = CassandraConsistency.One,
        ReadConsistency = CassandraConsistency.One,
        RequestTimeout = TimeSpan.FromSeconds(30),
    };

    protected override async Task CreateStoreAsync(CancellationToken cancellationToken)
    {
        // The Cassandra module's outage test stops this server; scripts/test.sh runs that module beside this one.
        _serverLock = await SharedServerLock.AcquireAsync("cassandra-" + ContactPoint, cancellationToken);
        await base.CreateStoreAsync(cancellationToken);
        _log = new CassandraTaskEventLog(LogOptions);
        await _log.MigrateAsync(cancellationToken);
    }

    public override IEnumerable<string> StoreArguments(int postgresPort, int redisPort) =>
    [
        .. PostgresArguments(postgresPort),
        "--Konduit:EventLog=Cassandra",
        $"--Konduit:CassandraEventLog:ContactPoints={ContactPoint}",
        $"--Konduit:CassandraEventLog:Keyspace={Keyspace}",
        "--Konduit:CassandraEventLog:WriteConsistency=One",
        "--Konduit:CassandraEventLog:ReadConsistency=One",
    ];

    public override async Task<(IReadOnlyList<string> Failures, IReadOnlyList<string> Report)> AddOnVerdictAsync(CancellationToken cancellationToken)
    {
        var log = _log ?? throw new InvalidOperationException("not set up");
        var tasks = await AllTasksAsync(cancellationToken);
        var histories = new Dictionary<Guid, IReadOnlyList<TaskEvent>>();
        // One history read per task, 16 at a time.
        foreach (var chunk in tasks.Chunk(16))
        {
            var reads = chunk.Select(async t => (t.Id, await log.ReadTaskHistoryAsync(t.Id, cancellationToken))).ToArray();
            foreach (var (id, history) in await Task.WhenAll(reads)) histories[id] = history;
        }
        long completedTwice = 0, completedNotSucceeded = 0, completedOtherLease = 0, leasedTwice = 0, withCompleted = 0, leasedEvents = 0, reclaimedEvents = 0;
        foreach (var task in tasks)
        {
            var history = histories[task.Id];
            var completed = history.Where(e => e.Kind == TaskEventKind.Completed).ToList();
            if (completed.Count > 1) completedTwice++;
            if (completed.Count > 0 && task.State != TaskState.Succeeded) completedNotSucceeded++;
            if (completed.Count == 1 && completed[0].LeaseToken != task.LeaseToken) completedOtherLease++;
            if (completed.Count > 0) withCompleted++;
            var leased = history.Where(e => e.Kind == TaskEventKind.Leased).ToList();
            leasedEvents += leased.Count;
            if (leased.GroupBy(e => e.LeaseToken).Any(g => g.Count() > 1)) leasedTwice++;
            reclaimedEvents += history.Count(e => e.Kind == TaskEventKind.Reclaimed);
        }
        var succeeded = tasks.Count(t => t.State == TaskState.Succeeded);
        var attempts = tasks.Sum(t => (long)t.Attempts);
        var failures = new List<string>();
        if (completedTwice > 0) failures.Add($"event log: tasks with two Completed events: {completedTwice}");
        if (completedNotSucceeded > 0) failures.Add($"event log: Completed recorded for tasks that did not succeed: {completedNotSucceeded}");
        if (completedOtherLease > 0) failures.Add($"event log: Completed recorded under another lease than the accepted one: {completedOtherLease}");
        if (leasedTwice > 0) failures.Add($"event log: tasks with one lease token recorded as Leased twice: {leasedTwice}");
        var ic = CultureInfo.InvariantCulture;
        var report = new List<string>
        {
            string.Create(ic, $"event log (Cassandra): Completed present for {withCompleted} of {succeeded} succeeded tasks ({(succeeded == 0 ? 1 : (double)withCompleted / succeeded):P1}); " +
                $"Leased events {leasedEvents} for {attempts} attempts; Reclaimed events {reclaimedEvents}; recorded twice: 0 checked over {tasks.Count} tasks"),
        };
        return (failures, report);
    }

    public override async ValueTask DisposeAsync()
    {
        if (_log is not null)
        {
            await _log.DisposeAsync();
            var options = Konduit.Cassandra.Cql.CqlSessionOptions.FromContactPoint(ContactPoint);
            options.RequestTimeout = TimeSpan.FromSeconds(60);
            await using var admin = new Konduit.Cassandra.Cql.CqlSession(options);
            // The keyspace is this run's own generated name, not input.
            await admin.ExecuteAsync($"DROP KEYSPACE IF EXISTS {Keyspace}", options: new Konduit.Cassandra.Cql.CqlQueryOptions { Prepare = false });
        }
        await base.DisposeAsync();
        if (_serverLock is not null) await _serverLock.DisposeAsync();
    }
}
