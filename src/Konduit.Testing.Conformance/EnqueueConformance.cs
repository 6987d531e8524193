using Xunit;

#pragma warning disable CS1591 // Test methods: their names are the documentation.

namespace Konduit.Testing.Conformance;

/// <summary>Enqueue and batch enqueue: what is stored, in which order, and that batches are all-or-nothing.</summary>
public abstract class EnqueueConformance<TFixture>(TFixture fixture) : TaskStoreConformance<TFixture>(fixture)
    where TFixture : TaskStoreFixture
{
    [Fact]
    public virtual async Task Enqueue_stores_a_pending_task_with_every_field_of_the_request()
    {
        var queue = Queue();
        var before = DateTimeOffset.UtcNow;
        var result = await Store.EnqueueAsync(new EnqueueRequest(queue, Bytes("hello"))
        {
            IdempotencyKey = "k-1",
            Priority = 7,
            MaxAttempts = 3,
            Tenant = "acme",
            Headers = new Dictionary<string, string> { ["traceparent"] = "00-abc-01", ["x"] = "" },
        }, Ct);
        var after = DateTimeOffset.UtcNow;

        Assert.True(result.Created);
        var task = await Store.GetAsync(result.TaskId, Ct);
        Assert.Equal(result.TaskId, task.Id);
        Assert.Equal(queue, task.Queue);
        Assert.Equal(TaskState.Pending, task.State);
        Assert.Equal(7, task.Priority);
        Assert.Equal(0, task.Attempts);
        Assert.Equal(3, task.MaxAttempts);
        Assert.Equal(0, task.LeaseToken);
        Assert.Equal("k-1", task.IdempotencyKey);
        Assert.Equal("acme", task.Tenant);
        Assert.Equal(Bytes("hello"), task.Payload);
        Assert.Null(task.Result);
        Assert.Empty(task.Errors);
        Assert.Equal(2, task.Headers.Count);
        Assert.Equal("00-abc-01", task.Headers["traceparent"]);
        Assert.Equal("", task.Headers["x"]);
        Assert.Null(task.StartedAt);
        Assert.Null(task.FinishedAt);
        Assert.Null(task.LeaseExpiresAt);
        AssertBetween(task.EnqueuedAt, before, after, "EnqueuedAt");
        AssertSameTime(task.EnqueuedAt, task.RunAt, "RunAt defaults to the enqueue time");
    }

    [Fact]
    public virtual async Task Enqueue_keeps_an_explicit_run_at()
    {
        var queue = Queue();
        var runAt = DateTimeOffset.UtcNow.AddHours(3);
        var id = await Enqueue(queue, runAt: runAt);

        AssertSameTime(runAt, (await Store.GetAsync(id, Ct)).RunAt, "RunAt");
    }

    [Fact]
    public virtual async Task Enqueue_accepts_an_empty_payload_and_no_headers()
    {
        var queue = Queue();
        var result = await Store.EnqueueAsync(new EnqueueRequest(queue, []), Ct);

        var task = await Store.GetAsync(result.TaskId, Ct);
        Assert.Empty(task.Payload);
        Assert.NotNull(task.Headers);
        Assert.Empty(task.Headers);
        Assert.Null(task.Tenant);
        Assert.Null(task.IdempotencyKey);
    }

    [Fact]
    public virtual async Task Task_ids_increase_in_enqueue_order()
    {
        var queue = Queue();
        var ids = new List<Guid>();
        for (var i = 0; i < 20; i++) ids.Add(await Enqueue(queue));

        Assert.Equal(ids.Order().ToList(), ids);
        Assert.Equal(20, ids.Distinct().Count());
    }

    [Fact]
    public virtual async Task Enqueue_copies_the_payload_so_later_changes_by_the_caller_do_not_leak_in()
    {
        var queue = Queue();
        var payload = Bytes("original");
        var result = await Store.EnqueueAsync(new EnqueueRequest(queue, payload), Ct);
        payload[0] = (byte)'X';

        var snapshot = await Store.GetAsync(result.TaskId, Ct);
        Assert.Equal(Bytes("original"), snapshot.Payload);
        snapshot.Payload[0] = (byte)'Y';
        Assert.Equal(Bytes("original"), (await Store.GetAsync(result.TaskId, Ct)).Payload);
    }

    [Fact]
    public virtual async Task Lease_carries_the_task_data_and_retry_policy()
    {
        var queue = Queue();
        var policy = new RetryPolicy { InitialDelay = TimeSpan.FromSeconds(3), MaxDelay = TimeSpan.FromMinutes(1), Multiplier = 1.5, Jitter = 0 };
        var result = await Store.EnqueueAsync(new EnqueueRequest(queue, Bytes("body"))
        {
            Priority = 2,
            MaxAttempts = 4,
            Tenant = "t1",
            Headers = new Dictionary<string, string> { ["h"] = "v" },
            RetryPolicy = policy,
        }, Ct);

        var lease = await LeaseOne(queue, workerId: "w-42");
        var task = await Store.GetAsync(result.TaskId, Ct);
        Assert.Equal(result.TaskId, lease.TaskId);
        Assert.Equal(queue, lease.Queue);
        Assert.Equal("w-42", lease.WorkerId);
        Assert.Equal(Bytes("body"), lease.Payload);
        Assert.Equal(2, lease.Priority);
        Assert.Equal(4, lease.MaxAttempts);
        Assert.Equal("t1", lease.Tenant);
        Assert.Equal("v", lease.Headers["h"]);
        Assert.Equal(policy, lease.RetryPolicy);
        AssertSameTime(task.EnqueuedAt, lease.EnqueuedAt, "EnqueuedAt");
        AssertSameTime(task.RunAt, lease.RunAt, "RunAt");
    }

    [Fact]
    public virtual async Task Enqueue_many_stores_every_request_and_returns_results_in_request_order()
    {
        var queue = Queue();
        var requests = Enumerable.Range(0, 25).Select(i => new EnqueueRequest(queue, Bytes($"#{i}")) { Priority = i % 3 }).ToList();

        var results = await Store.EnqueueManyAsync(requests, Ct);

        Assert.Equal(25, results.Count);
        Assert.All(results, r => Assert.True(r.Created));
        Assert.Equal(25, results.Select(r => r.TaskId).Distinct().Count());
        for (var i = 0; i < results.Count; i++)
        {
            var task = await Store.GetAsync(results[i].TaskId, Ct);
            Assert.Equal(Bytes($"#{i}"), task.Payload);
            Assert.Equal(i % 3, task.Priority);
        }
        Assert.Equal(25, (await StatsOf(queue)).Pending);
    }

    [Fact]
    public virtual async Task Enqueue_many_stores_nothing_when_one_request_is_invalid()
    {
        var queue = Queue();
        var requests = new List<EnqueueRequest>
        {
            new(queue, Bytes("ok")) { IdempotencyKey = "first" },
            new(queue, Bytes("ok")),
            new(queue, Bytes("bad")) { MaxAttempts = 0 },
            new(queue, Bytes("ok")),
        };

        await AssertRejected<ArgumentException>(() => Store.EnqueueManyAsync(requests, Ct));

        Assert.Equal(0, (await StatsOf(queue)).Total);
        // The valid request's key was not taken by the rejected batch.
        Assert.True((await Store.EnqueueAsync(requests[0], Ct)).Created);
    }

    [Fact]
    public virtual async Task Enqueue_many_across_queues_stores_every_request()
    {
        var queues = new[] { Queue(), Queue(), Queue() };
        // One key in three queues: keys are per queue, so each of the three is a new task.
        var requests = Enumerable.Range(0, 12).Select(i => new EnqueueRequest(queues[i % 3], Bytes($"#{i}")) { IdempotencyKey = $"k{i % 4}" }).ToList();

        var results = await Store.EnqueueManyAsync(requests, Ct);

        Assert.All(results, r => Assert.True(r.Created));
        for (var i = 0; i < results.Count; i++) Assert.Equal(requests[i].Queue, (await Store.GetAsync(results[i].TaskId, Ct)).Queue);
        foreach (var queue in queues) Assert.Equal(4, (await StatsOf(queue)).Pending);
    }

    [Fact]
    public virtual async Task Enqueue_many_across_queues_is_never_seen_half_stored()
    {
        if (!Store.Capabilities.AtomicCrossQueueBatches)
            Assert.Skip($"{Store.Name} does not declare {nameof(StoreCapabilities.AtomicCrossQueueBatches)}");
        var (a, b) = (Queue(), Queue());
        var tenant = $"batch-{Guid.NewGuid():N}";
        const int Batches = 40;

        // One query reads both queues at once; a store that stored the batch queue by queue would show a torn batch.
        var writer = Task.Run(async () =>
        {
            for (var i = 0; i < Batches; i++)
                await Store.EnqueueManyAsync([new EnqueueRequest(a, Bytes("a")) { Tenant = tenant }, new EnqueueRequest(b, Bytes("b")) { Tenant = tenant }], Ct);
        }, Ct);
        var reads = 0;
        while (!writer.IsCompleted || reads == 0)
        {
            var items = (await Store.QueryAsync(new TaskQuery { Tenant = tenant }, new PageRequest(TaskValidation.MaxPageSize), Ct)).Items;
            Assert.Equal(items.Count(t => t.Queue == a), items.Count(t => t.Queue == b));
            reads++;
        }
        await writer;

        Assert.Equal(Batches, (await StatsOf(a)).Pending);
        Assert.Equal(Batches, (await StatsOf(b)).Pending);
    }
}
