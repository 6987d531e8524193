using Xunit;

#pragma warning disable CS1591 // Test methods: their names are the documentation.

namespace Konduit.Testing.Conformance;

/// <summary>Idempotency keys: unique per (queue, key) while the task record exists, whatever its state.</summary>
public abstract class IdempotencyConformance<TFixture>(TFixture fixture) : TaskStoreConformance<TFixture>(fixture)
    where TFixture : TaskStoreFixture
{
    [Fact]
    public virtual async Task Second_enqueue_with_the_same_key_returns_the_existing_id_and_changes_nothing()
    {
        var queue = Queue();
        var first = await Store.EnqueueAsync(new EnqueueRequest(queue, Bytes("first")) { IdempotencyKey = "order-42", Priority = 1 }, Ct);
        var second = await Store.EnqueueAsync(new EnqueueRequest(queue, Bytes("second")) { IdempotencyKey = "order-42", Priority = 9 }, Ct);

        Assert.True(first.Created);
        Assert.False(second.Created);
        Assert.Equal(first.TaskId, second.TaskId);
        var task = await Store.GetAsync(first.TaskId, Ct);
        Assert.Equal(Bytes("first"), task.Payload);
        Assert.Equal(1, task.Priority);
        Assert.Equal(1, (await StatsOf(queue)).Total);
    }

    [Fact]
    public virtual async Task The_same_key_in_two_queues_makes_two_tasks()
    {
        var (a, b) = (Queue(), Queue());
        var first = await Store.EnqueueAsync(new EnqueueRequest(a, Bytes("x")) { IdempotencyKey = "k" }, Ct);
        var second = await Store.EnqueueAsync(new EnqueueRequest(b, Bytes("x")) { IdempotencyKey = "k" }, Ct);

        Assert.True(first.Created);
        Assert.True(second.Created);
        Assert.NotEqual(first.TaskId, second.TaskId);
    }

    [Fact]
    public virtual async Task A_key_stays_taken_in_every_state_of_its_task()
    {
        var queue = Queue();
        // Pending last: a task is leased into its state only while no other task waits (EnqueueInState).
        foreach (var state in Enum.GetValues<TaskState>().OrderBy(s => s == TaskState.Pending))
        {
            var key = $"key-{state}";
            var id = await EnqueueInState(queue, state, key: key);
            var again = await Store.EnqueueAsync(new EnqueueRequest(queue, Bytes("again")) { IdempotencyKey = key }, Ct);

            Assert.False(again.Created, $"a {state} task's key must stay taken");
            Assert.Equal(id, again.TaskId);
            Assert.Equal(state, (await Store.GetAsync(id, Ct)).State);
        }
        Assert.Equal(5, (await StatsOf(queue)).Total);
    }

    [Fact]
    public virtual async Task Concurrent_enqueues_with_one_key_create_one_task()
    {
        var queue = Queue();
        var results = await Task.WhenAll(Enumerable.Range(0, 16).Select(i =>
            Task.Run(() => Store.EnqueueAsync(new EnqueueRequest(queue, Bytes($"{i}")) { IdempotencyKey = "race" }, Ct), Ct)));

        Assert.Single(results, r => r.Created);
        Assert.Single(results.Select(r => r.TaskId).Distinct());
        Assert.Equal(1, (await StatsOf(queue)).Total);
    }

    [Fact]
    public virtual async Task A_key_repeated_in_a_batch_yields_the_first_occurrence()
    {
        var queue = Queue();
        var results = await Store.EnqueueManyAsync(
        [
            new EnqueueRequest(queue, Bytes("a")) { IdempotencyKey = "dup" },
            new EnqueueRequest(queue, Bytes("b")),
            new EnqueueRequest(queue, Bytes("c")) { IdempotencyKey = "dup" },
        ], Ct);

        Assert.True(results[0].Created);
        Assert.True(results[1].Created);
        Assert.False(results[2].Created);
        Assert.Equal(results[0].TaskId, results[2].TaskId);
        Assert.Equal(Bytes("a"), (await Store.GetAsync(results[0].TaskId, Ct)).Payload);
        Assert.Equal(2, (await StatsOf(queue)).Total);
    }

    [Fact]
    public virtual async Task A_batch_returns_the_existing_id_for_a_key_already_stored()
    {
        var queue = Queue();
        var existing = await Enqueue(queue, key: "known");
        var results = await Store.EnqueueManyAsync(
        [
            new EnqueueRequest(queue, Bytes("new")) { IdempotencyKey = "fresh" },
            new EnqueueRequest(queue, Bytes("dup")) { IdempotencyKey = "known" },
        ], Ct);

        Assert.True(results[0].Created);
        Assert.False(results[1].Created);
        Assert.Equal(existing, results[1].TaskId);
        Assert.Equal(2, (await StatsOf(queue)).Total);
    }

    [Fact]
    public virtual async Task Tasks_without_a_key_are_never_deduplicated()
    {
        var queue = Queue();
        var a = await Store.EnqueueAsync(new EnqueueRequest(queue, Bytes("same")), Ct);
        var b = await Store.EnqueueAsync(new EnqueueRequest(queue, Bytes("same")), Ct);

        Assert.True(a.Created && b.Created);
        Assert.NotEqual(a.TaskId, b.TaskId);
    }
}
