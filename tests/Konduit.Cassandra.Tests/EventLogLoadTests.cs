using System.Text;
using System.Text.RegularExpressions;
using Konduit.Cassandra.Cql;
using Konduit.Cassandra.EventLog;
using Konduit.Hosting;
using Konduit.Testing.Conformance;

namespace Konduit.Cassandra.Tests;

/// <summary>
/// Issue 14: the event log at the load it exists for, against the real server (counts come from the server: its
/// tracing, and the frames it receives through <see cref="CqlProxy"/>).
/// </summary>
public sealed partial class EventLogLoadTests(CassandraEventLogFixture fixture) : IClassFixture<CassandraEventLogFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string NewQueue() => "load." + Guid.NewGuid().ToString("N")[..12];

    private static List<TaskEvent> Events(string queue, int tasks, int perTask, DateTimeOffset at, Func<int, TaskEvent, TaskEvent>? shape = null)
    {
        var events = new List<TaskEvent>(tasks * perTask);
        for (var t = 0; t < tasks; t++)
        {
            var task = Guid.NewGuid();
            for (var i = 0; i < perTask; i++)
            {
                var e = TaskEvent.Create((TaskEventKind)(i % 10), task, queue, at) with { Attempt = 1, LeaseToken = 1 };
                events.Add(shape is null ? e : shape(events.Count, e));
            }
        }
        return events;
    }

    private CassandraTaskEventLog LogThrough(CqlProxy proxy, int ttlSeconds, out CqlSession session, TimeSpan? requestTimeout = null)
    {
        var options = CqlSessionOptions.FromContactPoint(proxy.ContactPoint);
        options.RequestTimeout = requestTimeout ?? TimeSpan.FromSeconds(30);
        session = new CqlSession(options);
        var logOptions = fixture.Options(ttlSeconds);
        if (requestTimeout is { } timeout) logOptions.RequestTimeout = timeout;
        return new CassandraTaskEventLog(logOptions, session);
    }

    [Fact]
    public async Task Appending_events_without_tenant_worker_or_error_writes_no_tombstones()
    {
        var log = (CassandraTaskEventLog)await fixture.CreateLogAsync();
        var events = Events(NewQueue(), tasks: 10, perTask: 100, DateTimeOffset.UtcNow);
        await log.AppendAsync(events, Ct);

        var tombstones = 0L;
        var live = 0L;
        foreach (var task in events.Select(e => e.TaskId).Distinct())
        {
            var (l, t) = await TracedReadAsync($"SELECT * FROM {fixture.Keyspace(0)}.task_events_by_task WHERE task_id = ?", [task]);
            live += l;
            tombstones += t;
        }
        TestContext.Current.TestOutputHelper?.WriteLine($"1,000 events: {live} live and {tombstones} tombstoned cells in task_events_by_task");
        Assert.True(live > 0, "the traced reads reported their cells");
        Assert.Equal(0, tombstones);
    }

    [Fact]
    public async Task Tables_with_a_time_to_live_get_the_servers_expiry_friendly_compaction_and_a_3_hour_gc_grace()
    {
        await fixture.CreateLogAsync(TimeSpan.FromSeconds(5));
        var release = (await fixture.Session.ExecuteAsync("SELECT release_version FROM system.local", cancellationToken: Ct)).Rows[0].Get<string>(0);
        var expected = TableOptions.For(TableOptions.ParseRelease(release), 5, 300).StrategyName;
        // 2.x keeps table options in system.schema_columnfamilies (3.0+: system_schema.tables).
        var rows = new List<CqlRow>();
        await foreach (var row in fixture.Session.QueryAsync(
            "SELECT columnfamily_name, compaction_strategy_class, compaction_strategy_options, gc_grace_seconds, default_time_to_live FROM system.schema_columnfamilies WHERE keyspace_name = ?",
            [fixture.Keyspace(5)], cancellationToken: Ct))
            rows.Add(row);

        Assert.Equal(["task_events_by_queue", "task_events_by_task"], rows.Select(r => r.Get<string>(0)).Order());
        Assert.All(rows, r => Assert.EndsWith(expected, r.Get<string>(1), StringComparison.Ordinal));
        Assert.All(rows, r => Assert.Equal((3 * 3600, 5), (r.Get<int>(3), r.Get<int>(4))));
        if (expected == "SizeTieredCompactionStrategy")
            Assert.All(rows, r => Assert.Contains("\"unchecked_tombstone_compaction\":\"true\"", r.Get<string>(2), StringComparison.Ordinal));
    }

    [Fact]
    public async Task One_queue_bucket_is_spread_over_several_partitions()
    {
        var log = (CassandraTaskEventLog)await fixture.CreateLogAsync();
        var queue = NewQueue();
        await log.AppendAsync(Events(queue, tasks: 100, perTask: 10, DateTimeOffset.UtcNow), Ct);

        var partitions = 0;
        await foreach (var row in fixture.Session.QueryAsync($"SELECT DISTINCT queue, bucket, shard FROM {fixture.Keyspace(0)}.task_events_by_queue", cancellationToken: Ct))
        {
            if (row.Get<string>(0) == queue) partitions++;
        }
        Assert.True(partitions > 1, $"one queue's bucket lies in {partitions} partition(s)");
    }

    [Fact]
    public async Task A_window_read_after_its_events_expired_is_empty_and_scans_no_expired_rows()
    {
        const int ttl = 5;
        var log = (CassandraTaskEventLog)await fixture.CreateLogAsync(TimeSpan.FromSeconds(ttl));
        var queue = NewQueue();
        var start = DateTimeOffset.UtcNow;
        var events = Events(queue, tasks: 2_000, perTask: 10, start);
        foreach (var chunk in events.Chunk(500))
            await log.AppendAsync(chunk, Ct);
        var sample = events[^1].TaskId;
        await Await.Until(async () => (await log.ReadTaskHistoryAsync(sample, Ct)).Count == 0, TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(250),
            "the last task's history expires");

        var page = await log.ReadQueueEventsAsync(queue, start.AddMinutes(-1), DateTimeOffset.UtcNow.AddMinutes(1), new TaskEventPageRequest(1000), Ct);

        Assert.Empty(page.Events);
        Assert.Null(page.NextCursor);
    }

    [Fact]
    public async Task A_window_reaching_30_days_into_the_future_reads_no_future_bucket()
    {
        await using var proxy = new CqlProxy(fixture.ContactPoint);
        var log = LogThrough(proxy, 0, out var session);
        await using var _ = session;
        var queue = NewQueue();
        var now = DateTimeOffset.UtcNow;
        await log.AppendAsync(Events(queue, 1, 3, now), Ct);
        proxy.Clear();

        var page = await log.ReadQueueEventsAsync(queue, now.AddHours(-1), now.AddDays(30), new TaskEventPageRequest(100), Ct);
        var selects = proxy.Count(CqlOpcode.Execute);
        proxy.Clear();
        await log.ReadQueueEventsAsync(queue, now.AddHours(-1), DateTimeOffset.UtcNow.Add(QueueWindowReader.ClockSkew), new TaskEventPageRequest(100), Ct);
        var upToNow = proxy.Count(CqlOpcode.Execute);

        Assert.Equal(3, page.Events.Count);
        TestContext.Current.TestOutputHelper?.WriteLine($"[now - 1 h, now + 30 d): {selects} SELECTs; [now - 1 h, now + 1 min): {upToNow}");
        // One bucket more at most: "now" moved on between the two reads.
        Assert.InRange(selects, upToNow - fixture.Options(0).ShardCount, upToNow + fixture.Options(0).ShardCount);
    }

    [Fact]
    public async Task Appends_send_batches_under_the_servers_5_KB_warn_threshold()
    {
        await using var proxy = new CqlProxy(fixture.ContactPoint);
        var log = LogThrough(proxy, 0, out var session);
        await using var _ = session;
        var queue = NewQueue();
        await log.AppendAsync(Events(queue, tasks: 10, perTask: 100, DateTimeOffset.UtcNow, (i, e) => e with { WorkerId = "worker-" + i, Error = new string('e', i % 200) }), Ct);

        var batches = proxy.Requests.Where(f => f.Header.Opcode == CqlOpcode.Batch).Select(f => f.Body.Length).ToList();
        TestContext.Current.TestOutputHelper?.WriteLine($"{batches.Count} batches, largest {batches.DefaultIfEmpty().Max()} B");
        Assert.NotEmpty(batches);
        Assert.All(batches, size => Assert.True(size <= 5 * 1024, $"a batch of {size} B"));
    }

    [Fact]
    public async Task A_batch_the_server_refuses_as_invalid_does_not_stall_the_log()
    {
        await using var proxy = new CqlProxy(fixture.ContactPoint);
        var poison = Encoding.UTF8.GetBytes("POISON-VALUE");
        // As the server answers a value it cannot take (or, on 2.2–3.5, a batch past the fail threshold).
        proxy.Intercept = frame => frame.Header.Opcode is CqlOpcode.Batch or CqlOpcode.Execute && frame.Body.AsSpan().IndexOf(poison) >= 0
            ? ProxyAction.Reply(CqlOpcode.Error, FakeBodies.Error(CqlErrorCode.Invalid, "Invalid value"))
            : ProxyAction.Forward;
        var log = LogThrough(proxy, 0, out var session);
        await using var _ = session;
        var queue = NewQueue();
        var events = Events(queue, tasks: 30, perTask: 10, DateTimeOffset.UtcNow);
        events[137] = events[137] with { Error = "POISON-VALUE" };
        var recorder = new TaskEventRecorder(log, new TaskEventRecorderOptions { BatchSize = 100, MaxRetryDelay = TimeSpan.FromMilliseconds(200) });
        await using (recorder)
        {
            recorder.Record(events);
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            deadline.CancelAfter(TimeSpan.FromSeconds(30));
            await recorder.FlushAsync(deadline.Token);
        }

        foreach (var task in events.Select(e => e.TaskId).Distinct())
        {
            var expected = events.Where(e => e.TaskId == task && e.Error != "POISON-VALUE").Select(e => e.EventId).ToList();
            Assert.Equal(expected, (await log.ReadTaskHistoryAsync(task, Ct)).Select(e => e.EventId).ToList());
        }
        // Refused once in each table, alone after the halving; counted, and nothing else lost.
        Assert.Equal(2, log.RejectedEvents);
        Assert.Equal(0, recorder.Dropped);
    }

    [Fact]
    public async Task A_server_side_and_a_client_side_timeout_surface_as_the_same_exception_type()
    {
        await using var proxy = new CqlProxy(fixture.ContactPoint);
        var log = LogThrough(proxy, 0, out var session, TimeSpan.FromSeconds(1));
        await using var _ = session;
        var queue = NewQueue();
        await log.AppendAsync(Events(queue, 1, 1, DateTimeOffset.UtcNow), Ct);

        proxy.Intercept = frame => frame.Header.Opcode is CqlOpcode.Batch or CqlOpcode.Execute
            ? ProxyAction.Reply(CqlOpcode.Error, FakeBodies.Error(CqlErrorCode.WriteTimeout, "Operation timed out - received only 0 responses.", w =>
            {
                w.WriteConsistency(CqlConsistency.LocalQuorum);
                w.WriteInt(0);
                w.WriteInt(1);
                w.WriteString("SIMPLE");
            }))
            : ProxyAction.Forward;
        var serverSide = await Assert.ThrowsAnyAsync<Exception>(() => log.AppendAsync(Events(queue, 1, 1, DateTimeOffset.UtcNow), Ct));
        proxy.Intercept = frame => frame.Header.Opcode is CqlOpcode.Batch or CqlOpcode.Execute ? ProxyAction.Drop : ProxyAction.Forward;
        var clientSide = await Assert.ThrowsAnyAsync<Exception>(() => log.AppendAsync(Events(queue, 1, 1, DateTimeOffset.UtcNow), Ct));

        Assert.Equal(serverSide.GetType(), clientSide.GetType());
    }

    [Fact]
    public void The_default_request_timeout_is_longer_than_the_servers_default_request_timeout()
    {
        // Cassandra's request_timeout_in_ms defaults to 10 s (read 5 s, write 2 s): the server must answer first.
        Assert.True(new CassandraTaskEventLogOptions().RequestTimeout > TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Fifty_concurrent_first_uses_of_a_statement_send_one_PREPARE()
    {
        await using var proxy = new CqlProxy(fixture.ContactPoint);
        var options = CqlSessionOptions.FromContactPoint(proxy.ContactPoint);
        options.DefaultConsistency = CqlConsistency.One;
        await using var session = new CqlSession(options);
        await session.ConnectAsync(Ct);

        await Task.WhenAll(Enumerable.Range(0, 50).Select(_ =>
            session.ExecuteAsync("SELECT release_version FROM system.local WHERE key = ?", ["local"], cancellationToken: Ct)));

        Assert.Equal(1, proxy.Count(CqlOpcode.Prepare));
    }

    [Fact]
    public async Task A_history_row_written_by_another_client_with_null_attempt_and_lease_token_reads_as_zero()
    {
        var log = (CassandraTaskEventLog)await fixture.CreateLogAsync();
        var (task, queue) = (Guid.NewGuid(), NewQueue());
        var id = TaskEventId.NewId(DateTimeOffset.UtcNow);
        await fixture.Session.ExecuteAsync($"INSERT INTO {fixture.Keyspace(0)}.task_events_by_task (task_id, event_id, queue, kind) VALUES (?, ?, ?, ?)",
            [task, TimeUuidMapping.ToTimeUuid(id), queue, (int)TaskEventKind.Enqueued], cancellationToken: Ct);

        var e = Assert.Single(await log.ReadTaskHistoryAsync(task, Ct));

        Assert.Equal((id, 0, 0L, TaskEventKind.Enqueued), (e.EventId, e.Attempt, e.LeaseToken, e.Kind));
    }

    [Fact]
    public async Task Three_foreign_events_of_one_millisecond_page_one_at_a_time_each_exactly_once_in_time_order()
    {
        var log = (CassandraTaskEventLog)await fixture.CreateLogAsync();
        var queue = NewQueue();
        var ms = DateTimeOffset.UtcNow.AddMinutes(-2).ToUnixTimeMilliseconds();
        var kinds = new[] { TaskEventKind.Enqueued, TaskEventKind.Leased, TaskEventKind.Completed };
        var ticks = new[] { 5000, 6000, 7000 }; // 100-ns units inside the millisecond, as a driver's uuid_from_time makes them
        for (var i = 0; i < 3; i++)
        {
            var timeUuid = CqlTimeUuid.Create(DateTimeOffset.FromUnixTimeMilliseconds(ms).AddTicks(ticks[i]));
            await InsertForeignQueueRowAsync(queue, ms, timeUuid, Guid.NewGuid(), kinds[i], shard: i * 5);
        }

        var seen = new List<TaskEvent>();
        Guid? cursor = null;
        for (var pages = 0; pages < 10; pages++)
        {
            var page = await log.ReadQueueEventsAsync(queue, DateTimeOffset.FromUnixTimeMilliseconds(ms - 60_000), DateTimeOffset.UtcNow, new TaskEventPageRequest(1, cursor), Ct);
            seen.AddRange(page.Events);
            cursor = page.NextCursor;
            if (cursor is null) break;
        }

        Assert.Null(cursor);
        Assert.Equal(kinds, seen.Select(e => e.Kind));
        Assert.Equal(3, seen.Select(e => e.EventId).Distinct().Count());
        Assert.All(seen, e => Assert.Equal(ms, e.Timestamp.ToUnixTimeMilliseconds()));
    }

    /// <summary>A by-queue row as another client writes it (the table's own columns, nothing from our writer).</summary>
    private Task InsertForeignQueueRowAsync(string queue, long ms, Guid timeUuid, Guid task, TaskEventKind kind, int shard) =>
        fixture.Session.ExecuteAsync(
            $"INSERT INTO {fixture.Keyspace(0)}.task_events_by_queue (queue, bucket, shard, event_id, task_id, kind, attempt, lease_token) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [queue, DateTimeOffset.FromUnixTimeMilliseconds(ms - ms % (long)fixture.Options(0).BucketSize.TotalMilliseconds), shard, timeUuid, task, (int)kind, 1, 1L], cancellationToken: Ct);

    /// <summary>Runs a traced SELECT and returns the live and tombstoned cells the server says it read.</summary>
    private async Task<(long Live, long Tombstones)> TracedReadAsync(string cql, object?[] values)
    {
        var result = await fixture.Session.ExecuteAsync(cql, values, new CqlQueryOptions { Tracing = true, Consistency = CqlConsistency.One }, Ct);
        var session = result.TracingId ?? throw new InvalidOperationException("The server returned no tracing session id.");
        (long, long)? counts = null;
        // Trace events are written asynchronously by the server, shortly after the response.
        await Await.Until(async () =>
        {
            long live = 0, dead = 0;
            var found = false;
            await foreach (var row in fixture.Session.QueryAsync("SELECT activity FROM system_traces.events WHERE session_id = ?", [session],
                new CqlQueryOptions { Consistency = CqlConsistency.One }, Ct))
            {
                if (ReadCells().Match(row.Get<string>(0)) is { Success: true } m)
                {
                    live += long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
                    dead += long.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
                    found = true;
                }
            }
            counts = (live, dead);
            return found;
        }, TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(100), "the trace of the read reports its cells");
        return counts!.Value;
    }

    [GeneratedRegex(@"Read (\d+) live and (\d+) tombstone(?:d cells|s)")]
    private static partial Regex ReadCells();
}
