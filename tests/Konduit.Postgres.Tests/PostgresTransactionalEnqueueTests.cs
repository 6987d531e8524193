using Xunit;

namespace Konduit.Postgres.Tests;

public sealed class PostgresTransactionalEnqueueTests(PostgresStoreFixture fixture) : IClassFixture<PostgresStoreFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Queue() => "pg." + Guid.NewGuid().ToString("N");

    [Fact]
    public async Task Transactional_enqueue_is_visible_only_after_commit()
    {
        var store = fixture.CreatePostgresStore();
        var queue = Queue();
        await using var connection = await fixture.DataSource.OpenConnectionAsync(Ct);
        await using var tx = await connection.BeginTransactionAsync(Ct);

        var result = await store.EnqueueAsync(new EnqueueRequest(queue, [1]) { IdempotencyKey = "k" }, tx, Ct);
        Assert.True(result.Created);
        // Other connections do not see the uncommitted task.
        await Assert.ThrowsAsync<TaskNotFoundException>(() => store.GetAsync(result.TaskId, Ct));
        Assert.Empty(await store.LeaseAsync(queue, "w", 10, TimeSpan.FromMinutes(1), Ct));

        await tx.CommitAsync(Ct);

        Assert.Equal(TaskState.Pending, (await store.GetAsync(result.TaskId, Ct)).State);
        var again = await store.EnqueueAsync(new EnqueueRequest(queue, [2]) { IdempotencyKey = "k" }, Ct);
        Assert.Equal(new EnqueueResult(result.TaskId, false), again);
    }

    [Fact]
    public async Task Transactional_enqueue_rolls_back_with_the_transaction_and_frees_the_key()
    {
        var store = fixture.CreatePostgresStore();
        var queue = Queue();
        Guid rolledBack;
        await using (var connection = await fixture.DataSource.OpenConnectionAsync(Ct))
        await using (var tx = await connection.BeginTransactionAsync(Ct))
        {
            var batch = await store.EnqueueManyAsync(
                [new EnqueueRequest(queue, [1]) { IdempotencyKey = "k" }, new EnqueueRequest(queue, [2])], tx, Ct);
            rolledBack = batch[0].TaskId;
            await tx.RollbackAsync(Ct);
        }

        await Assert.ThrowsAsync<TaskNotFoundException>(() => store.GetAsync(rolledBack, Ct));
        Assert.Equal(0L, await fixture.ScalarAsync<long>($"SELECT count(*) FROM \"{fixture.Schema}\".tasks WHERE queue = $1", queue));
        var fresh = await store.EnqueueAsync(new EnqueueRequest(queue, [3]) { IdempotencyKey = "k" }, Ct);
        Assert.True(fresh.Created);
        Assert.NotEqual(rolledBack, fresh.TaskId);
    }

    [Fact]
    public async Task Transactional_enqueue_rejects_a_finished_transaction()
    {
        var store = fixture.CreatePostgresStore();
        await using var connection = await fixture.DataSource.OpenConnectionAsync(Ct);
        var tx = await connection.BeginTransactionAsync(Ct);
        await tx.CommitAsync(Ct);
        var queue = Queue();
        // Npgsql refuses to bind a command to a finished transaction (InvalidOperationException); nothing is stored.
        await Assert.ThrowsAnyAsync<InvalidOperationException>(() => store.EnqueueAsync(new EnqueueRequest(queue, [1]), tx, Ct));
        Assert.Equal(0L, await fixture.ScalarAsync<long>($"SELECT count(*) FROM \"{fixture.Schema}\".tasks WHERE queue = $1", queue));
    }
}
