using Xunit;

#pragma warning disable CS1591 // Test methods: their names are the documentation.

namespace Konduit.Testing.Conformance;

/// <summary>Bulk cancel and redrive by filter (<see cref="ITaskStore.CancelManyAsync"/>, <see cref="ITaskStore.RedriveManyAsync"/>).</summary>
public abstract class BulkConformance<TFixture>(TFixture fixture) : TaskStoreConformance<TFixture>(fixture)
    where TFixture : TaskStoreFixture
{
    [Fact]
    public virtual async Task Redrive_many_redrives_the_newest_matching_failed_and_canceled_tasks_up_to_max_count()
    {
        var queue = Queue();
        var (tenant, other) = ($"x-{Guid.NewGuid():N}", $"y-{Guid.NewGuid():N}");
        // Pending last: a task is leased into its state only while no other task waits (EnqueueInState).
        var failed1 = await EnqueueInState(queue, TaskState.Failed, tenant: tenant);
        var failed2 = await EnqueueInState(queue, TaskState.Failed, tenant: tenant);
        var otherTenant = await EnqueueInState(queue, TaskState.Failed, tenant: other);
        var succeeded = await EnqueueInState(queue, TaskState.Succeeded, tenant: tenant);
        var failed3 = await EnqueueInState(queue, TaskState.Failed, tenant: tenant);
        var canceled = await EnqueueInState(queue, TaskState.Canceled, tenant: tenant);
        var pending = await EnqueueInState(queue, TaskState.Pending, tenant: tenant);

        var first = await Store.RedriveManyAsync(new TaskQuery { Tenant = tenant }, 3, Ct);
        var second = await Store.RedriveManyAsync(new TaskQuery { Tenant = tenant }, 3, Ct);
        var third = await Store.RedriveManyAsync(new TaskQuery { Tenant = tenant }, 3, Ct);

        Assert.Equal([canceled, failed3, failed2], first.Order().Reverse());
        Assert.Equal([failed1], second);
        Assert.Empty(third);
        foreach (var id in new[] { failed1, failed2, failed3, canceled })
        {
            var task = await Store.GetAsync(id, Ct);
            Assert.Equal((TaskState.Pending, 0), (task.State, task.Attempts));
            Assert.Null(task.FinishedAt);
        }
        Assert.Equal("setup failure", Assert.Single((await Store.GetAsync(failed1, Ct)).Errors).Message);
        Assert.Equal(TaskState.Failed, (await Store.GetAsync(otherTenant, Ct)).State);
        Assert.Equal(TaskState.Succeeded, (await Store.GetAsync(succeeded, Ct)).State);
        Assert.Equal(TaskState.Pending, (await Store.GetAsync(pending, Ct)).State);
        Assert.Equal(5, (await StatsOf(queue)).PendingDue);
        // Redriven tasks are leasable at once.
        var leased = await Store.LeaseAsync(queue, "w", 10, LongLease, Ct);
        Assert.Equal(new[] { failed1, failed2, failed3, canceled, pending }.Order(), leased.Select(l => l.TaskId).Order());
    }

    [Fact]
    public virtual async Task Redrive_many_retries_the_failed_tasks_of_a_tenant_that_finished_in_the_last_24_hours()
    {
        var (queue, elsewhere) = (Queue(), Queue());
        var tenant = $"x-{Guid.NewGuid():N}";
        var failed = await EnqueueInState(queue, TaskState.Failed, tenant: tenant);
        var failedElsewhere = await EnqueueInState(elsewhere, TaskState.Failed, tenant: tenant);
        var canceled = await EnqueueInState(queue, TaskState.Canceled, tenant: tenant);

        var none = await Store.RedriveManyAsync(new TaskQuery { Tenant = tenant, States = [TaskState.Failed], FinishedTo = DateTimeOffset.UtcNow.AddDays(-1) }, 100, Ct);
        var redriven = await Store.RedriveManyAsync(new TaskQuery { Tenant = tenant, States = [TaskState.Failed], FinishedFrom = DateTimeOffset.UtcNow.AddDays(-1) }, 100, Ct);

        Assert.Empty(none);
        Assert.Equal(new[] { failed, failedElsewhere }.Order(), redriven.Order());
        Assert.Equal(TaskState.Canceled, (await Store.GetAsync(canceled, Ct)).State);
    }

    [Fact]
    public virtual async Task Cancel_many_cancels_the_matching_pending_and_running_tasks_and_fences_running_holders()
    {
        var (queue, other) = (Queue(), Queue());
        // Pending last: a task is leased into its state only while no other task waits (EnqueueInState).
        var lease = await EnqueueAndLease(queue);
        var running = lease.TaskId;
        var failed = await EnqueueInState(queue, TaskState.Failed);
        var scheduled = await Enqueue(queue, runAt: DateTimeOffset.UtcNow.AddDays(1));
        var pending = await EnqueueInState(queue, TaskState.Pending);
        var untouched = await EnqueueInState(other, TaskState.Pending);

        var canceled = await Store.CancelManyAsync(new TaskQuery { Queue = queue }, 10, Ct);

        Assert.Equal(new[] { running, scheduled, pending }.Order(), canceled.Order());
        foreach (var id in canceled)
        {
            var task = await Store.GetAsync(id, Ct);
            Assert.Equal(TaskState.Canceled, task.State);
            Assert.NotNull(task.FinishedAt);
            Assert.Null(task.LeaseExpiresAt);
        }
        await AssertLeaseLost(() => Store.CompleteAsync(lease, null, Ct), lease, TaskState.Canceled);
        Assert.Equal(TaskState.Failed, (await Store.GetAsync(failed, Ct)).State);
        Assert.Equal(TaskState.Pending, (await Store.GetAsync(untouched, Ct)).State);
        var stats = await StatsOf(queue);
        Assert.Equal((0L, 0L, 3L, 1L), (stats.Pending, stats.Running, stats.Canceled, stats.Failed));
        Assert.Empty(await Store.CancelManyAsync(new TaskQuery { Queue = queue }, 10, Ct));
    }

    [Fact]
    public virtual async Task Bulk_calls_act_only_on_the_eligible_states_the_filter_names()
    {
        var queue = Queue();
        // Pending last: a task is leased into its state only while no other task waits (EnqueueInState).
        var running = await EnqueueInState(queue, TaskState.Running);
        var succeeded = await EnqueueInState(queue, TaskState.Succeeded);
        var failed = await EnqueueInState(queue, TaskState.Failed);
        var pending = await EnqueueInState(queue, TaskState.Pending);

        Assert.Empty(await Store.RedriveManyAsync(new TaskQuery { Queue = queue, States = [TaskState.Succeeded, TaskState.Running] }, 10, Ct));
        Assert.Empty(await Store.CancelManyAsync(new TaskQuery { Queue = queue, States = [TaskState.Failed, TaskState.Succeeded] }, 10, Ct));
        Assert.Equal([pending], await Store.CancelManyAsync(new TaskQuery { Queue = queue, States = [TaskState.Pending, TaskState.Failed] }, 10, Ct));
        Assert.Equal([failed], await Store.RedriveManyAsync(new TaskQuery { Queue = queue, States = [TaskState.Failed] }, 10, Ct));

        Assert.Equal(TaskState.Running, (await Store.GetAsync(running, Ct)).State);
        Assert.Equal(TaskState.Succeeded, (await Store.GetAsync(succeeded, Ct)).State);
        Assert.Equal(TaskState.Pending, (await Store.GetAsync(failed, Ct)).State);
        Assert.Equal(TaskState.Canceled, (await Store.GetAsync(pending, Ct)).State);
    }

    [Fact]
    public virtual async Task Bulk_calls_reject_bad_arguments_and_change_nothing()
    {
        var queue = Queue();
        await EnqueueInState(queue, TaskState.Failed);
        await EnqueueInState(queue, TaskState.Pending);
        var now = DateTimeOffset.UtcNow;
        var all = new TaskQuery { Queue = queue };

        foreach (var bulk in new Func<TaskQuery, int, Task<IReadOnlyList<Guid>>>[] { (f, n) => Store.CancelManyAsync(f, n, Ct), (f, n) => Store.RedriveManyAsync(f, n, Ct) })
        {
            await AssertRejected<ArgumentNullException>(() => bulk(null!, 10), "filter");
            await AssertRejected<ArgumentOutOfRangeException>(() => bulk(all, 0), "maxCount");
            await AssertRejected<ArgumentOutOfRangeException>(() => bulk(all, -1), "maxCount");
            await AssertRejected<ArgumentOutOfRangeException>(() => bulk(all, TaskValidation.MaxBulkCount + 1), "maxCount");
            await AssertRejected<ArgumentException>(() => bulk(new TaskQuery { Queue = "bad queue" }, 10), nameof(TaskQuery.Queue));
            await AssertRejected<ArgumentException>(() => bulk(new TaskQuery { Tenant = "a\0b" }, 10), nameof(TaskQuery.Tenant));
            await AssertRejected<ArgumentException>(() => bulk(new TaskQuery { FinishedFrom = now, FinishedTo = now.AddSeconds(-1) }, 10), "filter");
            await AssertRejected<ArgumentException>(() => bulk(new TaskQuery { EnqueuedFrom = now, EnqueuedTo = now.AddSeconds(-1) }, 10), "filter");
        }
    }
}
