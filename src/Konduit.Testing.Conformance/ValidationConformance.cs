using Xunit;

#pragma warning disable CS1591 // Test methods: their names are the documentation.

namespace Konduit.Testing.Conformance;

/// <summary>
/// Bad input: every method rejects it with the documented exception type (see <see cref="TaskValidation"/>)
/// and leaves the store unchanged, checked through stats and snapshots.
/// </summary>
public abstract class ValidationConformance<TFixture>(TFixture fixture) : TaskStoreConformance<TFixture>(fixture)
    where TFixture : TaskStoreFixture
{
    private static readonly string[] BadQueueNames = ["", "has space", "slash/queue", "ümlaut", "tab\t", new string('q', TaskValidation.MaxQueueLength + 1)];

    [Fact]
    public virtual async Task Enqueue_rejects_a_null_request_or_payload()
    {
        await AssertRejected<ArgumentNullException>(() => Store.EnqueueAsync(null!, Ct));
        await AssertRejected<ArgumentNullException>(() => Store.EnqueueManyAsync(null!, Ct));
        await AssertRejected<ArgumentNullException>(() => Store.EnqueueAsync(new EnqueueRequest(Queue(), null!), Ct), nameof(EnqueueRequest.Payload));
    }

    [Fact]
    public virtual async Task Enqueue_rejects_null_empty_invalid_and_over_long_queue_names()
    {
        await AssertRejected<ArgumentNullException>(() => Store.EnqueueAsync(new EnqueueRequest(null!, Bytes("x")), Ct), nameof(EnqueueRequest.Queue));
        foreach (var name in BadQueueNames)
            await AssertRejected<ArgumentException>(() => Store.EnqueueAsync(new EnqueueRequest(name, Bytes("x")), Ct), nameof(EnqueueRequest.Queue));

        // The longest valid name and every allowed character are accepted.
        var longest = new string('q', TaskValidation.MaxQueueLength - 33) + "." + Guid.NewGuid().ToString("N");
        Assert.True((await Store.EnqueueAsync(new EnqueueRequest(longest, Bytes("x")), Ct)).Created);
        Assert.True((await Store.EnqueueAsync(new EnqueueRequest($"Aa0._:-{Guid.NewGuid():N}", Bytes("x")), Ct)).Created);
    }

    [Fact]
    public virtual async Task Enqueue_rejects_a_payload_over_the_default_limit()
    {
        var queue = Queue();

        await AssertRejected<ArgumentException>(
            () => Store.EnqueueAsync(new EnqueueRequest(queue, new byte[TaskValidation.DefaultMaxPayloadBytes + 1]), Ct), nameof(EnqueueRequest.Payload));

        Assert.True((await Store.EnqueueAsync(new EnqueueRequest(queue, new byte[TaskValidation.DefaultMaxPayloadBytes]), Ct)).Created);
    }

    [Fact]
    public virtual async Task Enqueue_rejects_a_payload_over_a_configured_smaller_limit()
    {
        var store = await Fixture.CreateStoreAsync(o => o.MaxPayloadBytes = 1000);
        var queue = Queue();

        var ex = await Assert.ThrowsAsync<ArgumentException>(() => store.EnqueueAsync(new EnqueueRequest(queue, new byte[1001]), Ct));
        Assert.Equal(nameof(EnqueueRequest.Payload), ex.ParamName);
        await Assert.ThrowsAsync<ArgumentException>(() => store.EnqueueManyAsync([new EnqueueRequest(queue, new byte[10]), new EnqueueRequest(queue, new byte[1001])], Ct));
        Assert.DoesNotContain(await store.GetStatsAsync(Ct), s => s.Queue == queue);

        Assert.True((await store.EnqueueAsync(new EnqueueRequest(queue, new byte[1000]), Ct)).Created);
    }

    [Fact]
    public virtual async Task Enqueue_rejects_zero_or_negative_max_attempts()
    {
        var queue = Queue();

        await AssertRejected<ArgumentOutOfRangeException>(() => Store.EnqueueAsync(new EnqueueRequest(queue, Bytes("x")) { MaxAttempts = 0 }, Ct), nameof(EnqueueRequest.MaxAttempts));
        await AssertRejected<ArgumentOutOfRangeException>(() => Store.EnqueueAsync(new EnqueueRequest(queue, Bytes("x")) { MaxAttempts = -1 }, Ct), nameof(EnqueueRequest.MaxAttempts));
    }

    [Fact]
    public virtual async Task Enqueue_rejects_an_empty_or_over_long_idempotency_key()
    {
        var queue = Queue();

        await AssertRejected<ArgumentException>(() => Store.EnqueueAsync(new EnqueueRequest(queue, Bytes("x")) { IdempotencyKey = "" }, Ct), nameof(EnqueueRequest.IdempotencyKey));
        await AssertRejected<ArgumentException>(() => Store.EnqueueAsync(
            new EnqueueRequest(queue, Bytes("x")) { IdempotencyKey = new string('k', TaskValidation.MaxIdempotencyKeyLength + 1) }, Ct), nameof(EnqueueRequest.IdempotencyKey));

        var longest = new string('k', TaskValidation.MaxIdempotencyKeyLength);
        Assert.True((await Store.EnqueueAsync(new EnqueueRequest(queue, Bytes("x")) { IdempotencyKey = longest }, Ct)).Created);
        Assert.Equal(longest, (await Store.QueryAsync(new TaskQuery { Queue = queue }, null, Ct)).Items.Single().IdempotencyKey);
    }

    [Fact]
    public virtual async Task Enqueue_rejects_a_bad_tenant_header_or_retry_policy()
    {
        var queue = Queue();
        var ok = new EnqueueRequest(queue, Bytes("x"));

        await AssertRejected<ArgumentException>(() => Store.EnqueueAsync(ok with { Tenant = "" }, Ct), nameof(EnqueueRequest.Tenant));
        await AssertRejected<ArgumentException>(() => Store.EnqueueAsync(ok with { Tenant = new string('t', TaskValidation.MaxNameLength + 1) }, Ct), nameof(EnqueueRequest.Tenant));
        await AssertRejected<ArgumentException>(() => Store.EnqueueAsync(ok with { Headers = new Dictionary<string, string> { [""] = "v" } }, Ct), nameof(EnqueueRequest.Headers));
        await AssertRejected<ArgumentOutOfRangeException>(() => Store.EnqueueAsync(ok with { RetryPolicy = new RetryPolicy { Multiplier = 0.5 } }, Ct));
        await AssertRejected<ArgumentOutOfRangeException>(() => Store.EnqueueAsync(ok with { RetryPolicy = new RetryPolicy { Jitter = 1.5 } }, Ct));
    }

    [Fact]
    public virtual async Task Enqueue_many_rejects_an_oversized_batch()
    {
        var queue = Queue();
        var batch = Enumerable.Range(0, TaskValidation.MaxBatchSize + 1).Select(_ => new EnqueueRequest(queue, [])).ToList();

        await AssertRejected<ArgumentOutOfRangeException>(() => Store.EnqueueManyAsync(batch, Ct));
    }

    [Fact]
    public virtual async Task Lease_rejects_zero_negative_and_over_long_durations()
    {
        var queue = Queue();
        var id = await Enqueue(queue);

        foreach (var duration in new[] { TimeSpan.Zero, TimeSpan.FromSeconds(-1), TaskValidation.MaxLeaseDuration + TimeSpan.FromSeconds(1) })
            await AssertRejected<ArgumentOutOfRangeException>(() => Store.LeaseAsync(queue, "w", 1, duration, Ct), "leaseDuration");

        Assert.Equal(TaskState.Pending, (await Store.GetAsync(id, Ct)).State);
    }

    [Fact]
    public virtual async Task Lease_rejects_a_max_count_of_zero_or_over_the_limit()
    {
        var queue = Queue();
        var id = await Enqueue(queue);

        foreach (var count in new[] { 0, -1, TaskValidation.MaxLeaseCount + 1 })
            await AssertRejected<ArgumentOutOfRangeException>(() => Store.LeaseAsync(queue, "w", count, LongLease, Ct), "maxCount");

        Assert.Equal(TaskState.Pending, (await Store.GetAsync(id, Ct)).State);
    }

    [Fact]
    public virtual async Task Lease_rejects_bad_queue_names_and_worker_ids()
    {
        var queue = Queue();
        await Enqueue(queue);

        await AssertRejected<ArgumentNullException>(() => Store.LeaseAsync(null!, "w", 1, LongLease, Ct), "queue");
        foreach (var name in BadQueueNames)
            await AssertRejected<ArgumentException>(() => Store.LeaseAsync(name, "w", 1, LongLease, Ct), "queue");
        await AssertRejected<ArgumentNullException>(() => Store.LeaseAsync(queue, null!, 1, LongLease, Ct), "workerId");
        await AssertRejected<ArgumentException>(() => Store.LeaseAsync(queue, "", 1, LongLease, Ct), "workerId");
        await AssertRejected<ArgumentException>(() => Store.LeaseAsync(queue, new string('w', TaskValidation.MaxNameLength + 1), 1, LongLease, Ct), "workerId");
    }

    [Fact]
    public virtual async Task Heartbeat_and_complete_reject_bad_arguments_and_keep_the_lease()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue);
        var before = await Store.GetAsync(lease.TaskId, Ct);

        await AssertRejected<ArgumentOutOfRangeException>(() => Store.HeartbeatAsync(lease, TimeSpan.Zero, Ct), "extension");
        await AssertRejected<ArgumentOutOfRangeException>(() => Store.HeartbeatAsync(lease, TimeSpan.FromSeconds(-5), Ct), "extension");
        await AssertRejected<ArgumentNullException>(() => Store.HeartbeatAsync(null!, LongLease, Ct));
        await AssertRejected<ArgumentNullException>(() => Store.CompleteAsync(null!, null, Ct));
        await AssertRejected<ArgumentNullException>(() => Store.CompleteManyAsync(null!, Ct));

        AssertUnchanged(before, await Store.GetAsync(lease.TaskId, Ct));
        await Store.CompleteAsync(lease, null, Ct);
    }

    [Fact]
    public virtual async Task Fail_rejects_a_null_error_or_a_negative_delay_and_records_nothing()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue);
        var before = await Store.GetAsync(lease.TaskId, Ct);

        await AssertRejected<ArgumentNullException>(() => Store.FailAsync(lease, null!, null, Ct));
        await AssertRejected<ArgumentNullException>(() => Store.FailAsync(null!, "x", null, Ct));
        await AssertRejected<ArgumentOutOfRangeException>(() => Store.FailAsync(lease, "x", new FailOptions { RetryDelay = TimeSpan.FromSeconds(-1) }, Ct));
        await AssertRejected<ArgumentOutOfRangeException>(() => Store.FailAsync(lease, "x", new FailOptions { RetryPolicy = new RetryPolicy { Multiplier = 0 } }, Ct));

        var after = await Store.GetAsync(lease.TaskId, Ct);
        AssertUnchanged(before, after);
        Assert.Empty(after.Errors);
    }

    [Fact]
    public virtual async Task Unknown_task_ids_throw_task_not_found_for_get_cancel_and_retry()
    {
        var unknown = Guid.CreateVersion7();
        var before = await Store.GetStatsAsync(Ct);

        Assert.Equal(unknown, (await Assert.ThrowsAsync<TaskNotFoundException>(() => Store.GetAsync(unknown, Ct))).TaskId);
        Assert.Equal(unknown, (await Assert.ThrowsAsync<TaskNotFoundException>(() => Store.CancelAsync(unknown, Ct))).TaskId);
        Assert.Equal(unknown, (await Assert.ThrowsAsync<TaskNotFoundException>(() => Store.RedriveAsync(unknown, Ct))).TaskId);

        Assert.Equal(before, await Store.GetStatsAsync(Ct));
    }

    [Fact]
    public virtual async Task Query_and_wait_for_work_reject_bad_arguments()
    {
        var now = DateTimeOffset.UtcNow;

        await Assert.ThrowsAsync<ArgumentNullException>(() => Store.QueryAsync(null!, null, Ct));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Store.QueryAsync(new TaskQuery(), new PageRequest(0), Ct));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Store.QueryAsync(new TaskQuery(), new PageRequest(TaskValidation.MaxPageSize + 1), Ct));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.QueryAsync(new TaskQuery { EnqueuedFrom = now, EnqueuedTo = now.AddSeconds(-1) }, null, Ct));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.QueryAsync(new TaskQuery { FinishedFrom = now, FinishedTo = now.AddSeconds(-1) }, null, Ct));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.QueryAsync(new TaskQuery { Queue = "bad queue" }, null, Ct));
        await Assert.ThrowsAsync<ArgumentNullException>(() => Store.WaitForWorkAsync(null!, TimeSpan.FromMilliseconds(10), Ct));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.WaitForWorkAsync("bad queue", TimeSpan.FromMilliseconds(10), Ct));
    }
}
