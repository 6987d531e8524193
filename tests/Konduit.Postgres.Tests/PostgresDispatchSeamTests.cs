using Xunit;

namespace Konduit.Postgres.Tests;

/// <summary>
/// The public seam a dispatcher in front of the store uses (issue 11 item 4): <see cref="PostgresTaskStore.LeaseByIdsAsync"/>
/// and <see cref="PostgresTaskStore.ReadDueIdsAsync"/>. The hybrid store depends on exactly these.
/// </summary>
public sealed class PostgresDispatchSeamTests(PostgresStoreFixture fixture) : IClassFixture<PostgresStoreFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Queue() => "seam." + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task LeaseByIds_takes_only_the_named_pending_due_tasks_of_the_queue_in_lease_order()
    {
        var store = fixture.CreatePostgresStore();
        var queue = Queue();
        var low = (await store.EnqueueAsync(new EnqueueRequest(queue, [1]), Ct)).TaskId;
        var high = (await store.EnqueueAsync(new EnqueueRequest(queue, [2]) { Priority = 5 }, Ct)).TaskId;
        var later = (await store.EnqueueAsync(new EnqueueRequest(queue, [3]) { RunAt = DateTimeOffset.UtcNow.AddHours(1) }, Ct)).TaskId;
        var elsewhere = (await store.EnqueueAsync(new EnqueueRequest(Queue(), [4]), Ct)).TaskId;
        var canceled = (await store.EnqueueAsync(new EnqueueRequest(queue, [5]), Ct)).TaskId;
        var unnamed = (await store.EnqueueAsync(new EnqueueRequest(queue, [6]), Ct)).TaskId;
        Assert.True(await store.CancelAsync(canceled, Ct));

        var leases = await store.LeaseByIdsAsync(queue, [low, later, elsewhere, canceled, Guid.NewGuid(), high, low], "w", TimeSpan.FromMinutes(1), Ct);

        Assert.Equal([high, low], leases.Select(l => l.TaskId));
        Assert.All(leases, l =>
        {
            Assert.Equal(1, l.Attempt);
            Assert.Equal(1, l.LeaseToken);
            Assert.Equal("w", l.WorkerId);
            Assert.Equal(queue, l.Queue);
        });
        Assert.Equal([2], leases[0].Payload);
        Assert.Equal(TaskState.Running, (await store.GetAsync(low, Ct)).State);
        Assert.Equal(TaskState.Pending, (await store.GetAsync(unnamed, Ct)).State);
        // Claimed ids are not claimed twice; the fenced lifecycle goes on as after LeaseAsync.
        Assert.Empty(await store.LeaseByIdsAsync(queue, [low, high], "other", TimeSpan.FromMinutes(1), Ct));
        await store.CompleteAsync(leases[0], null, Ct);
        Assert.Equal(TaskState.Succeeded, (await store.GetAsync(high, Ct)).State);
    }

    [Fact]
    public async Task LeaseByIds_checks_its_arguments()
    {
        var store = fixture.CreatePostgresStore();
        Assert.Empty(await store.LeaseByIdsAsync(Queue(), [], "w", TimeSpan.FromMinutes(1), Ct));
        await Assert.ThrowsAsync<ArgumentNullException>(() => store.LeaseByIdsAsync(Queue(), null!, "w", TimeSpan.FromMinutes(1), Ct));
        var tooMany = Enumerable.Range(0, TaskValidation.MaxLeaseCount + 1).Select(_ => Guid.NewGuid()).ToArray();
        var ex = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => store.LeaseByIdsAsync(Queue(), tooMany, "w", TimeSpan.FromMinutes(1), Ct));
        Assert.Equal("taskIds", ex.ParamName);
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.LeaseByIdsAsync(Queue(), [Guid.NewGuid()], "w", TimeSpan.Zero, Ct));
    }

    [Fact]
    public async Task ReadDueIds_lists_the_queue_pending_due_ids_in_lease_order_up_to_the_limit()
    {
        var store = fixture.CreatePostgresStore();
        var queue = Queue();
        var a = (await store.EnqueueAsync(new EnqueueRequest(queue, [1]), Ct)).TaskId;
        var b = (await store.EnqueueAsync(new EnqueueRequest(queue, [2]) { Priority = 3 }, Ct)).TaskId;
        var c = (await store.EnqueueAsync(new EnqueueRequest(queue, [3]), Ct)).TaskId;
        await store.EnqueueAsync(new EnqueueRequest(queue, [4]) { RunAt = DateTimeOffset.UtcNow.AddHours(1) }, Ct);
        await store.EnqueueAsync(new EnqueueRequest(Queue(), [5]), Ct);

        Assert.Equal([b, a, c], await store.ReadDueIdsAsync(queue, 10, Ct));
        Assert.Equal([b, a], await store.ReadDueIdsAsync(queue, 2, Ct));
        Assert.Single(await store.LeaseAsync(queue, "w", 1, TimeSpan.FromMinutes(1), Ct));
        Assert.Equal([a, c], await store.ReadDueIdsAsync(queue, 10, Ct));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => store.ReadDueIdsAsync(queue, 0, Ct));
    }
}
