using System.Collections.Concurrent;
using Konduit.Testing.Conformance;
using StackExchange.Redis;
using Xunit;

namespace Konduit.Redis.Tests;

/// <summary>
/// Redis-specific behaviour of the streams store: the key layout leaves nothing behind, scripts survive a flushed
/// cache, the PEL carries lease expiry, a crashed consumer's tasks come back through the PEL, and several nodes
/// never lease one task twice.
/// </summary>
public sealed class RedisStoreTests(RedisStoreFixture fixture) : IClassFixture<RedisStoreFixture>
{
    private static readonly TimeSpan LongLease = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(20);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static byte[] Bytes(string text) => System.Text.Encoding.UTF8.GetBytes(text);

    private IDatabase Db => fixture.Connection.GetDatabase();

    private static RedisKey Key(string prefix, string queue, string suffix) => "{" + prefix + ":" + queue + "}" + suffix;

    /// <summary>Runs the sweeper on <paramref name="store"/> until <paramref name="count"/> tasks were reclaimed in all; returns them.</summary>
    private static async Task<List<ReclaimedTask>> ReclaimAsync(RedisTaskStore store, int count)
    {
        var reclaimed = new List<ReclaimedTask>();
        await Await.Until(async () =>
        {
            reclaimed.AddRange(await store.ReclaimExpiredAsync(Ct));
            return reclaimed.Count >= count;
        }, Deadline, Poll, $"{count} expired leases are reclaimed");
        return reclaimed;
    }

    [Fact]
    public async Task Purge_leaves_no_key_behind()
    {
        var prefix = RedisStoreFixture.NewKeyPrefix();
        var store = fixture.CreateRedisStore(prefix);
        var (a, b) = ("a", "b");
        // Every kind of key and index entry a task can own: idempotency key, tenant set, headers, retry policy,
        // error list, result, each terminal state, several priority bands (streams), a delayed retry that is later
        // canceled, a lease reclaimed through the PEL and dead-lettered, a redrive, two queues.
        for (var i = 0; i < 6; i++)
        {
            await store.EnqueueAsync(new EnqueueRequest(i % 2 == 0 ? a : b, Bytes($"{i}"))
            {
                IdempotencyKey = $"k{i}",
                Tenant = $"t{i % 3}",
                Headers = new Dictionary<string, string> { ["h"] = "v" },
                RetryPolicy = new RetryPolicy { Jitter = 0 },
                MaxAttempts = 2,
                Priority = i,
            }, Ct);
        }
        var future = (await store.EnqueueAsync(new EnqueueRequest(a, Bytes("future")) { RunAt = DateTimeOffset.UtcNow.AddHours(1) }, Ct)).TaskId;
        Assert.True(await store.CancelAsync(future, Ct));
        foreach (var queue in new[] { a, b })
        {
            var leases = await store.LeaseAsync(queue, "w", 10, LongLease, Ct);
            Assert.Equal(3, leases.Count);
            await store.FailAsync(leases[0], "retry later", new FailOptions { RetryDelay = TimeSpan.FromHours(1) }, Ct);
            await store.CompleteAsync(leases[1], Bytes("result"), Ct);
            await store.FailAsync(leases[2], "fatal", FailOptions.NonRetryable, Ct);
            await store.CancelAsync(leases[0].TaskId, Ct);
            await store.RedriveAsync(leases[2].TaskId, Ct);
        }
        var expiring = (await store.EnqueueAsync(new EnqueueRequest(b, Bytes("expiring")) { MaxAttempts = 1, Priority = -7 }, Ct)).TaskId;
        foreach (var queue in new[] { a, b })
            await store.CompleteAsync(Assert.Single(await store.LeaseAsync(queue, "w", 1, LongLease, Ct)), null, Ct);
        Assert.Equal(expiring, Assert.Single(await store.LeaseAsync(b, "w", 10, TimeSpan.FromMilliseconds(200), Ct)).TaskId);
        Assert.Equal(TaskState.Failed, Assert.Single(await ReclaimAsync(store, 1)).State);

        // Every task is terminal: the streams of every band, the band sets and the delayed sets are gone already.
        Assert.Equal(0, await Db.KeyExistsAsync([.. new[] { a, b }.SelectMany(q => new[] { ":bands", ":ready", ":d", ":q:-7" }
            .Concat(Enumerable.Range(0, 6).Select(p => $":q:{p}")).Select(suffix => Key(prefix, q, suffix)))]));
        Assert.True(await Db.KeyExistsAsync(Key(prefix, a, ":c")));

        var purged = await store.PurgeAsync(TimeSpan.Zero, null, null, Ct);

        Assert.Equal(8, purged.Count);
        Assert.Equal(8, purged.Select(p => p.TaskId).Distinct().Count());
        Assert.Equal(3, purged.Count(p => p.State == TaskState.Canceled));
        Assert.Equal(["t0", "t1", "t2"], purged.Select(p => p.Tenant).OfType<string>().Distinct().Order());
        Assert.Empty(await fixture.KeysAsync(prefix));
        Assert.Empty(await store.GetStatsAsync(Ct));
        // And the freed keys are usable again.
        Assert.True((await store.EnqueueAsync(new EnqueueRequest(a, Bytes("again")) { IdempotencyKey = "k0" }, Ct)).Created);
    }

    [Fact]
    public async Task Scripts_are_invoked_by_sha_and_reloaded_after_script_flush()
    {
        var store = fixture.CreateRedisStore(RedisStoreFixture.NewKeyPrefix());
        var server = fixture.Connection.GetServers().First(s => !s.IsReplica);
        var queue = "q";
        await store.EnqueueAsync(new EnqueueRequest(queue, Bytes("1")), Ct);
        Assert.True(await server.ScriptExistsAsync(RedisScripts.Instance.Enqueue.Text));

        await server.ScriptFlushAsync();
        Assert.False(await server.ScriptExistsAsync(RedisScripts.Instance.Enqueue.Text));

        // NOSCRIPT on the first call after the flush: the store re-sends the text, which caches it again.
        var id = (await store.EnqueueAsync(new EnqueueRequest(queue, Bytes("2")), Ct)).TaskId;
        Assert.True(await server.ScriptExistsAsync(RedisScripts.Instance.Enqueue.Text));
        var leases = await store.LeaseAsync(queue, "w", 10, TimeSpan.FromMinutes(1), Ct);
        Assert.Equal(2, leases.Count);
        Assert.True(await server.ScriptExistsAsync(RedisScripts.Instance.Lease.Text));
        await store.CompleteAsync(leases[1], null, Ct);
        Assert.Equal(TaskState.Succeeded, (await store.GetAsync(id, Ct)).State);
    }

    [Fact]
    public async Task A_crashed_consumers_tasks_come_back_through_the_pel_with_attempts_counted()
    {
        var prefix = RedisStoreFixture.NewKeyPrefix();
        var queue = "work";
        var stream = Key(prefix, queue, ":q:0");
        // The crashed node has its own connection, which it loses mid-task.
        var crashedConnection = await ConnectionMultiplexer.ConnectAsync(RedisStoreFixture.Configuration!);
        var crashed = new RedisTaskStore(new RedisTaskStoreOptions { KeyPrefix = prefix }, crashedConnection);
        var survivor = fixture.CreateRedisStore(prefix);
        var retried = (await survivor.EnqueueManyAsync([.. Enumerable.Range(0, 4).Select(i => new EnqueueRequest(queue, Bytes($"{i}")) { MaxAttempts = 3 })], Ct))
            .Select(r => r.TaskId).ToList();
        var lastChance = (await survivor.EnqueueAsync(new EnqueueRequest(queue, Bytes("last")) { MaxAttempts = 1, Tenant = "acme" }, Ct)).TaskId;
        var held = await crashed.LeaseAsync(queue, "crashed-worker", 5, TimeSpan.FromMilliseconds(300), Ct);
        Assert.Equal(5, held.Count);

        // The five deliveries sit in the group's PEL, owned by the crashed worker's consumer.
        var pel = await Db.StreamPendingMessagesAsync(stream, RedisTaskStore.GroupName, 10, RedisValue.Null);
        Assert.Equal(5, pel.Length);
        // Owned by the consumer "<worker>|<lease ms>": the PEL itself says when each lease expires.
        Assert.All(pel, p => Assert.Equal("crashed-worker|300", (string?)p.ConsumerName));
        await crashedConnection.CloseAsync(allowCommandsToComplete: false);
        await crashed.DisposeAsync();

        var reclaimed = await ReclaimAsync(survivor, 5);

        Assert.Equal(5, reclaimed.Count);
        Assert.All(reclaimed, r => Assert.Equal((queue, 1, held.Single(h => h.TaskId == r.TaskId).LeaseToken, "crashed-worker"), (r.Queue, r.Attempt, r.LeaseToken, r.WorkerId)));
        Assert.Equal(retried.Order(), reclaimed.Where(r => r.State == TaskState.Pending).Select(r => r.TaskId).Order());
        var dead = Assert.Single(reclaimed, r => r.State == TaskState.Failed);
        Assert.Equal((lastChance, "acme"), (dead.TaskId, dead.Tenant));
        // The old deliveries are acknowledged and deleted; the four retries are fresh, undelivered entries.
        Assert.Equal(0, (await Db.StreamPendingAsync(stream, RedisTaskStore.GroupName)).PendingMessageCount);
        Assert.Equal(4, await Db.StreamLengthAsync(stream));
        var deadTask = await survivor.GetAsync(lastChance, Ct);
        Assert.Equal((TaskState.Failed, 1), (deadTask.State, deadTask.Attempts));
        Assert.Contains("expired", Assert.Single(deadTask.Errors).Message, StringComparison.Ordinal);

        var again = await survivor.LeaseAsync(queue, "survivor", 10, TimeSpan.FromMinutes(1), Ct);
        Assert.Equal(retried, again.Select(l => l.TaskId));
        Assert.All(again, l => Assert.Equal((2, true), (l.Attempt, l.LeaseToken > held.Single(h => h.TaskId == l.TaskId).LeaseToken)));
        // The crashed holder's leases are fenced off: every one of its completions is refused.
        Assert.Equal(5, (await survivor.CompleteManyAsync([.. held.Select(l => new TaskCompletion(l))], Ct)).Count);
        Assert.Empty(await survivor.CompleteManyAsync([.. again.Select(l => new TaskCompletion(l))], Ct));
        var stats = Assert.Single(await survivor.GetStatsAsync(Ct));
        Assert.Equal((4L, 1L), (stats.Succeeded, stats.Failed));
        // Drained: the band's stream (with its group and consumers) is gone, so streams never grow.
        Assert.False(await Db.KeyExistsAsync(stream));
    }

    [Fact]
    public async Task The_pel_shows_true_idle_times_and_each_consumer_name_carries_its_lease_length()
    {
        var prefix = RedisStoreFixture.NewKeyPrefix();
        var store = fixture.CreateRedisStore(prefix);
        var stream = Key(prefix, "q", ":q:3");
        await store.EnqueueAsync(new EnqueueRequest("q", Bytes("x")) { Priority = 3 }, Ct);

        var lease = Assert.Single(await store.LeaseAsync("q", "w", 1, TimeSpan.FromSeconds(30), Ct));

        // Delivered just now to "w|30000": idle is the time since the lease (what XPENDING-based monitoring expects),
        // and reaches the consumer's lease length exactly at expiry.
        var entry = Assert.Single(await Db.StreamPendingMessagesAsync(stream, RedisTaskStore.GroupName, 10, RedisValue.Null));
        Assert.Equal("w|30000", (string?)entry.ConsumerName);
        Assert.InRange(entry.IdleTimeInMilliseconds, 0, 5_000);
        Assert.Equal(1, entry.DeliveryCount);

        await store.HeartbeatAsync(lease, TimeSpan.FromHours(1), Ct);

        // A heartbeat moves the entry to "w|3600000" with a fresh delivery time and no delivery counted.
        entry = Assert.Single(await Db.StreamPendingMessagesAsync(stream, RedisTaskStore.GroupName, 10, RedisValue.Null));
        Assert.Equal("w|3600000", (string?)entry.ConsumerName);
        Assert.InRange(entry.IdleTimeInMilliseconds, 0, 5_000);
        Assert.Equal(1, entry.DeliveryCount);
        // The sweeper's scan (XPENDING IDLE <lease ms> for the consumer) sees no expired lease.
        var expired = (RedisResult[])(await Db.ExecuteAsync("XPENDING", stream, RedisTaskStore.GroupName, "IDLE", 3_600_000, "-", "+", 10, "w|3600000"))!;
        Assert.Empty(expired);
        Assert.Empty(await store.ReclaimExpiredAsync(Ct));
    }

    [Fact]
    public async Task Entries_stamped_by_the_older_expiry_scheme_are_still_reclaimed()
    {
        // Before lease lengths were encoded in consumer names, a lease stamped its entry with (expiry - 1 day) under
        // the plain worker id. A store upgraded with such leases running must still reclaim them once they expire.
        var prefix = RedisStoreFixture.NewKeyPrefix();
        var store = fixture.CreateRedisStore(prefix);
        var stream = Key(prefix, "q", ":q:0");
        var id = (await store.EnqueueAsync(new EnqueueRequest("q", Bytes("x")), Ct)).TaskId;
        var lease = Assert.Single(await store.LeaseAsync("q", "old", 1, TimeSpan.FromMilliseconds(200), Ct));
        var entry = Assert.Single(await Db.StreamPendingMessagesAsync(stream, RedisTaskStore.GroupName, 10, RedisValue.Null));
        var expiredStamp = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - RedisTaskStore.PelBaseMilliseconds - 1_000;
        await Db.ExecuteAsync("XCLAIM", stream, RedisTaskStore.GroupName, "old", 0, entry.MessageId, "TIME", expiredStamp, "JUSTID");
        await Db.ExecuteAsync("XGROUP", "DELCONSUMER", stream, RedisTaskStore.GroupName, "old|200");
        await Await.Until(() => Task.FromResult(DateTimeOffset.UtcNow > lease.ExpiresAt.AddMilliseconds(50)), Deadline, Poll, "the lease expired");

        var reclaimed = await ReclaimAsync(store, 1);

        Assert.Equal((id, TaskState.Pending), (Assert.Single(reclaimed).TaskId, reclaimed[0].State));
    }

    [Fact]
    public async Task Several_nodes_never_lease_one_task_twice()
    {
        const int tasks = 1200, nodes = 4, workersPerNode = 2;
        var prefix = RedisStoreFixture.NewKeyPrefix();
        var queue = "shared";
        var enqueued = await fixture.CreateRedisStore(prefix).EnqueueManyAsync(
            [.. Enumerable.Range(0, tasks).Select(i => new EnqueueRequest(queue, Bytes($"{i}")) { Priority = i % 3 })], Ct);
        // Each node is its own store on its own connection, as separate processes would be.
        var connections = new List<ConnectionMultiplexer>();
        var stores = new List<RedisTaskStore>();
        for (var n = 0; n < nodes; n++)
        {
            var connection = await ConnectionMultiplexer.ConnectAsync(RedisStoreFixture.Configuration!);
            connections.Add(connection);
            stores.Add(new RedisTaskStore(new RedisTaskStoreOptions { KeyPrefix = prefix }, connection));
        }
        var leased = new ConcurrentBag<(Guid Id, long Token, int Attempt)>();
        var lost = new ConcurrentBag<Guid>();
        using var done = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        try
        {
            // Every node also runs its sweeper throughout: with unexpired leases it must reclaim nothing.
            var sweepers = stores.Select(store => Task.Run(async () =>
            {
                var swept = 0;
                while (!done.IsCancellationRequested)
                {
                    swept += (await store.ReclaimExpiredAsync(Ct)).Count;
                    await Task.Delay(Poll, Ct); // the sweep interval, not a wait for a condition
                }
                return swept;
            }, Ct)).ToList();
            var workers = stores.SelectMany((store, n) => Enumerable.Range(0, workersPerNode).Select(w => Task.Run(async () =>
            {
                while (true)
                {
                    var batch = await store.LeaseAsync(queue, $"node{n}-w{w}", 7, LongLease, Ct);
                    if (batch.Count == 0) return;
                    foreach (var lease in batch) leased.Add((lease.TaskId, lease.LeaseToken, lease.Attempt));
                    foreach (var id in await store.CompleteManyAsync([.. batch.Select(l => new TaskCompletion(l))], Ct)) lost.Add(id);
                }
            }, Ct))).ToList();
            await Task.WhenAll(workers);
            await done.CancelAsync();

            Assert.Equal(0, (await Task.WhenAll(sweepers)).Sum());
        }
        finally
        {
            foreach (var store in stores) await store.DisposeAsync();
            foreach (var connection in connections) await connection.DisposeAsync();
        }

        Assert.Equal(tasks, leased.Count);
        Assert.Equal(tasks, leased.Select(l => l.Id).Distinct().Count());
        Assert.True(enqueued.Select(r => r.TaskId).ToHashSet().SetEquals(leased.Select(l => l.Id)));
        Assert.All(leased, l => Assert.Equal((true, 1), (l.Token > 0, l.Attempt)));
        Assert.Empty(lost);
        var stats = Assert.Single(await fixture.CreateRedisStore(prefix).GetStatsAsync(Ct));
        Assert.Equal(new QueueStats(queue, 0, 0, tasks, 0, 0), stats);
        // Drained: no band's stream is left.
        Assert.Equal(0, await Db.KeyExistsAsync([Key(prefix, queue, ":q:0"), Key(prefix, queue, ":q:1"), Key(prefix, queue, ":q:2"), Key(prefix, queue, ":bands")]));
    }

    [Fact]
    public async Task Equal_priority_tasks_are_handed_out_in_the_order_they_became_due_not_by_run_at()
    {
        // The behaviour OrdersByRunAt = false declares: a stream is a log, so a task enqueued with an earlier run-at
        // in the past still queues behind tasks that entered the stream before it.
        var store = fixture.CreateRedisStore();
        Assert.False(store.Capabilities.OrdersByRunAt);
        var queue = "due-order-" + Guid.NewGuid().ToString("N");
        var now = DateTimeOffset.UtcNow;
        var first = (await store.EnqueueAsync(new EnqueueRequest(queue, Bytes("1")) { RunAt = now.AddMinutes(-1) }, Ct)).TaskId;
        var second = (await store.EnqueueAsync(new EnqueueRequest(queue, Bytes("2")) { RunAt = now.AddMinutes(-5) }, Ct)).TaskId;
        var delayed = (await store.EnqueueAsync(new EnqueueRequest(queue, Bytes("3")) { RunAt = now.AddMilliseconds(300) }, Ct)).TaskId;
        var high = (await store.EnqueueAsync(new EnqueueRequest(queue, Bytes("4")) { Priority = 1, RunAt = now.AddMinutes(-1) }, Ct)).TaskId;
        await Await.Until(() => Task.FromResult(DateTimeOffset.UtcNow > now.AddMilliseconds(600)), Deadline, Poll, "the delayed task is due");
        var last = (await store.EnqueueAsync(new EnqueueRequest(queue, Bytes("5")), Ct)).TaskId;

        var leases = await store.LeaseAsync(queue, "w", 10, LongLease, Ct);

        // The delayed task enters its band's stream when the lease script finds it due: after `last`.
        Assert.Equal([high, first, second, last, delayed], leases.Select(l => l.TaskId));
    }

    [Fact]
    public async Task The_sweeper_moves_due_delayed_tasks_into_their_stream_and_wakes_the_queue()
    {
        var prefix = RedisStoreFixture.NewKeyPrefix();
        var store = fixture.CreateRedisStore(prefix);
        var queue = "later";
        await store.WaitForWorkAsync(queue, TimeSpan.Zero, Ct);
        await store.EnqueueAsync(new EnqueueRequest(queue, Bytes("x")) { RunAt = DateTimeOffset.UtcNow.AddMilliseconds(300) }, Ct);
        Assert.True(await store.WaitForWorkAsync(queue, Deadline, Ct), "the enqueue signal");
        Assert.False(await Db.KeyExistsAsync(Key(prefix, queue, ":q:0")), "not due yet: in the delayed set, not the stream");

        await Await.Until(async () =>
        {
            await store.ReclaimExpiredAsync(Ct);
            return await Db.StreamLengthAsync(Key(prefix, queue, ":q:0")) == 1;
        }, Deadline, Poll, "the sweeper moves the due task into its stream");

        Assert.True(await store.WaitForWorkAsync(queue, Deadline, Ct), "the sweeper's signal");
        Assert.Single(await store.LeaseAsync(queue, "w", 10, LongLease, Ct));
    }

    [Fact]
    public async Task Every_named_script_is_exposed_and_compiles()
    {
        var scripts = RedisScripts.Instance;
        var exposed = typeof(RedisScripts).GetProperties()
            .Where(p => p.PropertyType == typeof(RedisScript))
            .Select(p => (RedisScript)p.GetValue(scripts)!)
            .ToHashSet();
        Assert.True(exposed.SetEquals(scripts.All.Values), "every -- name: block is a property the store calls");
        var server = fixture.Connection.GetServers().First(s => !s.IsReplica);
        foreach (var script in scripts.All.Values)
        {
            // SCRIPT LOAD compiles the script (a syntax error is refused) and returns the SHA1 EVALSHA uses.
            var sha = await server.ScriptLoadAsync(script.Text);
            Assert.Equal(script.Sha1, Convert.ToHexStringLower(sha));
        }
    }

    [Fact]
    public async Task Keys_of_one_queue_share_one_hash_slot()
    {
        var prefix = RedisStoreFixture.NewKeyPrefix();
        var store = fixture.CreateRedisStore(prefix);
        Assert.Empty(await store.LeaseAsync("q", "w", 1, TimeSpan.FromMinutes(1), Ct));
        await store.EnqueueAsync(new EnqueueRequest("q", Bytes("x")) { IdempotencyKey = "k", Tenant = "t", Priority = 2 }, Ct);
        await store.EnqueueAsync(new EnqueueRequest("q", Bytes("y")) { Priority = -1 }, Ct);
        await store.EnqueueAsync(new EnqueueRequest("q", Bytes("z")) { RunAt = DateTimeOffset.UtcNow.AddHours(1) }, Ct);
        var l = (await store.LeaseAsync("q", "w", 1, TimeSpan.FromMinutes(1), Ct))[0];
        await store.FailAsync(l, "boom", FailOptions.NonRetryable, Ct);

        var queueKeys = (await fixture.KeysAsync(prefix)).Where(k => k.StartsWith("{" + prefix + ":q}", StringComparison.Ordinal)).ToList();

        // Streams, band sets, delayed set, task hashes, error list and indexes: all in the queue's slot.
        Assert.Contains(queueKeys, k => k.EndsWith(":q:-1", StringComparison.Ordinal));
        Assert.Contains(queueKeys, k => k.EndsWith(":d", StringComparison.Ordinal));
        Assert.True(queueKeys.Count >= 10, string.Join(", ", queueKeys));
        Assert.Single(queueKeys.Select(k => fixture.Connection.HashSlot(k)).Distinct());
        // The id -> queue map of the queue's tasks is in that slot too (ADR 004, "Finding a task by id").
        Assert.Equal(fixture.Connection.HashSlot(queueKeys[0]), fixture.Connection.HashSlot(store.IdsKey(store.QueueSlot("q"))));
    }

    [Fact]
    public void Options_are_validated_and_construction_does_not_connect()
    {
        Assert.Throws<ArgumentException>(() => new RedisTaskStore(new RedisTaskStoreOptions { Configuration = "127.0.0.1:1", KeyPrefix = "a:b" }));
        Assert.Throws<ArgumentException>(() => new RedisTaskStore(new RedisTaskStoreOptions { Configuration = "127.0.0.1:1", KeyPrefix = "{x}" }));
        Assert.Throws<ArgumentException>(() => new RedisTaskStore(new RedisTaskStoreOptions { Configuration = null }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RedisTaskStore(new RedisTaskStoreOptions { Configuration = "127.0.0.1:1", MaxPayloadBytes = 0 }));

        // Port 1: nothing listens there. Constructing must not try.
        var store = new RedisTaskStore(new RedisTaskStoreOptions { Configuration = "127.0.0.1:1,connectTimeout=200" });
        Assert.Equal("redis", store.Name);
        Assert.Equal(new StoreCapabilities { PushWakeUp = true, TransactionalEnqueue = false, OrdersByRunAt = false, StrictLeaseOrder = true, AtomicCrossQueueBatches = false }, store.Capabilities);
    }
}
