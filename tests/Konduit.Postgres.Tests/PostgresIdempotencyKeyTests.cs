using Xunit;

namespace Konduit.Postgres.Tests;

public sealed class PostgresIdempotencyKeyTests(PostgresStoreFixture fixture) : IClassFixture<PostgresStoreFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Queue() => "pg." + Guid.NewGuid().ToString("N");

    [Fact]
    public async Task Fifty_concurrent_enqueues_with_one_key_store_one_task_and_one_key_row()
    {
        var queue = Queue();
        // Several store instances, as on several nodes, all racing at once.
        var stores = Enumerable.Range(0, 5).Select(_ => fixture.CreatePostgresStore()).ToArray();
        using var start = new ManualResetEventSlim();
        var racers = Enumerable.Range(0, 50).Select(i => Task.Run(async () =>
        {
            start.Wait(Ct);
            return await stores[i % stores.Length].EnqueueAsync(
                new EnqueueRequest(queue, [(byte)i]) { IdempotencyKey = "the-key" }, Ct);
        }, Ct)).ToArray();
        start.Set();
        var results = await Task.WhenAll(racers);

        Assert.Single(results, r => r.Created);
        Assert.Single(results.Select(r => r.TaskId).Distinct());
        Assert.Equal(1L, await fixture.ScalarAsync<long>($"SELECT count(*) FROM \"{fixture.Schema}\".tasks WHERE queue = $1", queue));
        Assert.Equal(1L, await fixture.ScalarAsync<long>($"SELECT count(*) FROM \"{fixture.Schema}\".task_keys WHERE queue = $1", queue));
        Assert.Equal(results[0].TaskId, await fixture.ScalarAsync<Guid>(
            $"SELECT task_id FROM \"{fixture.Schema}\".task_keys WHERE queue = $1 AND idempotency_key = 'the-key'", queue));
    }

    [Fact]
    public async Task Purge_frees_the_idempotency_key_row()
    {
        var store = fixture.CreatePostgresStore();
        var queue = Queue();
        var first = await store.EnqueueAsync(new EnqueueRequest(queue, [1]) { IdempotencyKey = "k" }, Ct);
        Assert.True(await store.CancelAsync(first.TaskId, Ct));

        Assert.Single(await store.PurgeAsync(TimeSpan.Zero, queue: queue, cancellationToken: Ct));

        Assert.Equal(0L, await fixture.ScalarAsync<long>($"SELECT count(*) FROM \"{fixture.Schema}\".task_keys WHERE queue = $1", queue));
        var second = await store.EnqueueAsync(new EnqueueRequest(queue, [2]) { IdempotencyKey = "k" }, Ct);
        Assert.True(second.Created);
    }

    // Issue 13 item 7: a key whose task row was deleted by another route than PurgeAsync (a manual DELETE, a
    // dropped partition) is free: the next enqueue with it creates a task instead of naming the vanished one.

    private async Task DeleteTaskRowOnlyAsync(Guid taskId) =>
        await fixture.ScalarAsync<object>($"DELETE FROM \"{fixture.Schema}\".tasks WHERE id = $1", taskId);

    [Fact]
    public async Task Enqueue_with_a_key_whose_task_row_is_gone_creates_a_new_task()
    {
        var store = fixture.CreatePostgresStore();
        var queue = Queue();
        var first = await store.EnqueueAsync(new EnqueueRequest(queue, [1]) { IdempotencyKey = "k" }, Ct);
        await DeleteTaskRowOnlyAsync(first.TaskId);

        var second = await store.EnqueueAsync(new EnqueueRequest(queue, [2]) { IdempotencyKey = "k" }, Ct);

        Assert.True(second.Created);
        Assert.NotEqual(first.TaskId, second.TaskId);
        Assert.Equal([2], (await store.GetAsync(second.TaskId, Ct)).Payload);
        // The key now names the new task, and it is taken again.
        Assert.Equal(second.TaskId, await fixture.ScalarAsync<Guid>(
            $"SELECT task_id FROM \"{fixture.Schema}\".task_keys WHERE queue = $1 AND idempotency_key = 'k'", queue));
        Assert.Equal(new EnqueueResult(second.TaskId, false), await store.EnqueueAsync(new EnqueueRequest(queue, [3]) { IdempotencyKey = "k" }, Ct));
    }

    [Fact]
    public async Task EnqueueMany_with_keys_whose_task_rows_are_gone_creates_new_tasks_and_keeps_live_keys()
    {
        var store = fixture.CreatePostgresStore();
        var queue = Queue();
        var gone = await store.EnqueueAsync(new EnqueueRequest(queue, [1]) { IdempotencyKey = "gone" }, Ct);
        var live = await store.EnqueueAsync(new EnqueueRequest(queue, [2]) { IdempotencyKey = "live" }, Ct);
        await DeleteTaskRowOnlyAsync(gone.TaskId);

        var results = await store.EnqueueManyAsync(
        [
            new EnqueueRequest(queue, [3]) { IdempotencyKey = "gone" },
            new EnqueueRequest(queue, [4]) { IdempotencyKey = "live" },
            new EnqueueRequest(queue, [5]) { IdempotencyKey = "gone" },
        ], Ct);

        Assert.True(results[0].Created);
        Assert.NotEqual(gone.TaskId, results[0].TaskId);
        Assert.Equal(new EnqueueResult(live.TaskId, false), results[1]);
        Assert.Equal(new EnqueueResult(results[0].TaskId, false), results[2]);
        Assert.Equal([3], (await store.GetAsync(results[0].TaskId, Ct)).Payload);
    }

    [Fact]
    public async Task Transactional_enqueue_with_a_key_whose_task_row_is_gone_creates_a_new_task()
    {
        var store = fixture.CreatePostgresStore();
        var queue = Queue();
        var first = await store.EnqueueAsync(new EnqueueRequest(queue, [1]) { IdempotencyKey = "k" }, Ct);
        await DeleteTaskRowOnlyAsync(first.TaskId);

        await using var connection = await fixture.DataSource.OpenConnectionAsync(Ct);
        await using var tx = await connection.BeginTransactionAsync(Ct);
        var second = await store.EnqueueAsync(new EnqueueRequest(queue, [2]) { IdempotencyKey = "k" }, tx, Ct);
        await tx.CommitAsync(Ct);

        Assert.True(second.Created);
        Assert.Equal(TaskState.Pending, (await store.GetAsync(second.TaskId, Ct)).State);
    }
}
