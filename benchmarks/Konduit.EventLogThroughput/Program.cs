// Appended events/s against a Cassandra node (issue 6):
//   dotnet run -c Release --project benchmarks/Konduit.EventLogThroughput -- [host:port] [events]
// Scenarios: unbatched (one event per AppendAsync, 1 and 64 calls in flight) and batched (AppendAsync of 100 and
// 500 events: one UNLOGGED batch per task partition and per queue-hour partition, partitions written concurrently).
// Each event is two rows (by task, by queue), so rows/s = 2 × events/s.
using System.Diagnostics;
using Konduit;
using Konduit.Cassandra;
using Konduit.Cassandra.Cql;

var contactPoint = args.Length > 0 ? args[0] : Environment.GetEnvironmentVariable("KONDUIT_TEST_CASSANDRA") ?? "127.0.0.1:29042";
var total = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 20_000;
var keyspace = "konduit_bench_" + Guid.NewGuid().ToString("N")[..8];
var options = CqlSessionOptions.FromContactPoint(contactPoint);
options.RequestTimeout = TimeSpan.FromSeconds(30);
await using var session = new CqlSession(options);
await using var log = new CassandraTaskEventLog(new CassandraTaskEventLogOptions { Keyspace = keyspace, TimeToLive = TimeSpan.FromHours(1), RequestTimeout = TimeSpan.FromSeconds(30) }, session);
await log.MigrateAsync().ConfigureAwait(false);
Console.WriteLine($"Cassandra {contactPoint}, protocol v{session.ProtocolVersion}, keyspace {keyspace}, {total} events per scenario");

try
{
    await Run("warm-up (unbatched, 64 in flight)", Math.Min(total, 5_000), 1, 64).ConfigureAwait(false);
    await Run("unbatched, 1 in flight", Math.Min(total, 5_000), 1, 1).ConfigureAwait(false);
    await Run("unbatched, 64 in flight", total, 1, 64).ConfigureAwait(false);
    await Run("batched 100 (10 tasks × 10 events), 1 in flight", total, 100, 1).ConfigureAwait(false);
    await Run("batched 100 (10 tasks × 10 events), 8 in flight", total, 100, 8).ConfigureAwait(false);
    await Run("batched 500 (50 tasks × 10 events), 8 in flight", total, 500, 8).ConfigureAwait(false);
}
finally
{
    await session.ExecuteAsync($"DROP KEYSPACE IF EXISTS {keyspace}", options: new CqlQueryOptions { Prepare = false, Timeout = TimeSpan.FromSeconds(60) }).ConfigureAwait(false);
}

async Task Run(string name, int events, int batchSize, int inFlight)
{
    // Pre-built batches: each batch covers batchSize/10 tasks with 10 events each, all in one queue.
    var queue = "bench." + Guid.NewGuid().ToString("N")[..6];
    var batches = new List<TaskEvent[]>();
    for (var made = 0; made < events; made += batchSize)
    {
        var batch = new TaskEvent[batchSize];
        var task = Guid.NewGuid();
        for (var i = 0; i < batchSize; i++)
        {
            if (i % 10 == 0) task = Guid.NewGuid();
            batch[i] = TaskEvent.Create((TaskEventKind)(i % 10), task, queue, DateTimeOffset.UtcNow) with { Attempt = 1, Token = 1, Worker = "bench-worker" };
        }
        batches.Add(batch);
    }
    var next = -1;
    var stopwatch = Stopwatch.StartNew();
    var workers = Enumerable.Range(0, inFlight).Select(async _ =>
    {
        int index;
        while ((index = Interlocked.Increment(ref next)) < batches.Count)
            await log.AppendAsync(batches[index]).ConfigureAwait(false);
    });
    await Task.WhenAll(workers).ConfigureAwait(false);
    stopwatch.Stop();
    var count = batches.Count * batchSize;
    Console.WriteLine($"{name,-50} {count,7} events in {stopwatch.Elapsed.TotalSeconds,6:0.00} s = {count / stopwatch.Elapsed.TotalSeconds,8:0} events/s");
}
