using Xunit;

#pragma warning disable CS1591 // Test methods: their names are the documentation.

namespace Konduit.Testing.Conformance;

/// <summary>Get, query (filters and keyset paging) and per-queue stats.</summary>
public abstract class QueryConformance<TFixture>(TFixture fixture) : TaskStoreConformance<TFixture>(fixture)
    where TFixture : TaskStoreFixture
{
    private async Task<List<Guid>> QueryAll(TaskQuery filter, int pageSize)
    {
        var all = new List<Guid>();
        Guid? cursor = null;
        for (var pages = 0; ; pages++)
        {
            Assert.True(pages < 1000, "paging must end");
            var page = await Store.QueryAsync(filter, new PageRequest(pageSize, cursor), Ct);
            Assert.True(page.Items.Count <= pageSize);
            all.AddRange(page.Items.Select(t => t.Id));
            if (page.NextCursor is null) return all;
            Assert.Equal(page.Items[^1].Id, page.NextCursor);
            cursor = page.NextCursor;
        }
    }

    [Fact]
    public virtual async Task Query_returns_tasks_newest_first()
    {
        var queue = Queue();
        var ids = new List<Guid>();
        for (var i = 0; i < 5; i++) ids.Add(await Enqueue(queue));

        var page = await Store.QueryAsync(new TaskQuery { Queue = queue }, null, Ct);

        Assert.Equal(Enumerable.Reverse(ids), page.Items.Select(t => t.Id));
        Assert.Null(page.NextCursor);
    }

    [Fact]
    public virtual async Task Query_pages_by_keyset_without_duplicates_or_gaps()
    {
        var queue = Queue();
        var results = await Store.EnqueueManyAsync(Enumerable.Range(0, 23).Select(i => new EnqueueRequest(queue, Bytes($"{i}"))).ToList(), Ct);

        var paged = await QueryAll(new TaskQuery { Queue = queue }, 5);

        Assert.Equal(results.Select(r => r.TaskId).Reverse(), paged);
        // A last page that is exactly full still ends the paging: no empty extra page.
        var exact = await Store.QueryAsync(new TaskQuery { Queue = queue }, new PageRequest(3, paged[^4]), Ct);
        Assert.Equal(paged[^3..], exact.Items.Select(t => t.Id));
        Assert.Null(exact.NextCursor);
    }

    [Fact]
    public virtual async Task Query_paging_stays_consistent_when_newer_tasks_arrive_between_pages()
    {
        var queue = Queue();
        var older = new List<Guid>();
        for (var i = 0; i < 6; i++) older.Add(await Enqueue(queue));

        var first = await Store.QueryAsync(new TaskQuery { Queue = queue }, new PageRequest(3), Ct);
        await Enqueue(queue);
        var second = await Store.QueryAsync(new TaskQuery { Queue = queue }, new PageRequest(3, first.NextCursor), Ct);

        Assert.Equal(Enumerable.Reverse(older), first.Items.Concat(second.Items).Select(t => t.Id));
    }

    [Fact]
    public virtual async Task Query_filters_by_queue_and_state()
    {
        var (queue, other) = (Queue(), Queue());
        // Pending last: a task is leased into its state only while no other task waits (EnqueueInState).
        var running = await EnqueueInState(queue, TaskState.Running);
        var failed = await EnqueueInState(queue, TaskState.Failed);
        var canceled = await EnqueueInState(queue, TaskState.Canceled);
        var pending = await EnqueueInState(queue, TaskState.Pending);
        await EnqueueInState(other, TaskState.Failed);

        var page = await Store.QueryAsync(new TaskQuery { Queue = queue, States = [TaskState.Failed, TaskState.Canceled] }, null, Ct);
        var any = await Store.QueryAsync(new TaskQuery { Queue = queue, States = [] }, null, Ct);

        Assert.Equal([canceled, failed], page.Items.Select(t => t.Id));
        Assert.Equal([pending, canceled, failed, running], any.Items.Select(t => t.Id));
    }

    [Fact]
    public virtual async Task Query_finds_all_failed_tasks_of_a_tenant_in_the_last_24_hours()
    {
        var queue = Queue();
        var (tenant, otherTenant) = ($"x-{Guid.NewGuid():N}", $"y-{Guid.NewGuid():N}");
        var failed1 = await EnqueueInState(queue, TaskState.Failed, tenant: tenant);
        await EnqueueInState(queue, TaskState.Succeeded, tenant: tenant);
        await EnqueueInState(queue, TaskState.Failed, tenant: otherTenant);
        await EnqueueInState(queue, TaskState.Pending, tenant: tenant);
        await EnqueueInState(Queue(), TaskState.Failed);
        var failed2 = await EnqueueInState(Queue(), TaskState.Failed, tenant: tenant);

        var now = DateTimeOffset.UtcNow;
        var lastDay = await Store.QueryAsync(new TaskQuery { Tenant = tenant, States = [TaskState.Failed], EnqueuedFrom = now.AddDays(-1) }, null, Ct);
        var future = await Store.QueryAsync(new TaskQuery { Tenant = tenant, States = [TaskState.Failed], EnqueuedFrom = now.AddHours(1) }, null, Ct);
        var past = await Store.QueryAsync(new TaskQuery { Tenant = tenant, EnqueuedTo = now.AddDays(-1) }, null, Ct);

        Assert.Equal([failed2, failed1], lastDay.Items.Select(t => t.Id));
        Assert.All(lastDay.Items, t => Assert.Equal(tenant, t.Tenant));
        Assert.Empty(future.Items);
        Assert.Empty(past.Items);
    }

    [Fact]
    public virtual async Task Created_from_is_inclusive_and_created_to_is_exclusive()
    {
        var queue = Queue();
        var id = await Enqueue(queue);
        var created = (await Store.GetAsync(id, Ct)).EnqueuedAt;

        var from = await Store.QueryAsync(new TaskQuery { Queue = queue, EnqueuedFrom = created }, null, Ct);
        var to = await Store.QueryAsync(new TaskQuery { Queue = queue, EnqueuedTo = created }, null, Ct);
        var window = await Store.QueryAsync(new TaskQuery { Queue = queue, EnqueuedFrom = created, EnqueuedTo = created.AddTicks(10) }, null, Ct);

        Assert.Equal(id, Assert.Single(from.Items).Id);
        Assert.Empty(to.Items);
        Assert.Equal(id, Assert.Single(window.Items).Id);
    }

    [Fact]
    public virtual async Task Query_by_finish_time_finds_the_failed_tasks_of_a_tenant_in_the_last_24_hours()
    {
        var queue = Queue();
        var (tenant, otherTenant) = ($"x-{Guid.NewGuid():N}", $"y-{Guid.NewGuid():N}");
        var failed1 = await EnqueueInState(queue, TaskState.Failed, tenant: tenant);
        await EnqueueInState(queue, TaskState.Succeeded, tenant: tenant);
        await EnqueueInState(queue, TaskState.Failed, tenant: otherTenant);
        var redriven = await EnqueueInState(queue, TaskState.Failed, tenant: tenant);
        await Store.RedriveAsync(redriven, Ct);
        var failed2 = await EnqueueInState(Queue(), TaskState.Failed, tenant: tenant);
        await EnqueueInState(queue, TaskState.Pending, tenant: tenant);

        var now = DateTimeOffset.UtcNow;
        var lastDay = await Store.QueryAsync(new TaskQuery { Tenant = tenant, States = [TaskState.Failed], FinishedFrom = now.AddDays(-1) }, null, Ct);
        var anyState = await Store.QueryAsync(new TaskQuery { Tenant = tenant, FinishedFrom = now.AddDays(-1), FinishedTo = now.AddDays(1) }, null, Ct);
        var future = await Store.QueryAsync(new TaskQuery { Tenant = tenant, FinishedFrom = now.AddHours(1) }, null, Ct);
        var past = await Store.QueryAsync(new TaskQuery { Tenant = tenant, FinishedTo = now.AddDays(-1) }, null, Ct);

        // A redriven task is no longer finished: its finish time is gone with its terminal state.
        Assert.Equal([failed2, failed1], lastDay.Items.Select(t => t.Id));
        Assert.Equal(3, anyState.Items.Count);
        Assert.All(anyState.Items, t => Assert.True(t.State.IsTerminal() && t.Tenant == tenant, $"{t.Id} is {t.State} of {t.Tenant}"));
        Assert.DoesNotContain(redriven, anyState.Items.Select(t => t.Id));
        Assert.Empty(future.Items);
        Assert.Empty(past.Items);
    }

    [Fact]
    public virtual async Task Finished_from_is_inclusive_and_finished_to_is_exclusive()
    {
        var queue = Queue();
        var id = await EnqueueInState(queue, TaskState.Succeeded);
        var finished = (await Store.GetAsync(id, Ct)).FinishedAt!.Value;

        var from = await Store.QueryAsync(new TaskQuery { Queue = queue, FinishedFrom = finished }, null, Ct);
        var to = await Store.QueryAsync(new TaskQuery { Queue = queue, FinishedTo = finished }, null, Ct);
        var window = await Store.QueryAsync(new TaskQuery { Queue = queue, FinishedFrom = finished, FinishedTo = finished.AddTicks(10) }, null, Ct);

        Assert.Equal(id, Assert.Single(from.Items).Id);
        Assert.Empty(to.Items);
        Assert.Equal(id, Assert.Single(window.Items).Id);
    }

    [Fact]
    public virtual async Task A_finish_time_bound_never_matches_a_task_that_has_not_finished()
    {
        var queue = Queue();
        // Pending last: a task is leased into its state only while no other task waits (EnqueueInState).
        var running = await EnqueueInState(queue, TaskState.Running);
        var canceled = await EnqueueInState(queue, TaskState.Canceled);
        var pending = await EnqueueInState(queue, TaskState.Pending);

        var everFinished = await QueryAll(new TaskQuery { Queue = queue, FinishedFrom = DateTimeOffset.UnixEpoch }, 1);
        var finishedBeforeEnd = await Store.QueryAsync(
            new TaskQuery { Queue = queue, States = [TaskState.Pending, TaskState.Running, TaskState.Canceled], FinishedTo = TaskValidation.MaxRunAt }, null, Ct);

        Assert.Equal([canceled], everFinished);
        Assert.Equal([canceled], finishedBeforeEnd.Items.Select(t => t.Id));
        Assert.Equal([pending, canceled, running], (await Store.QueryAsync(new TaskQuery { Queue = queue }, null, Ct)).Items.Select(t => t.Id));
    }

    [Fact]
    public virtual async Task Stats_count_tasks_by_state_for_each_queue()
    {
        var (a, b) = (Queue(), Queue());
        foreach (var state in Enum.GetValues<TaskState>().OrderBy(s => s == TaskState.Pending)) await EnqueueInState(a, state);
        await EnqueueInState(a, TaskState.Pending);
        await EnqueueInState(b, TaskState.Succeeded);

        var stats = await Store.GetStatsAsync(Ct);

        var statsA = Assert.Single(stats, s => s.Queue == a);
        Assert.NotNull(statsA.OldestDueAt);
        Assert.Equal(new QueueStats(a, Pending: 2, Running: 1, Succeeded: 1, Failed: 1, Canceled: 1) { PendingDue = 2, OldestDueAt = statsA.OldestDueAt }, statsA);
        Assert.Equal(new QueueStats(b, 0, 0, 1, 0, 0), Assert.Single(stats, s => s.Queue == b));
        Assert.Equal(6, stats.Single(s => s.Queue == a).Total);
    }

    [Fact]
    public virtual async Task Stats_split_pending_into_due_and_scheduled_and_give_the_oldest_due_run_at()
    {
        var queue = Queue();
        // Pending last: a task is leased into its state only while no other task waits (EnqueueInState).
        await EnqueueInState(queue, TaskState.Succeeded);
        var first = await Enqueue(queue);
        var second = await Enqueue(queue);
        await Enqueue(queue, runAt: DateTimeOffset.UtcNow.AddDays(1));
        await Enqueue(queue, runAt: DateTimeOffset.UtcNow.AddDays(2), priority: 5);

        var stats = await StatsOf(queue);

        Assert.Equal((4L, 2L, 2L), (stats.Pending, stats.PendingDue, stats.PendingScheduled));
        AssertSameTime((await Store.GetAsync(first, Ct)).RunAt, stats.OldestDueAt, "the oldest due task's run-at");

        // The head gone, the next due task is the oldest.
        await Store.CancelAsync(first, Ct);
        var after = await StatsOf(queue);
        Assert.Equal((3L, 1L, 2L), (after.Pending, after.PendingDue, after.PendingScheduled));
        AssertSameTime((await Store.GetAsync(second, Ct)).RunAt, after.OldestDueAt, "the oldest due task's run-at");

        // Nothing due: no oldest due time, and the scheduled tasks still count.
        await Store.CancelAsync(second, Ct);
        var scheduledOnly = await StatsOf(queue);
        Assert.Equal((2L, 0L, 2L), (scheduledOnly.Pending, scheduledOnly.PendingDue, scheduledOnly.PendingScheduled));
        Assert.Null(scheduledOnly.OldestDueAt);
    }

    [Fact]
    public virtual async Task A_scheduled_task_counts_as_due_once_its_run_at_has_passed()
    {
        var queue = Queue();
        var runAt = DateTimeOffset.UtcNow.AddMilliseconds(400);
        await Enqueue(queue, runAt: runAt);
        var before = await StatsOf(queue);
        Assert.Equal((1L, 0L, 1L), (before.Pending, before.PendingDue, before.PendingScheduled));

        // Nothing leases or sweeps the queue meanwhile: the store's clock alone makes the task due.
        await Eventually(async () => (await StatsOf(queue)).PendingDue == 1, DefaultDeadline, "the task became due");

        var due = await StatsOf(queue);
        Assert.Equal((1L, 1L, 0L), (due.Pending, due.PendingDue, due.PendingScheduled));
        AssertSameTime(runAt, due.OldestDueAt, "the oldest due task's run-at");
    }

    [Fact]
    public virtual async Task Stats_give_the_earliest_run_at_among_due_tasks_as_the_oldest()
    {
        if (!Store.Capabilities.OrdersByRunAt)
            Assert.Skip($"{Store.Name} does not declare {nameof(StoreCapabilities.OrdersByRunAt)}: due tasks wait in the order they became due");
        var queue = Queue();
        await Enqueue(queue);
        var backdated = DateTimeOffset.UtcNow.AddHours(-1);
        await Enqueue(queue, runAt: backdated);

        AssertSameTime(backdated, (await StatsOf(queue)).OldestDueAt, "the backdated task's run-at");
    }

    [Fact]
    public virtual async Task Stats_list_queues_in_ordinal_name_order_and_omit_empty_ones()
    {
        var suffix = Guid.NewGuid().ToString("N");
        await Enqueue($"b-{suffix}");
        await Enqueue($"B-{suffix}");
        await Enqueue($"a-{suffix}");

        var names = (await Store.GetStatsAsync(Ct)).Select(s => s.Queue).ToList();

        Assert.Equal(names.Order(StringComparer.Ordinal), names);
        Assert.Equal([$"B-{suffix}", $"a-{suffix}", $"b-{suffix}"], names.Where(n => n.EndsWith(suffix, StringComparison.Ordinal)));
        Assert.DoesNotContain(names, n => n == $"never-{suffix}");
        Assert.All(await Store.GetStatsAsync(Ct), s => Assert.True(s.Total > 0));
    }

    [Fact]
    public virtual async Task Query_by_tenant_never_returns_another_tenants_task()
    {
        var queues = new[] { Queue(), Queue() };
        var tenant = $"tenant-{Guid.NewGuid():N}";
        // Tenants a sloppy filter would confuse with it: case, prefix, suffixes, trailing space, LIKE wildcards, a
        // character outside the basic plane; and tasks without a tenant.
        string?[] tenants = [tenant, tenant.ToUpperInvariant(), tenant[..^1], tenant + "x", tenant + " ", tenant + "%", tenant.Replace('-', '_'), tenant + "😀", null];
        TaskState[] states = [TaskState.Pending, TaskState.Running, TaskState.Succeeded, TaskState.Failed, TaskState.Canceled];
        var expected = new List<(Guid Id, string Queue, string? Tenant, TaskState State)>();
        var plan = queues.SelectMany(q => tenants.Select(t => (Queue: q, Tenant: t))).Select((p, n) => (p.Queue, p.Tenant, State: states[n % states.Length]));
        // Pending last: a task is leased into its state only while no other task waits (EnqueueInState).
        foreach (var (queue, t, state) in plan.OrderBy(p => p.State == TaskState.Pending).ToList())
            expected.Add((await EnqueueInState(queue, state, tenant: t), queue, t, state));

        foreach (var t in tenants.OfType<string>())
        {
            var mine = expected.Where(e => e.Tenant == t).ToList();
            Assert.Equal(mine.Select(e => e.Id).Order(), (await QueryAll(new TaskQuery { Tenant = t }, 2)).Order());
            foreach (var queue in queues)
                Assert.Equal(mine.Where(e => e.Queue == queue).Select(e => e.Id).Order(), (await QueryAll(new TaskQuery { Tenant = t, Queue = queue }, 1)).Order());
            foreach (var state in states)
            {
                var page = await Store.QueryAsync(new TaskQuery { Tenant = t, States = [state] }, null, Ct);
                Assert.All(page.Items, item => Assert.Equal(t, item.Tenant));
                Assert.Equal(mine.Where(e => e.State == state).Select(e => e.Id).Order(), page.Items.Select(i => i.Id).Order());
            }
        }
    }
}
