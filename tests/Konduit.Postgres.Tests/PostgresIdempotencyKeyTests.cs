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
}
