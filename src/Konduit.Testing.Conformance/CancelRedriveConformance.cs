using Xunit;

#pragma warning disable CS1591 // Test methods: their names are the documentation.

namespace Konduit.Testing.Conformance;

/// <summary>Cancel (Pending or Running → Canceled) and redrive (Failed or Canceled → Pending).</summary>
public abstract class CancelRedriveConformance<TFixture>(TFixture fixture) : TaskStoreConformance<TFixture>(fixture)
    where TFixture : TaskStoreFixture
{
    [Fact]
    public virtual async Task Cancel_of_a_pending_task_makes_it_canceled_and_unleasable()
    {
        var queue = Queue();
        var id = await Enqueue(queue);
        var before = DateTimeOffset.UtcNow;

        Assert.True(await Store.CancelAsync(id, Ct));

        var task = await Store.GetAsync(id, Ct);
        Assert.Equal(TaskState.Canceled, task.State);
        AssertBetween(task.FinishedAt, before, DateTimeOffset.UtcNow, "FinishedAt");
        Assert.Empty(await Store.LeaseAsync(queue, "w", 10, LongLease, Ct));
        Assert.Equal(1, (await StatsOf(queue)).Canceled);
    }

    [Fact]
    public virtual async Task Cancel_of_a_running_task_fences_its_holder()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue);

        Assert.True(await Store.CancelAsync(lease.TaskId, Ct));

        await AssertLeaseLost(() => Store.HeartbeatAsync(lease, LongLease, Ct), lease, TaskState.Canceled);
        await AssertLeaseLost(() => Store.CompleteAsync(lease, null, Ct), lease, TaskState.Canceled);
        await AssertLeaseLost(() => Store.FailAsync(lease, "x", null, Ct), lease, TaskState.Canceled);
        var task = await Store.GetAsync(lease.TaskId, Ct);
        Assert.Equal(TaskState.Canceled, task.State);
        Assert.Null(task.LeaseExpiresAt);
        Assert.Empty(task.Errors);
    }

    [Fact]
    public virtual async Task Cancel_of_a_terminal_task_returns_false_and_changes_nothing()
    {
        var queue = Queue();
        foreach (var state in TaskStateExtensions.TerminalStates)
        {
            var id = await EnqueueInState(queue, state);
            var before = await Store.GetAsync(id, Ct);

            Assert.False(await Store.CancelAsync(id, Ct), $"cancel of a {state} task");

            var after = await Store.GetAsync(id, Ct);
            AssertUnchanged(before, after);
            Assert.Equal(before.UpdatedAt, after.UpdatedAt);
        }
    }

    [Fact]
    public virtual async Task Redrive_of_a_failed_task_resets_attempts_and_keeps_its_errors()
    {
        var queue = Queue();
        var lease = await EnqueueAndLease(queue, maxAttempts: 1);
        await Store.FailAsync(lease, "fatal", null, Ct);
        Assert.Equal(TaskState.Failed, (await Store.GetAsync(lease.TaskId, Ct)).State);

        await Store.RedriveAsync(lease.TaskId, Ct);

        var task = await Store.GetAsync(lease.TaskId, Ct);
        Assert.Equal(TaskState.Pending, task.State);
        Assert.Equal(0, task.Attempts);
        Assert.Null(task.FinishedAt);
        Assert.Equal("fatal", Assert.Single(task.Errors).Message);
        var again = await LeaseOne(queue);
        Assert.Equal(1, again.Attempt);
        Assert.True(again.LeaseToken > lease.LeaseToken);
        // A full set of attempts again: with MaxAttempts 1 this failure dead-letters once more.
        Assert.Equal(TaskState.Failed, (await Store.FailAsync(again, "fatal again", null, Ct)).State);
        Assert.Equal(2, (await Store.GetAsync(lease.TaskId, Ct)).Errors.Count);
    }

    [Fact]
    public virtual async Task Redrive_of_a_canceled_task_makes_it_due_now()
    {
        var queue = Queue();
        var id = await Enqueue(queue, runAt: DateTimeOffset.UtcNow.AddDays(1));
        await Store.CancelAsync(id, Ct);
        var before = DateTimeOffset.UtcNow;

        await Store.RedriveAsync(id, Ct);

        var task = await Store.GetAsync(id, Ct);
        Assert.Equal(TaskState.Pending, task.State);
        AssertBetween(task.RunAt, before, DateTimeOffset.UtcNow, "a redriven task is due now");
        Assert.Equal(id, (await LeaseOne(queue)).TaskId);
    }

    [Fact]
    public virtual async Task Redrive_is_refused_from_pending_running_and_succeeded()
    {
        var queue = Queue();
        // Pending last: a task is leased into its state only while no other task waits (EnqueueInState).
        foreach (var state in new[] { TaskState.Running, TaskState.Succeeded, TaskState.Pending })
        {
            var id = await EnqueueInState(queue, state);
            var before = await Store.GetAsync(id, Ct);

            var ex = await Assert.ThrowsAsync<InvalidTaskStateException>(() => Store.RedriveAsync(id, Ct));

            Assert.Equal(id, ex.TaskId);
            Assert.Equal(state, ex.CurrentState);
            AssertUnchanged(before, await Store.GetAsync(id, Ct));
        }
    }

    [Fact]
    public virtual async Task A_holder_from_before_a_redrive_stays_fenced()
    {
        var queue = Queue();
        var old = await EnqueueAndLease(queue);
        await Store.CancelAsync(old.TaskId, Ct);
        await Store.RedriveAsync(old.TaskId, Ct);
        var current = await LeaseOne(queue);

        await AssertLeaseLost(() => Store.CompleteAsync(old, null, Ct), old, TaskState.Running);
        await Store.CompleteAsync(current, null, Ct);
        Assert.Equal(TaskState.Succeeded, (await Store.GetAsync(old.TaskId, Ct)).State);
    }
}
