using Xunit;

#pragma warning disable CS1591 // Test methods: their names are the documentation.

namespace Konduit.Testing.Conformance;

/// <summary>
/// Strings (issue 13, items 5 and 6): NUL characters and unpaired UTF-16 surrogates are decided once for every
/// store. In identifiers, keys, tenants and headers they are refused with <see cref="ArgumentException"/> naming the
/// field, store unchanged (PostgreSQL cannot hold NUL in text, Redis would rewrite a lone surrogate to U+FFFD and
/// collapse two keys into one). In an error text they are replaced with U+FFFD and the failure is recorded, because
/// a failure must never be lost over its message. Every other string, including valid surrogate pairs and U+FFFD
/// itself, is stored exactly.
/// </summary>
public abstract class TextConformance<TFixture>(TFixture fixture) : TaskStoreConformance<TFixture>(fixture)
    where TFixture : TaskStoreFixture
{
    /// <summary>NUL, a lone high and a lone low surrogate, a reversed pair, and a high surrogate at the very end.</summary>
    public static readonly IReadOnlyList<string> UnstorableTexts = ["a\0b", "\0", "a\uD800b", "a\uDC00b", "\uDC00\uD800", "end\uD83D"];

    private const string Replacement = "\uFFFD";

    private async Task AssertEnqueueRejected(Func<string, EnqueueRequest> request, string field)
    {
        foreach (var bad in UnstorableTexts)
        {
            var one = request(bad);
            var ex = await AssertRejected<ArgumentException>(() => Store.EnqueueAsync(one, Ct), field);
            Assert.Contains(field, ex.Message, StringComparison.Ordinal);
            await AssertRejected<ArgumentException>(() => Store.EnqueueManyAsync([one with { IdempotencyKey = null, Tenant = null, Headers = null }, one], Ct), "requests");
            Assert.Equal(0, (await StatsOf(one.Queue)).Total);
        }
    }

    [Fact]
    public virtual Task Enqueue_rejects_an_idempotency_key_with_nul_or_an_unpaired_surrogate()
    {
        var queue = Queue();
        return AssertEnqueueRejected(bad => new EnqueueRequest(queue, Bytes("x")) { IdempotencyKey = "key-" + bad }, nameof(EnqueueRequest.IdempotencyKey));
    }

    [Fact]
    public virtual Task Enqueue_rejects_a_tenant_with_nul_or_an_unpaired_surrogate()
    {
        var queue = Queue();
        return AssertEnqueueRejected(bad => new EnqueueRequest(queue, Bytes("x")) { Tenant = bad }, nameof(EnqueueRequest.Tenant));
    }

    [Fact]
    public virtual async Task Enqueue_rejects_a_header_name_or_value_with_nul_or_an_unpaired_surrogate()
    {
        var queue = Queue();
        await AssertEnqueueRejected(bad => new EnqueueRequest(queue, Bytes("x")) { Headers = new Dictionary<string, string> { ["ok"] = "v", [bad] = "v" } }, nameof(EnqueueRequest.Headers));
        await AssertEnqueueRejected(bad => new EnqueueRequest(queue, Bytes("x")) { Headers = new Dictionary<string, string> { ["ok"] = "v", ["name"] = bad } }, nameof(EnqueueRequest.Headers));
    }

    [Fact]
    public virtual async Task Queue_names_with_nul_or_surrogates_are_rejected_by_every_method()
    {
        foreach (var bad in UnstorableTexts.Append("q-😀"))
        {
            var queue = "q" + bad;
            await AssertRejected<ArgumentException>(() => Store.EnqueueAsync(new EnqueueRequest(queue, Bytes("x")), Ct), nameof(EnqueueRequest.Queue));
            await AssertRejected<ArgumentException>(() => Store.LeaseAsync(queue, "w", 1, LongLease, Ct), "queue");
            await AssertRejected<ArgumentException>(() => Store.QueryAsync(new TaskQuery { Queue = queue }, null, Ct), nameof(TaskQuery.Queue));
            await AssertRejected<ArgumentException>(() => Store.PurgeAsync(TimeSpan.Zero, null, queue, Ct), "queue");
            await AssertRejected<ArgumentException>(() => Store.WaitForWorkAsync(queue, TimeSpan.Zero, Ct), "queue");
        }
    }

    [Fact]
    public virtual async Task Lease_rejects_a_worker_id_with_nul_or_an_unpaired_surrogate()
    {
        var queue = Queue();
        var id = await Enqueue(queue);

        foreach (var bad in UnstorableTexts)
            await AssertRejected<ArgumentException>(() => Store.LeaseAsync(queue, "worker-" + bad, 1, LongLease, Ct), "workerId");

        Assert.Equal(TaskState.Pending, (await Store.GetAsync(id, Ct)).State);
        Assert.Equal("worker-😀", (await LeaseOne(queue, workerId: "worker-😀")).WorkerId);
        Assert.Equal("worker-😀", (await Store.GetAsync(id, Ct)).WorkerId);
    }

    [Fact]
    public virtual async Task Query_rejects_a_tenant_filter_with_nul_or_an_unpaired_surrogate()
    {
        foreach (var bad in UnstorableTexts)
        {
            var ex = await Assert.ThrowsAsync<ArgumentException>(() => Store.QueryAsync(new TaskQuery { Tenant = bad }, null, Ct));
            Assert.Equal(nameof(TaskQuery.Tenant), ex.ParamName);
        }
    }

    [Fact]
    public virtual async Task Keys_tenants_and_headers_outside_the_basic_plane_are_stored_exactly_and_stay_distinct()
    {
        var queue = Queue();
        var tenant = $"tenant-😀-{Guid.NewGuid():N}";
        var headers = new Dictionary<string, string> { ["h-😀"] = "v-😀", ["h-" + Replacement] = Replacement + "é" };
        // U+FFFD is what a lossy encoder would turn a lone surrogate into: as a character of its own it is just text.
        string[] keys = ["k-😀", "k-😁", "k-" + Replacement, "k-" + Replacement + Replacement];

        var results = new List<EnqueueResult>();
        foreach (var key in keys)
            results.Add(await Store.EnqueueAsync(new EnqueueRequest(queue, Bytes(key)) { IdempotencyKey = key, Tenant = tenant, Headers = headers }, Ct));

        Assert.All(results, r => Assert.True(r.Created));
        Assert.Equal(keys.Length, results.Select(r => r.TaskId).Distinct().Count());
        for (var i = 0; i < keys.Length; i++)
        {
            var task = await Store.GetAsync(results[i].TaskId, Ct);
            Assert.Equal(keys[i], task.IdempotencyKey);
            Assert.Equal(tenant, task.Tenant);
            Assert.Equal(headers.OrderBy(h => h.Key, StringComparer.Ordinal), task.Headers.OrderBy(h => h.Key, StringComparer.Ordinal));
            Assert.False((await Store.EnqueueAsync(new EnqueueRequest(queue, Bytes("again")) { IdempotencyKey = keys[i] }, Ct)).Created);
        }
        Assert.Equal(keys.Length, (await Store.QueryAsync(new TaskQuery { Tenant = tenant }, null, Ct)).Items.Count);
        var lease = await LeaseOne(queue);
        Assert.Equal(tenant, lease.Tenant);
        Assert.Equal("v-😀", lease.Headers["h-😀"]);
    }

    [Fact]
    public virtual async Task Fail_replaces_nul_and_unpaired_surrogates_in_the_error_text_and_records_the_failure()
    {
        var queue = Queue();
        var retried = await EnqueueAndLease(queue);
        var dead = await EnqueueAndLease(queue);

        var retry = await Store.FailAsync(retried, "boom\0 \uD800 x \uDC00 😀 \uDC00\uD800 end\uD83D", new FailOptions { RetryDelay = TimeSpan.FromHours(1) }, Ct);
        var final = await Store.FailAsync(dead, "\0", FailOptions.NonRetryable, Ct);

        Assert.Equal(TaskState.Pending, retry.State);
        Assert.Equal($"boom{Replacement} {Replacement} x {Replacement} 😀 {Replacement}{Replacement} end{Replacement}",
            Assert.Single((await Store.GetAsync(retried.TaskId, Ct)).Errors).Message);
        Assert.Equal(TaskState.Failed, final.State);
        var task = await Store.GetAsync(dead.TaskId, Ct);
        Assert.Equal(TaskState.Failed, task.State);
        Assert.Equal(Replacement, Assert.Single(task.Errors).Message);
        Assert.Equal(2, (await Store.QueryAsync(new TaskQuery { Queue = queue }, null, Ct)).Items.Count);
    }

    [Fact]
    public virtual async Task Fail_truncates_an_over_long_error_text_without_splitting_a_surrogate_pair()
    {
        var queue = Queue();
        var split = await EnqueueAndLease(queue);
        var nuls = await EnqueueAndLease(queue);
        var exact = await EnqueueAndLease(queue);
        var max = TaskValidation.MaxErrorLength;

        // The pair would straddle the limit: it goes whole rather than leave half of it behind.
        await Store.FailAsync(split, new string('e', max - 1) + "😀tail", FailOptions.NonRetryable, Ct);
        await Store.FailAsync(nuls, new string('\0', max + 100), FailOptions.NonRetryable, Ct);
        await Store.FailAsync(exact, new string('e', max - 2) + "😀tail", FailOptions.NonRetryable, Ct);

        Assert.Equal(new string('e', max - 1), Assert.Single((await Store.GetAsync(split.TaskId, Ct)).Errors).Message);
        Assert.Equal(string.Concat(Enumerable.Repeat(Replacement, max)), Assert.Single((await Store.GetAsync(nuls.TaskId, Ct)).Errors).Message);
        Assert.Equal(new string('e', max - 2) + "😀", Assert.Single((await Store.GetAsync(exact.TaskId, Ct)).Errors).Message);
        Assert.Equal(3, (await StatsOf(queue)).Failed);
    }
}
