using Konduit.Testing.Conformance;
using Npgsql;
using Xunit;

namespace Konduit.Postgres.Tests;

/// <summary>
/// <see cref="PostgresTaskStore.CompleteAndLeaseAsync"/>: the unbatched cycle in one statement (issue 15, "one round
/// trip per task"). The contract's behaviour is in the conformance suite; these are the Postgres-specific promises.
/// </summary>
public sealed class PostgresCompleteAndLeaseTests(PostgresStoreFixture fixture) : IClassFixture<PostgresStoreFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Queue() => "cal." + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task Complete_and_lease_sends_one_statement_where_complete_then_lease_sends_two()
    {
        // A data source of our own whose logger sees every command Npgsql executes for this store. No BEGIN or COMMIT is
        // ever sent by the store, so one statement is one implicit transaction: one round trip, one commit.
        using var log = new CapturingLoggerFactory();
        var builder = new NpgsqlDataSourceBuilder(PostgresStoreFixture.ConnectionString);
        builder.UseLoggerFactory(log);
        await using var dataSource = builder.Build();
        await using var store = new PostgresTaskStore(new PostgresTaskStoreOptions { Schema = fixture.Schema }, dataSource);
        var queue = Queue();
        await store.EnqueueManyAsync(Enumerable.Range(0, 4).Select(i => new EnqueueRequest(queue, [(byte)i])).ToArray(), Ct);
        var first = Assert.Single(await store.LeaseAsync(queue, "w", 1, TimeSpan.FromMinutes(1), Ct));
        // Once through each path first, so that preparing (one round trip per statement and connection) is behind us.
        var warm = await store.CompleteAndLeaseAsync(new TaskCompletion(first), "w", 1, TimeSpan.FromMinutes(1), Ct);
        var lease = Assert.Single(warm.Leases);

        log.Clear();
        var result = await store.CompleteAndLeaseAsync(new TaskCompletion(lease), "w", 1, TimeSpan.FromMinutes(1), Ct);
        var oneCall = OnTasks(log);
        log.Clear();
        await ((ITaskStore)new DefaultPath(store)).CompleteAndLeaseAsync(new TaskCompletion(Assert.Single(result.Leases)), "w", 1, TimeSpan.FromMinutes(1), Ct);
        var twoCalls = OnTasks(log);

        Assert.True(result.Completed);
        Assert.True(oneCall.Count == 1, "one statement; executed:\n" + string.Join("\n", oneCall));
        Assert.Contains("DELETE FROM", oneCall[0], StringComparison.Ordinal);
        Assert.Contains("SKIP LOCKED", oneCall[0], StringComparison.Ordinal);
        Assert.DoesNotContain(oneCall.Concat(twoCalls), c => c.Contains("BEGIN", StringComparison.OrdinalIgnoreCase) || c.Contains("COMMIT", StringComparison.OrdinalIgnoreCase));
        Assert.True(twoCalls.Count == 2, "the default: complete, then lease; executed:\n" + string.Join("\n", twoCalls));
        Assert.Equal(TaskState.Succeeded, (await store.GetAsync(lease.TaskId, Ct)).State);

        // Statements on the tasks table only: the store's notifier may still be sending the enqueue's wake-up.
        List<string> OnTasks(CapturingLoggerFactory l) => [.. l.Executed().Where(c => c.Contains($"\"{fixture.Schema}\".tasks", StringComparison.Ordinal))];
    }

    [Fact]
    public async Task Complete_and_lease_moves_the_task_to_history_and_leases_a_scheduled_task_that_came_due_before_any_sweep()
    {
        var store = fixture.CreatePostgresStore();
        var queue = Queue();
        await store.EnqueueAsync(new EnqueueRequest(queue, [1]), Ct);
        var lease = Assert.Single(await store.LeaseAsync(queue, "w", 1, TimeSpan.FromMinutes(1), Ct));
        var soon = DateTimeOffset.UtcNow.AddMilliseconds(200);
        var scheduled = (await store.EnqueueAsync(new EnqueueRequest(queue, [2]) { RunAt = soon }, Ct)).TaskId;
        Assert.True(await fixture.ScalarAsync<bool>($"SELECT scheduled FROM \"{fixture.Schema}\".tasks WHERE id = $1", scheduled));
        await Await.Until(async () => await fixture.ScalarAsync<bool>("SELECT now() > $1", soon), TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(20),
            "the server clock passes the scheduled task's run-at");

        var result = await store.CompleteAndLeaseAsync(new TaskCompletion(lease, [7]), "w", 5, TimeSpan.FromMinutes(1), Ct);

        Assert.True(result.Completed);
        Assert.Equal(scheduled, Assert.Single(result.Leases).TaskId);
        Assert.Equal(0L, await fixture.ScalarAsync<long>($"SELECT count(*) FROM \"{fixture.Schema}\".tasks WHERE id = $1", lease.TaskId));
        Assert.Equal(2, await fixture.ScalarAsync<short>($"SELECT state FROM \"{fixture.Schema}\".task_history WHERE id = $1", lease.TaskId));
        Assert.Equal(new byte[] { 7 }, (await store.GetAsync(lease.TaskId, Ct)).Result);
        Assert.Equal(1L, (await store.GetStatsAsync(Ct)).Single(s => s.Queue == queue).Succeeded);
    }

    [Fact]
    public async Task The_default_path_reports_a_recorded_completion_as_completed_when_its_lease_half_fails()
    {
        // Complete, then lease: once the completion is recorded, a failing lease may not turn it into an exception (the
        // runtime would retry the completion alone, find it done, and report a finished task as lost).
        var store = fixture.CreatePostgresStore();
        var queue = Queue();
        await store.EnqueueManyAsync([new EnqueueRequest(queue, [1]), new EnqueueRequest(queue, [2])], Ct);
        var lease = Assert.Single(await store.LeaseAsync(queue, "w", 1, TimeSpan.FromMinutes(1), Ct));
        var failing = new DefaultPath(store, failLease: true);

        var result = await ((ITaskStore)failing).CompleteAndLeaseAsync(new TaskCompletion(lease, [9]), "w", 1, TimeSpan.FromMinutes(1), Ct);

        Assert.True(result.Completed);
        Assert.Empty(result.Leases);
        var done = await store.GetAsync(lease.TaskId, Ct);
        Assert.Equal(TaskState.Succeeded, done.State);
        Assert.Equal(new byte[] { 9 }, done.Result);
        // The other task was not leased: it is still there for the next call.
        Assert.Single(await store.LeaseAsync(queue, "w", 5, TimeSpan.FromMinutes(1), Ct));
    }

    // The contract's default (CompleteManyAsync, then LeaseAsync) over the same store: a decorator that hides the override.
    // With failLease its LeaseAsync throws the store's transient error, as a lost connection would.
    private sealed class DefaultPath(ITaskStore inner, bool failLease = false) : ITaskStore
    {
        public string Name => inner.Name;
        public StoreCapabilities Capabilities => inner.Capabilities;
        public Task<EnqueueResult> EnqueueAsync(EnqueueRequest request, CancellationToken cancellationToken = default) => inner.EnqueueAsync(request, cancellationToken);
        public Task<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, CancellationToken cancellationToken = default) => inner.EnqueueManyAsync(requests, cancellationToken);
        public Task<IReadOnlyList<TaskLease>> LeaseAsync(string queue, string workerId, int maxCount, TimeSpan leaseDuration, CancellationToken cancellationToken = default) =>
            failLease ? throw new StoreUnavailableException("postgres", "lease", null) : inner.LeaseAsync(queue, workerId, maxCount, leaseDuration, cancellationToken);
        public Task<TaskLease> HeartbeatAsync(TaskLease lease, TimeSpan extension, CancellationToken cancellationToken = default) => inner.HeartbeatAsync(lease, extension, cancellationToken);
        public Task<HeartbeatManyResult> HeartbeatManyAsync(IReadOnlyList<TaskLease> leases, TimeSpan extension, CancellationToken cancellationToken = default) => inner.HeartbeatManyAsync(leases, extension, cancellationToken);
        public Task CompleteAsync(TaskLease lease, byte[]? result = null, CancellationToken cancellationToken = default) => inner.CompleteAsync(lease, result, cancellationToken);
        public Task<IReadOnlyList<Guid>> CompleteManyAsync(IReadOnlyList<TaskCompletion> completions, CancellationToken cancellationToken = default) => inner.CompleteManyAsync(completions, cancellationToken);
        public Task<FailResult> FailAsync(TaskLease lease, string error, FailOptions? options = null, CancellationToken cancellationToken = default) => inner.FailAsync(lease, error, options, cancellationToken);
        public Task<IReadOnlyList<ReclaimedTask>> ReclaimExpiredAsync(CancellationToken cancellationToken = default) => inner.ReclaimExpiredAsync(cancellationToken);
        public Task<ReclaimedTask?> ExpireLeaseAsync(Guid taskId, long leaseToken, CancellationToken cancellationToken = default) => inner.ExpireLeaseAsync(taskId, leaseToken, cancellationToken);
        public Task<bool> CancelAsync(Guid taskId, CancellationToken cancellationToken = default) => inner.CancelAsync(taskId, cancellationToken);
        public Task RedriveAsync(Guid taskId, CancellationToken cancellationToken = default) => inner.RedriveAsync(taskId, cancellationToken);
        public Task<IReadOnlyList<Guid>> CancelManyAsync(TaskQuery filter, int maxCount, CancellationToken cancellationToken = default) => inner.CancelManyAsync(filter, maxCount, cancellationToken);
        public Task<IReadOnlyList<Guid>> RedriveManyAsync(TaskQuery filter, int maxCount, CancellationToken cancellationToken = default) => inner.RedriveManyAsync(filter, maxCount, cancellationToken);
        public Task PauseQueueAsync(string queue, CancellationToken cancellationToken = default) => inner.PauseQueueAsync(queue, cancellationToken);
        public Task ResumeQueueAsync(string queue, CancellationToken cancellationToken = default) => inner.ResumeQueueAsync(queue, cancellationToken);
        public Task<IReadOnlyCollection<string>> GetPausedQueuesAsync(CancellationToken cancellationToken = default) => inner.GetPausedQueuesAsync(cancellationToken);
        public Task<TaskSnapshot> GetAsync(Guid taskId, CancellationToken cancellationToken = default) => inner.GetAsync(taskId, cancellationToken);
        public Task<TaskPage> QueryAsync(TaskQuery filter, PageRequest? page = null, CancellationToken cancellationToken = default) => inner.QueryAsync(filter, page, cancellationToken);
        public Task<IReadOnlyList<QueueStats>> GetStatsAsync(CancellationToken cancellationToken = default) => inner.GetStatsAsync(cancellationToken);
        public Task<IReadOnlyList<PurgedTask>> PurgeAsync(TimeSpan olderThan, IReadOnlyCollection<TaskState>? states = null, string? queue = null, CancellationToken cancellationToken = default) => inner.PurgeAsync(olderThan, states, queue, cancellationToken);
        public Task<bool> WaitForWorkAsync(string queue, TimeSpan timeout, CancellationToken cancellationToken = default) => inner.WaitForWorkAsync(queue, timeout, cancellationToken);
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
