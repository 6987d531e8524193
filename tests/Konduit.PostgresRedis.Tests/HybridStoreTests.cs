using System.Collections.Concurrent;
using StackExchange.Redis;
using Xunit;

namespace Konduit.PostgresRedis.Tests;

/// <summary>The hybrid's own behaviour: hints acknowledged and dropped, Redis outages and data loss.</summary>
public sealed class HybridStoreTests(PostgresRedisStoreFixture fixture) : IClassFixture<PostgresRedisStoreFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string NewQueue() => "q-" + Guid.NewGuid().ToString("N")[..8];

    private static EnqueueRequest Req(string queue, int i = 0) => new(queue, [(byte)i]);

    [Fact]
    public async Task Enqueue_adds_the_id_to_the_queue_stream_and_lease_acknowledges_and_deletes_it()
    {
        var store = fixture.CreateHybridStore();
        var queue = NewQueue();
        var db = fixture.Redis.GetDatabase();

        var enqueued = await store.EnqueueAsync(Req(queue), Ct);

        var entries = await db.StreamRangeAsync(store.StreamKey(queue));
        Assert.Equal(enqueued.TaskId.ToString("D"), (string?)Assert.Single(entries)[PostgresRedisTaskStore.IdField]);

        var leases = await store.LeaseAsync(queue, "w1", 10, TimeSpan.FromSeconds(30), Ct);

        Assert.Equal(enqueued.TaskId, Assert.Single(leases).TaskId);
        Assert.Equal(0, (await db.StreamPendingAsync(store.StreamKey(queue), PostgresRedisTaskStore.GroupName)).PendingMessageCount);
        Assert.Equal(0, await db.StreamLengthAsync(store.StreamKey(queue)));
    }

    [Fact]
    public async Task Ids_already_claimed_in_postgres_are_acknowledged_and_dropped_never_leased_twice()
    {
        var store = fixture.CreateHybridStore();
        var queue = NewQueue();
        var db = fixture.Redis.GetDatabase();
        var results = await store.EnqueueManyAsync([Req(queue, 1), Req(queue, 2), Req(queue, 3)], Ct);
        Assert.Equal(3, await db.StreamLengthAsync(store.StreamKey(queue)));

        // Another node claims them straight through PostgreSQL (the stream still holds their ids).
        var first = await store.Postgres.LeaseAsync(queue, "other", 10, TimeSpan.FromSeconds(30), Ct);
        Assert.Equal(3, first.Count);

        var hintsBefore = store.HintsRead;
        var second = await store.LeaseAsync(queue, "w1", 10, TimeSpan.FromSeconds(30), Ct);

        Assert.Empty(second);
        Assert.Equal(3, store.HintsRead - hintsBefore);
        Assert.Equal(0, (await db.StreamPendingAsync(store.StreamKey(queue), PostgresRedisTaskStore.GroupName)).PendingMessageCount);
        Assert.Equal(0, await db.StreamLengthAsync(store.StreamKey(queue)));
        foreach (var r in results) Assert.Equal(1, (await store.GetAsync(r.TaskId, Ct)).Attempts);
    }

    [Fact]
    public async Task Signal_mode_leases_in_postgres_order_while_the_same_call_consumes_every_hint()
    {
        // The hints are drained alongside the lease, not before it: the lease never waits for Redis, and still
        // returns with the stream consumed (stale hints of claimed tasks included).
        var store = fixture.CreateHybridStore();
        var queue = NewQueue();
        var db = fixture.Redis.GetDatabase();
        await store.EnqueueManyAsync([Req(queue, 1), Req(queue, 2)], Ct);
        Assert.Equal(2, (await store.Postgres.LeaseAsync(queue, "other", 10, TimeSpan.FromSeconds(30), Ct)).Count);
        // Committed in PostgreSQL without a hint (as if its XADD had been lost).
        var unhinted = await store.Postgres.EnqueueAsync(Req(queue, 3), Ct);

        var hintsBefore = store.HintsRead;
        var leases = await store.LeaseAsync(queue, "w1", 10, TimeSpan.FromSeconds(30), Ct);

        Assert.Equal(unhinted.TaskId, Assert.Single(leases).TaskId);
        Assert.Equal(2, store.HintsRead - hintsBefore);
        Assert.Equal(0, (await db.StreamPendingAsync(store.StreamKey(queue), PostgresRedisTaskStore.GroupName)).PendingMessageCount);
        Assert.Equal(0, await db.StreamLengthAsync(store.StreamKey(queue)));
    }

    [Fact]
    public async Task A_vanished_stream_is_rebuilt_from_pending_rows()
    {
        var store = fixture.CreateHybridStore();
        var queue = NewQueue();
        var db = fixture.Redis.GetDatabase();
        await store.EnqueueManyAsync([Req(queue, 1), Req(queue, 2)], Ct);

        await db.KeyDeleteAsync(store.StreamKey(queue));  // Redis "lost its data"
        await store.EnqueueAsync(Req(queue, 3), Ct);     // XADD recreates the stream without the group
        var leases = await store.LeaseAsync(queue, "w1", 1, TimeSpan.FromSeconds(30), Ct);

        Assert.Single(leases);
        Assert.True(store.Rebuilds >= 1);
        // The two rows still pending are back in the stream (the third id's entry was re-read from the start).
        Assert.True(await db.StreamLengthAsync(store.StreamKey(queue)) >= 2);
    }

    [Fact]
    public async Task Without_redis_every_operation_still_works_on_postgres_alone()
    {
        // Port 1 on loopback: nothing listens there.
        var store = fixture.CreateHybridStore(
            redis: await ConnectionMultiplexer.ConnectAsync(new ConfigurationOptions
            {
                EndPoints = { "127.0.0.1:1" },
                AbortOnConnectFail = false,
                BacklogPolicy = BacklogPolicy.FailFast,
                ConnectTimeout = 200,
            }),
            configure: o => o.RedisTimeout = TimeSpan.FromMilliseconds(300));
        var queue = NewQueue();

        var enqueued = await store.EnqueueAsync(Req(queue), Ct);
        var leases = await store.LeaseAsync(queue, "w1", 10, TimeSpan.FromSeconds(30), Ct);
        await store.CompleteAsync(Assert.Single(leases), null, Ct);

        Assert.True(store.IsRedisDegraded);
        Assert.Equal(TaskState.Succeeded, (await store.GetAsync(enqueued.TaskId, Ct)).State);
    }

    [Fact]
    public async Task ClaimIds_mode_claims_dispatched_ids_by_primary_key()
    {
        var store = fixture.CreateHybridStore(configure: o => o.Dispatch = DispatchMode.ClaimIds);
        var queue = NewQueue();
        var db = fixture.Redis.GetDatabase();
        var results = await store.EnqueueManyAsync([Req(queue, 1), Req(queue, 2), Req(queue, 3)], Ct);

        var leases = await store.LeaseAsync(queue, "w1", 10, TimeSpan.FromSeconds(30), Ct);

        Assert.Equal(results.Select(r => r.TaskId).Order(), leases.Select(l => l.TaskId).Order());
        Assert.Equal(3, store.ClaimedByHint);
        Assert.All(leases, l => Assert.Equal(1, l.Attempt));
        Assert.Equal(0, (await db.StreamPendingAsync(store.StreamKey(queue), PostgresRedisTaskStore.GroupName)).PendingMessageCount);
        foreach (var lease in leases) await store.CompleteAsync(lease, null, Ct);
    }

    [Fact]
    public async Task ClaimIds_mode_acks_and_drops_claimed_canceled_and_not_yet_due_ids()
    {
        var store = fixture.CreateHybridStore(configure: o => o.Dispatch = DispatchMode.ClaimIds);
        var queue = NewQueue();
        var db = fixture.Redis.GetDatabase();
        var claimed = await store.EnqueueAsync(Req(queue, 1), Ct);
        var canceled = await store.EnqueueAsync(Req(queue, 2), Ct);
        var scheduled = await store.EnqueueAsync(new EnqueueRequest(queue, [3]) { RunAt = DateTimeOffset.UtcNow.AddHours(1) }, Ct);
        Assert.Equal(claimed.TaskId, Assert.Single(await store.Postgres.LeaseAsync(queue, "other", 1, TimeSpan.FromSeconds(30), Ct)).TaskId);
        Assert.True(await store.CancelAsync(canceled.TaskId, Ct));

        var leases = await store.LeaseAsync(queue, "w1", 10, TimeSpan.FromSeconds(30), Ct);

        Assert.Empty(leases);
        Assert.Equal(0, store.ClaimedByHint);
        Assert.Equal(0, (await db.StreamPendingAsync(store.StreamKey(queue), PostgresRedisTaskStore.GroupName)).PendingMessageCount);
        Assert.Equal(0, await db.StreamLengthAsync(store.StreamKey(queue)));
        Assert.Equal(1, (await store.GetAsync(claimed.TaskId, Ct)).Attempts);
        Assert.Equal(TaskState.Pending, (await store.GetAsync(scheduled.TaskId, Ct)).State);
        Assert.Equal(0, (await store.GetAsync(scheduled.TaskId, Ct)).Attempts);
    }

    [Theory]
    [InlineData(false, DispatchMode.Signal)]
    [InlineData(true, DispatchMode.Signal)]
    [InlineData(false, DispatchMode.ClaimIds)]
    [InlineData(true, DispatchMode.ClaimIds)]
    public async Task Redis_restart_mid_run_loses_nothing_and_runs_every_task_exactly_once(bool dataLost, DispatchMode mode)
    {
        await using var redis = await PrivateRedisServer.StartAsync();
        var options = fixture.Options();
        options.KeyPrefix = "kr-" + Guid.NewGuid().ToString("N")[..8];
        options.RedisConfiguration = redis.Configuration;
        options.RedisTimeout = TimeSpan.FromMilliseconds(500);
        options.RedisProbeInterval = TimeSpan.FromMilliseconds(200);
        options.Dispatch = mode;
        await using var store = new PostgresRedisTaskStore(options, fixture.DataSource);
        var queue = NewQueue();
        const int batch = 100;
        var enqueued = new ConcurrentBag<Guid>();
        var completions = new ConcurrentDictionary<Guid, int>();
        var enqueueDone = 0;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        stop.CancelAfter(TimeSpan.FromSeconds(120));

        async Task EnqueueBatchesAsync(int batches)
        {
            for (var b = 0; b < batches; b++)
            {
                var results = await store.EnqueueManyAsync(
                    [.. Enumerable.Range(0, batch).Select(i => Req(queue, i))], stop.Token);
                foreach (var r in results) enqueued.Add(r.TaskId);
            }
        }

        async Task WorkAsync(string worker)
        {
            while (!stop.IsCancellationRequested)
            {
                var leases = await store.LeaseAsync(queue, worker, 25, TimeSpan.FromMinutes(2), stop.Token);
                if (leases.Count == 0)
                {
                    if (Volatile.Read(ref enqueueDone) == 1 && completions.Count >= enqueued.Count) return;
                    await store.WaitForWorkAsync(queue, TimeSpan.FromMilliseconds(50), stop.Token);
                    continue;
                }
                foreach (var lease in leases)
                {
                    completions.AddOrUpdate(lease.TaskId, 1, static (_, n) => n + 1);
                    await store.CompleteAsync(lease, null, stop.Token);
                }
            }
        }

        await EnqueueBatchesAsync(10);                                   // 1,000 before the workers start
        var workers = Enumerable.Range(0, 4).Select(i => WorkAsync("w" + i)).ToArray();
        while (completions.Count < 200) await Task.Delay(5, stop.Token);
        var hintsBeforeOutage = store.HintsRead;

        await redis.ShutdownAsync();
        await EnqueueBatchesAsync(5);                                    // 500 while Redis is down
        Assert.True(store.IsRedisDegraded, "enqueue during the outage must switch the store to PostgreSQL alone");
        // Workers keep leasing through SKIP LOCKED polling while Redis is down.
        var completedAtOutage = completions.Count;
        while (completions.Count < completedAtOutage + 100) await Task.Delay(5, stop.Token);
        Assert.True(store.IsRedisDegraded, "Redis is still down while the workers drain PostgreSQL");
        if (dataLost) redis.WipeData();
        await redis.RestartAsync();
        // The store leaves degraded mode first and then rebuilds the streams, so await the rebuild itself.
        while (store.IsRedisDegraded || store.Rebuilds < 1) await Task.Delay(20, stop.Token);
        await EnqueueBatchesAsync(5);                                    // 500 after it is back
        Volatile.Write(ref enqueueDone, 1);
        await Task.WhenAll(workers);

        Assert.Equal(2000, enqueued.Count);
        Assert.Equal(enqueued.Order(), completions.Keys.Order());
        Assert.All(completions, c => Assert.Equal(1, c.Value));
        Assert.True(hintsBeforeOutage > 0, "workers read dispatch hints while Redis was up");
        Assert.True(store.HintsRead > hintsBeforeOutage, "workers read dispatch hints again after the restart");
        if (mode == DispatchMode.ClaimIds) Assert.True(store.ClaimedByHint > 0, "dispatched ids were claimed by primary key");
        var schema = options.Schema;
        Assert.Equal(2000L, await fixture.ScalarAsync<long>(
            $"SELECT count(*) FROM \"{schema}\".task_history WHERE queue = $1 AND state = 2 AND attempts = 1", queue));
        Assert.Equal(2000L, await fixture.ScalarAsync<long>(
            $"SELECT (SELECT count(*) FROM \"{schema}\".tasks WHERE queue = $1) + (SELECT count(*) FROM \"{schema}\".task_history WHERE queue = $1)", queue));
    }
}
