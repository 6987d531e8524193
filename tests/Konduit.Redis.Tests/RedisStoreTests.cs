using StackExchange.Redis;
using Xunit;

namespace Konduit.Redis.Tests;

/// <summary>Redis-specific behaviour: the key layout leaves nothing behind, scripts survive a flushed cache, a crashed worker's tasks come back.</summary>
public sealed class RedisStoreTests(RedisStoreFixture fixture) : IClassFixture<RedisStoreFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static byte[] Bytes(string text) => System.Text.Encoding.UTF8.GetBytes(text);

    [Fact]
    public async Task Purge_leaves_no_key_behind()
    {
        var prefix = RedisStoreFixture.NewKeyPrefix();
        var store = fixture.CreateRedisStore(prefix);
        var (a, b) = ("a", "b");
        // Every kind of key and index entry a task can own: idempotency key, tenant set, headers, retry policy,
        // error list, result, each terminal state, a delayed retry that is later redriven, two queues.
        var ids = new List<Guid>();
        for (var i = 0; i < 6; i++)
        {
            ids.Add((await store.EnqueueAsync(new EnqueueRequest(i % 2 == 0 ? a : b, Bytes($"{i}"))
            {
                IdempotencyKey = $"k{i}",
                Tenant = $"t{i % 3}",
                Headers = new Dictionary<string, string> { ["h"] = "v" },
                RetryPolicy = new RetryPolicy { Jitter = 0 },
                MaxAttempts = 2,
            }, Ct)).TaskId);
        }
        await store.EnqueueAsync(new EnqueueRequest(a, Bytes("future")) { RunAt = DateTimeOffset.UtcNow.AddHours(1) }, Ct);
        var future = (await store.QueryAsync(new TaskQuery { Queue = a }, null, Ct)).Items[0].Id;
        Assert.True(await store.CancelAsync(future, Ct));
        foreach (var queue in new[] { a, b })
        {
            var leases = await store.LeaseAsync(queue, "w", 10, TimeSpan.FromMinutes(5), Ct);
            await store.FailAsync(leases[0], "retry later", new FailOptions { RetryDelay = TimeSpan.FromHours(1) }, Ct);
            await store.CompleteAsync(leases[1], Bytes("result"), Ct);
            await store.FailAsync(leases[2], "fatal", FailOptions.NonRetryable, Ct);
            await store.CancelAsync(leases[0].TaskId, Ct);
        }
        Assert.NotEmpty(await fixture.KeysAsync(prefix));

        var purged = await store.PurgeAsync(TimeSpan.Zero, null, null, Ct);

        Assert.Equal(7, purged.Count);
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
        await store.CompleteAsync(leases[1], null, Ct);
        Assert.Equal(TaskState.Succeeded, (await store.GetAsync(id, Ct)).State);
    }

    [Fact]
    public async Task A_crashed_workers_tasks_are_reclaimed_by_another_node_and_run_again()
    {
        var prefix = RedisStoreFixture.NewKeyPrefix();
        // The crashed node has its own connection, which it loses mid-task.
        var crashedConnection = await ConnectionMultiplexer.ConnectAsync(RedisStoreFixture.Configuration!);
        var crashed = new RedisTaskStore(new RedisTaskStoreOptions { KeyPrefix = prefix }, crashedConnection);
        var survivor = fixture.CreateRedisStore(prefix);
        var queue = "work";
        await survivor.EnqueueManyAsync([.. Enumerable.Range(0, 5).Select(i => new EnqueueRequest(queue, Bytes($"{i}")))], Ct);
        var held = await crashed.LeaseAsync(queue, "crashed-worker", 5, TimeSpan.FromMilliseconds(300), Ct);
        Assert.Equal(5, held.Count);
        await crashedConnection.CloseAsync(allowCommandsToComplete: false);
        await crashed.DisposeAsync();

        var reclaimed = 0;
        var deadline = DateTimeOffset.UtcNow.AddSeconds(10);
        while (reclaimed < 5 && DateTimeOffset.UtcNow < deadline)
        {
            reclaimed += (await survivor.ReclaimExpiredAsync(Ct)).Count;
            // A poll interval while the server's clock passes the lease expiry.
            if (reclaimed < 5) await Task.Delay(50, Ct);
        }

        Assert.Equal(5, reclaimed);
        var again = await survivor.LeaseAsync(queue, "survivor", 10, TimeSpan.FromMinutes(1), Ct);
        Assert.Equal(held.Select(l => l.TaskId).Order(), again.Select(l => l.TaskId).Order());
        Assert.All(again, l => Assert.Equal(2, l.Attempt));
        // The crashed holder's leases are fenced off: every one of its completions is refused.
        Assert.Equal(5, (await survivor.CompleteManyAsync([.. held.Select(l => new TaskCompletion(l))], Ct)).Count);
        Assert.Empty(await survivor.CompleteManyAsync([.. again.Select(l => new TaskCompletion(l))], Ct));
        var stats = Assert.Single(await survivor.GetStatsAsync(Ct));
        Assert.Equal(5, stats.Succeeded);
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
        var lease = (await store.LeaseAsync("q", "w", 1, TimeSpan.FromMinutes(1), Ct)).Count;
        Assert.Equal(0, lease);
        await store.EnqueueAsync(new EnqueueRequest("q", Bytes("x")) { IdempotencyKey = "k", Tenant = "t" }, Ct);
        var l = Assert.Single(await store.LeaseAsync("q", "w", 1, TimeSpan.FromMinutes(1), Ct));
        await store.FailAsync(l, "boom", FailOptions.NonRetryable, Ct);

        var queueKeys = (await fixture.KeysAsync(prefix)).Where(k => k.StartsWith("{" + prefix + ":q}", StringComparison.Ordinal)).ToList();

        Assert.True(queueKeys.Count >= 5);
        Assert.Single(queueKeys.Select(k => fixture.Connection.HashSlot(k)).Distinct());
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
    }
}
