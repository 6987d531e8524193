using System.Globalization;
using Konduit.Tests.Shared;
using StackExchange.Redis;
using Xunit;

namespace Konduit.Redis.Tests;

/// <summary>
/// Issue 16: the fields that never change after enqueue (created, max attempts, tenant, headers, retry policy) are
/// packed into one hash field, so a lease reads fewer fields. Tasks written by the previous version keep their
/// unpacked fields and must still lease, fail, complete, expire, query, redrive and purge.
/// </summary>
public sealed class RedisPackedHashTests(RedisStoreFixture fixture) : IClassFixture<RedisStoreFixture>
{
    private const string Trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    private static readonly TimeSpan LongLease = TimeSpan.FromMinutes(5);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static byte[] Bytes(string text) => System.Text.Encoding.UTF8.GetBytes(text);

    private IDatabase Db => fixture.Connection.GetDatabase();

    /// <summary>
    /// Rewrites a task hash as the previous version wrote it: every field on its own (id, q, m, ca, tn, hd, rp, k),
    /// values over 64 bytes in <c>B:x:&lt;id&gt;:&lt;field&gt;</c> listed in <c>x</c>. The stream entry, indexes and id
    /// map were written by the enqueue and are the same in both versions.
    /// </summary>
    private async Task WriteOldHashAsync(string prefix, string queue, Guid id, int priority, int maxAttempts, long createdUs,
        byte[] payload, string? tenant, string? key, string? headersJson, string? retryJson)
    {
        var b = "{" + prefix + ":" + queue + "}";
        var hex = RedisTaskStore.Hex(id);
        var t = b + ":t:" + hex;
        var se = await Db.HashGetAsync(t, "se");
        Assert.False(se.IsNull);
        foreach (var f in new[] { "pl", "hd", "rp", "i" }) await Db.KeyDeleteAsync(b + ":x:" + hex + ":" + f);
        await Db.KeyDeleteAsync(t);
        var created = createdUs.ToString(CultureInfo.InvariantCulture);
        var fields = new List<HashEntry>
        {
            new("id", hex), new("q", queue), new("s", 0), new("p", priority), new("a", 0), new("m", maxAttempts), new("tk", 0),
            new("ra", created), new("ca", created), new("ua", created), new("se", se),
        };
        var spilled = new List<string>();
        async Task PutAsync(string field, RedisValue value)
        {
            if (((byte[])value!).Length > 64)
            {
                await Db.StringSetAsync(b + ":x:" + hex + ":" + field, value);
                spilled.Add(field);
            }
            else fields.Add(new HashEntry(field, value));
        }
        await PutAsync("pl", payload);
        if (key is not null) fields.Add(new HashEntry("k", key));
        if (tenant is not null) fields.Add(new HashEntry("tn", tenant));
        if (headersJson is not null) await PutAsync("hd", headersJson);
        if (retryJson is not null) await PutAsync("rp", retryJson);
        if (spilled.Count > 0) fields.Add(new HashEntry("x", string.Join(',', spilled)));
        await Db.HashSetAsync(t, [.. fields]);
        Assert.Equal("listpack", (string?)await Db.ExecuteAsync("OBJECT", "ENCODING", t));
    }

    [Fact]
    public async Task Tasks_written_unpacked_by_the_previous_version_still_lease_fail_complete_expire_query_redrive_and_purge()
    {
        var prefix = RedisStoreFixture.NewKeyPrefix();
        var store = fixture.CreateRedisStore(prefix);
        var createdUs = (DateTimeOffset.UtcNow.AddHours(-1).ToUnixTimeMilliseconds() * 1000) + 123;
        var created = DateTimeOffset.FromUnixTimeMilliseconds(createdUs / 1000).AddTicks(1230);
        var payloadA = Bytes(new string('a', 100));
        var retryA = new RetryPolicy { InitialDelay = TimeSpan.FromMinutes(3), MaxDelay = TimeSpan.FromHours(2), Multiplier = 3, Jitter = 0 };
        const string RetryJsonA = "{\"initialDelayTicks\":1800000000,\"maxDelayTicks\":72000000000,\"multiplier\":3,\"jitter\":0}";
        const string HeadersJsonA = "{\"traceparent\":\"" + Trace + "\"}";

        // A: long headers, retry policy and payload (spilled the old way), tenant and key. B: small values, one attempt.
        var a = (await store.EnqueueAsync(new EnqueueRequest("q", payloadA) { Tenant = "acme", IdempotencyKey = "key-a", MaxAttempts = 3, Priority = 5 }, Ct)).TaskId;
        var bId = (await store.EnqueueAsync(new EnqueueRequest("q", Bytes("b")) { MaxAttempts = 1 }, Ct)).TaskId;
        var c = (await store.EnqueueAsync(new EnqueueRequest("q", Bytes("c")) { MaxAttempts = 2, Tenant = "acme" }, Ct)).TaskId;
        await WriteOldHashAsync(prefix, "q", a, 5, 3, createdUs, payloadA, "acme", "key-a", HeadersJsonA, RetryJsonA);
        await WriteOldHashAsync(prefix, "q", bId, 0, 1, createdUs, Bytes("b"), null, null, "{\"x\":\"y\"}", null);
        await WriteOldHashAsync(prefix, "q", c, 0, 2, createdUs, Bytes("c"), "acme", null, null, null);

        // Get and query read the unpacked fields.
        var snapshot = await store.GetAsync(a, Ct);
        Assert.Equal((TaskState.Pending, 3, "acme", "key-a", created), (snapshot.State, snapshot.MaxAttempts, snapshot.Tenant, snapshot.IdempotencyKey, snapshot.EnqueuedAt));
        Assert.Equal(Trace, snapshot.Headers["traceparent"]);
        Assert.Equal(payloadA, snapshot.Payload);
        Assert.Equal(("q", a), (snapshot.Queue, snapshot.Id));
        var byTenant = await store.QueryAsync(new TaskQuery { Queue = "q", Tenant = "acme" }, null, Ct);
        Assert.Equal([c, a], byTenant.Items.Select(i => i.Id).OrderByDescending(i => i.ToString("N"), StringComparer.Ordinal));

        // Lease reads them (priority 5 first).
        var leases = await store.LeaseAsync("q", "w", 10, LongLease, Ct);
        Assert.Equal([a, bId, c], leases.Select(l => l.TaskId));
        var la = leases[0];
        Assert.Equal((3, "acme", 5, created, created), (la.MaxAttempts, la.Tenant, la.Priority, la.EnqueuedAt, la.RunAt));
        Assert.Equal(Trace, la.Headers["traceparent"]);
        Assert.Equal(retryA, la.RetryPolicy);
        Assert.Equal(payloadA, la.Payload);
        Assert.Equal("y", leases[1].Headers["x"]);
        Assert.Null(leases[1].RetryPolicy);
        Assert.Equal((1, (string?)null), (leases[1].MaxAttempts, leases[1].Tenant));
        Assert.Equal((2, "acme"), (leases[2].MaxAttempts, leases[2].Tenant));

        // Fail resolves the backoff from the stored (old, spilled) retry policy: 3 minutes.
        var failed = await store.FailAsync(la, "boom", null, Ct);
        Assert.Equal(TaskState.Pending, failed.State);
        Assert.InRange(failed.NextRunAt!.Value, DateTimeOffset.UtcNow.AddMinutes(2.9), DateTimeOffset.UtcNow.AddMinutes(3.1));

        // Expiry reads max attempts and tenant: B (1 attempt) is dead-lettered, C (2) goes back to Pending.
        var expiredB = await store.ExpireLeaseAsync(bId, leases[1].LeaseToken, Ct);
        Assert.Equal((TaskState.Failed, (string?)null), (expiredB!.State, expiredB.Tenant));
        var expiredC = await store.ExpireLeaseAsync(c, leases[2].LeaseToken, Ct);
        Assert.Equal((TaskState.Pending, "acme"), (expiredC!.State, expiredC.Tenant));

        // Cancel and redrive A, redrive B; lease everything again and complete it.
        Assert.True(await store.CancelAsync(a, Ct));
        await store.RedriveAsync(a, Ct);
        await store.RedriveAsync(bId, Ct);
        var again = await store.LeaseAsync("q", "w2", 10, LongLease, Ct);
        Assert.Equal([a, c, bId], again.Select(l => l.TaskId));
        Assert.Equal((3, "acme", retryA), (again[0].MaxAttempts, again[0].Tenant, again[0].RetryPolicy));
        Assert.Equal(2, again[1].Attempt);
        Assert.Empty(await store.CompleteManyAsync([.. again.Select(l => new TaskCompletion(l, Bytes("done")))], Ct));
        var finished = await store.GetAsync(a, Ct);
        Assert.Equal((TaskState.Succeeded, "acme", 3), (finished.State, finished.Tenant, finished.MaxAttempts));
        Assert.Equal(Bytes("done"), finished.Result);

        // Purge removes every key the old hashes owned (spilled values and the tenant index included).
        Assert.Equal(3, (await store.PurgeAsync(TimeSpan.Zero, null, null, Ct)).Count);
        Assert.Empty(await fixture.KeysAsync(prefix));
    }

    [Fact]
    public async Task New_task_hashes_hold_the_immutable_fields_in_one_packed_field_and_stay_listpack_encoded()
    {
        var prefix = RedisStoreFixture.NewKeyPrefix();
        var store = fixture.CreateRedisStore(prefix);
        var retry = new RetryPolicy { InitialDelay = TimeSpan.FromSeconds(3), MaxDelay = TimeSpan.FromMinutes(5), Multiplier = 2, Jitter = 0.25 };
        var small = (await store.EnqueueAsync(new EnqueueRequest("q", Bytes("{\"order\":1}")) { Tenant = "t-é", RetryPolicy = retry, MaxAttempts = 4 }, Ct)).TaskId;
        var large = (await store.EnqueueAsync(new EnqueueRequest("q", Bytes("{\"order\":2}"))
        {
            Tenant = "acme",
            Headers = new Dictionary<string, string> { ["traceparent"] = Trace, ["ü"] = "ß" },
            RetryPolicy = retry,
        }, Ct)).TaskId;

        foreach (var id in new[] { small, large })
        {
            var t = "{" + prefix + ":q}:t:" + RedisTaskStore.Hex(id);
            var fields = (await Db.HashKeysAsync(t)).Select(k => (string)k!).ToHashSet();
            Assert.Contains("i", fields);
            Assert.DoesNotContain("m", fields);
            Assert.DoesNotContain("tn", fields);
            Assert.DoesNotContain("hd", fields);
            Assert.DoesNotContain("rp", fields);
            Assert.DoesNotContain("ca", fields);
            Assert.Equal("listpack", (string?)await Db.ExecuteAsync("OBJECT", "ENCODING", t));
        }

        var leases = await store.LeaseAsync("q", "w", 10, LongLease, Ct);
        Assert.Equal((4, "t-é", retry), (leases[0].MaxAttempts, leases[0].Tenant, leases[0].RetryPolicy));
        Assert.Empty(leases[0].Headers);
        Assert.Equal((Trace, "ß", "acme", retry), (leases[1].Headers["traceparent"], leases[1].Headers["ü"], leases[1].Tenant, leases[1].RetryPolicy));
        var snapshot = await store.GetAsync(large, Ct);
        Assert.Equal((leases[1].EnqueuedAt, "acme", Trace), (snapshot.EnqueuedAt, snapshot.Tenant, snapshot.Headers["traceparent"]));
        Assert.Equal(((string?)"t-é", 4), ((await store.GetAsync(small, Ct)).Tenant, (await store.GetAsync(small, Ct)).MaxAttempts));
        var failed = await store.FailAsync(leases[0], "boom", null, Ct);
        Assert.InRange(failed.NextRunAt!.Value, DateTimeOffset.UtcNow.AddSeconds(2), DateTimeOffset.UtcNow.AddSeconds(4.5));
        var expired = await store.ExpireLeaseAsync(large, leases[1].LeaseToken, Ct);
        Assert.Equal("acme", expired!.Tenant);
        Assert.True(await store.CancelAsync(small, Ct));
        Assert.True(await store.CancelAsync(large, Ct));
        Assert.Equal(2, (await store.PurgeAsync(TimeSpan.Zero, null, null, Ct)).Count);
        Assert.Empty(await fixture.KeysAsync(prefix));
    }
}
