using Xunit;

#pragma warning disable CS1591 // Test methods: their names are the documentation.

namespace Konduit.Testing.Conformance;

/// <summary>
/// Optional features, gated on <see cref="StoreCapabilities"/>: push wake-up and transactional enqueue. A store
/// that does not declare a feature gets a named skip for it; the ungated tests here apply to every store.
/// </summary>
public abstract class CapabilitiesConformance<TFixture>(TFixture fixture) : TaskStoreConformance<TFixture>(fixture)
    where TFixture : TaskStoreFixture
{
    /// <summary>Skips the test, by name, when the store does not declare push wake-up.</summary>
    protected void RequirePushWakeUp()
    {
        if (!Store.Capabilities.PushWakeUp)
            Assert.Skip($"{Store.Name} does not declare {nameof(StoreCapabilities.PushWakeUp)}");
    }

    /// <summary>Skips the test, by name, when the store does not declare transactional enqueue; returns the fixture's harness.</summary>
    protected ITransactionalEnqueueHarness RequireTransactionalEnqueue()
    {
        if (!Store.Capabilities.TransactionalEnqueue)
            Assert.Skip($"{Store.Name} does not declare {nameof(StoreCapabilities.TransactionalEnqueue)}");
        return Fixture.TransactionalEnqueue
            ?? throw new InvalidOperationException($"{Store.Name} declares {nameof(StoreCapabilities.TransactionalEnqueue)} but its fixture provides no {nameof(ITransactionalEnqueueHarness)}.");
    }

    [Fact]
    public virtual void Store_has_a_short_lowercase_name_and_capabilities()
    {
        Assert.Matches("^[a-z][a-z0-9]{0,31}$", Store.Name);
        Assert.NotNull(Store.Capabilities);
    }

    [Fact]
    public virtual async Task Wait_for_work_returns_false_when_nothing_arrives_before_the_timeout()
    {
        var queue = Queue();
        // Consume anything a store might have latched for a new queue, then wait on a quiet queue.
        await Store.WaitForWorkAsync(queue, TimeSpan.FromMilliseconds(10), Ct);

        Assert.False(await Store.WaitForWorkAsync(queue, TimeSpan.FromMilliseconds(200), Ct));
    }

    [Fact]
    public virtual async Task Wait_for_work_honours_cancellation()
    {
        var queue = Queue();
        await Store.WaitForWorkAsync(queue, TimeSpan.FromMilliseconds(10), Ct);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var wait = Store.WaitForWorkAsync(queue, TimeSpan.FromMinutes(5), cts.Token);

        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait);
    }

    [Fact]
    public virtual async Task Wait_for_work_is_woken_by_an_enqueue()
    {
        RequirePushWakeUp();
        var queue = Queue();
        await Store.WaitForWorkAsync(queue, TimeSpan.FromMilliseconds(10), Ct);
        var wait = Store.WaitForWorkAsync(queue, DefaultDeadline, Ct);

        await Enqueue(queue);

        Assert.True(await wait, "an enqueue must wake a waiter on its queue");
    }

    [Fact]
    public virtual async Task Wait_for_work_signal_is_latched_until_the_next_call()
    {
        RequirePushWakeUp();
        var queue = Queue();
        await Store.WaitForWorkAsync(queue, TimeSpan.FromMilliseconds(10), Ct);

        await Enqueue(queue);

        // Nobody was waiting when the task arrived; the next wait must still see the signal.
        Assert.True(await Store.WaitForWorkAsync(queue, DefaultDeadline, Ct));
    }

    [Fact]
    public virtual async Task Wait_for_work_is_woken_by_a_redrive()
    {
        RequirePushWakeUp();
        var queue = Queue();
        var id = await EnqueueInState(queue, TaskState.Canceled);
        // Drain the enqueue's signal (it may arrive asynchronously), then wait for the redrive's.
        await Store.WaitForWorkAsync(queue, TimeSpan.FromMilliseconds(50), Ct);
        var wait = Store.WaitForWorkAsync(queue, DefaultDeadline, Ct);

        await Store.RedriveAsync(id, Ct);

        Assert.True(await wait, "a redrive makes a task available and must wake a waiter");
    }

    [Fact]
    public virtual async Task Transactional_enqueue_is_visible_after_commit()
    {
        var harness = RequireTransactionalEnqueue();
        var queue = Queue();

        var result = await harness.EnqueueInTransactionAsync(Store, new EnqueueRequest(queue, Bytes("tx")), commit: true, Ct);

        Assert.True(result.Created);
        Assert.Equal(Bytes("tx"), (await Store.GetAsync(result.TaskId, Ct)).Payload);
        Assert.Equal(result.TaskId, (await LeaseOne(queue)).TaskId);
    }

    [Fact]
    public virtual async Task Transactional_enqueue_leaves_nothing_after_rollback()
    {
        var harness = RequireTransactionalEnqueue();
        var queue = Queue();

        var result = await harness.EnqueueInTransactionAsync(Store, new EnqueueRequest(queue, Bytes("tx")) { IdempotencyKey = "k" }, commit: false, Ct);

        await Assert.ThrowsAsync<TaskNotFoundException>(() => Store.GetAsync(result.TaskId, Ct));
        Assert.Empty(await Store.LeaseAsync(queue, "w", 10, LongLease, Ct));
        // The rolled-back task's key was never taken.
        Assert.True((await Store.EnqueueAsync(new EnqueueRequest(queue, Bytes("x")) { IdempotencyKey = "k" }, Ct)).Created);
    }
}
