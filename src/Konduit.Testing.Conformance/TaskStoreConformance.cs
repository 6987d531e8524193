using System.Runtime.CompilerServices;
using System.Text;
using Xunit;

namespace Konduit.Testing.Conformance;

/// <summary>
/// The shared base of every conformance area. It declares the class fixture (so an adapter's test class is one
/// line), creates a store per test from <see cref="Fixture"/>, and offers the helpers tests use instead of
/// sleeps: unique queue names, <see cref="Eventually"/>, and time comparisons within a declared precision.
/// </summary>
/// <typeparam name="TFixture">The adapter's fixture.</typeparam>
/// <remarks>
/// Tests isolate themselves by queue name (<see cref="Queue"/>), never by a new server. Within one test class
/// xUnit runs tests one after another, so whole-store observations (stats before/after) are stable there.
/// </remarks>
public abstract class TaskStoreConformance<TFixture> : IClassFixture<TFixture>, IAsyncLifetime
    where TFixture : TaskStoreFixture
{
    private ITaskStore? _store;

    /// <summary>Creates the test class over the adapter's fixture.</summary>
    protected TaskStoreConformance(TFixture fixture)
    {
        ArgumentNullException.ThrowIfNull(fixture);
        Fixture = fixture;
    }

    /// <summary>The adapter's fixture.</summary>
    protected TFixture Fixture { get; }

    /// <summary>The store under test, created by <see cref="InitializeAsync"/> with default options.</summary>
    protected ITaskStore Store => _store ?? throw new InvalidOperationException("The store is created in InitializeAsync.");

    /// <summary>
    /// Precision to which two timestamps produced by the store must agree (1 ms: PostgreSQL keeps microseconds,
    /// .NET ticks; some backends keep milliseconds).
    /// </summary>
    protected virtual TimeSpan TimePrecision => TimeSpan.FromMilliseconds(1);

    /// <summary>
    /// How far the store's clock may be from the test process's clock when a test compares the two (the server
    /// runs on the same host or in a container on it). Override for a remote server.
    /// </summary>
    protected virtual TimeSpan ClockTolerance => TimeSpan.FromMilliseconds(250);

    /// <summary>How long <see cref="Eventually"/> waits by default for something the store's clock must bring about.</summary>
    protected virtual TimeSpan DefaultDeadline => TimeSpan.FromSeconds(10);

    /// <summary>A short lease, so that tests which need one to expire wait little.</summary>
    protected virtual TimeSpan ShortLease => TimeSpan.FromMilliseconds(300);

    /// <summary>A lease that will not expire during a test.</summary>
    protected static TimeSpan LongLease { get; } = TimeSpan.FromMinutes(5);

    /// <summary>The running test's cancellation token.</summary>
    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Creates the store under test.</summary>
    public virtual async ValueTask InitializeAsync() => _store = await Fixture.CreateStoreAsync();

    /// <summary>Nothing to do: the fixture disposes the stores it created.</summary>
    public virtual ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>A queue name no other test uses, derived from the calling test's name.</summary>
    protected static string Queue([CallerMemberName] string test = "")
    {
        var prefix = test.Length > 60 ? test[..60] : test;
        return $"{prefix}.{Guid.NewGuid():N}";
    }

    /// <summary>UTF-8 bytes of <paramref name="text"/>.</summary>
    protected static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    /// <summary>
    /// Polls <paramref name="condition"/> until it returns true, failing the test with <paramref name="because"/>
    /// when <paramref name="deadline"/> passes first. Use it where the store's clock or another party must act.
    /// </summary>
    protected static Task Eventually(Func<Task<bool>> condition, TimeSpan deadline, string because) =>
        Await.Until(condition, deadline, TimeSpan.FromMilliseconds(20), because);

    /// <summary>Waits until the store's clock (within <see cref="ClockTolerance"/>) has passed <paramref name="storeTime"/>.</summary>
    protected Task WaitUntilPast(DateTimeOffset storeTime, string because) =>
        Eventually(() => Task.FromResult(DateTimeOffset.UtcNow > storeTime + ClockTolerance), DefaultDeadline + (storeTime - DateTimeOffset.UtcNow), because);

    /// <summary>Asserts two store-produced times agree within <see cref="TimePrecision"/>.</summary>
    protected void AssertSameTime(DateTimeOffset expected, DateTimeOffset? actual, string what)
    {
        Assert.True(actual.HasValue, $"{what}: expected {expected:O}, got null");
        var diff = (actual.Value - expected).Duration();
        Assert.True(diff <= TimePrecision, $"{what}: expected {expected:O}, got {actual.Value:O} (off by {diff.TotalMilliseconds} ms; precision {TimePrecision.TotalMilliseconds} ms)");
    }

    /// <summary>
    /// Asserts a store time lies in [<paramref name="from"/>, <paramref name="to"/>] measured on the test's clock,
    /// widened by <see cref="ClockTolerance"/> on both sides.
    /// </summary>
    protected void AssertBetween(DateTimeOffset? actual, DateTimeOffset from, DateTimeOffset to, string what)
    {
        Assert.True(actual.HasValue, $"{what}: expected a time, got null");
        Assert.True(
            actual.Value >= from - ClockTolerance && actual.Value <= to + ClockTolerance,
            $"{what}: {actual.Value:O} is outside [{from:O}, {to:O}] ± {ClockTolerance.TotalMilliseconds} ms");
    }

    /// <summary>Enqueues a plain task and returns its id.</summary>
    protected async Task<Guid> Enqueue(string queue, string payload = "p", int priority = 0, int maxAttempts = TaskValidation.DefaultMaxAttempts,
        string? key = null, string? tenant = null, DateTimeOffset? runAt = null, RetryPolicy? retryPolicy = null)
    {
        var result = await Store.EnqueueAsync(new EnqueueRequest(queue, Bytes(payload))
        {
            Priority = priority,
            MaxAttempts = maxAttempts,
            IdempotencyKey = key,
            Tenant = tenant,
            RunAt = runAt,
            RetryPolicy = retryPolicy,
        }, Ct);
        Assert.True(result.Created);
        return result.TaskId;
    }

    /// <summary>Leases exactly one task from <paramref name="queue"/> and returns its lease (fails when there is none).</summary>
    protected async Task<TaskLease> LeaseOne(string queue, TimeSpan? duration = null, string workerId = "worker-1")
    {
        var leases = await Store.LeaseAsync(queue, workerId, 1, duration ?? LongLease, Ct);
        return Assert.Single(leases);
    }

    /// <summary>Enqueues one task and leases it.</summary>
    protected async Task<TaskLease> EnqueueAndLease(string queue, TimeSpan? duration = null, int maxAttempts = TaskValidation.DefaultMaxAttempts,
        RetryPolicy? retryPolicy = null, string? tenant = null)
    {
        var id = await Enqueue(queue, maxAttempts: maxAttempts, retryPolicy: retryPolicy, tenant: tenant);
        var lease = await LeaseOne(queue, duration);
        Assert.Equal(id, lease.TaskId);
        return lease;
    }

    /// <summary>
    /// Brings a new task of <paramref name="queue"/> to <paramref name="state"/> through the public API; returns its id.
    /// Running, Succeeded and Failed lease the new task, at top priority: a store without
    /// <see cref="StoreCapabilities.StrictLeaseOrder"/> may hand out any pending task instead, so tests create the
    /// tasks that stay Pending last.
    /// </summary>
    protected async Task<Guid> EnqueueInState(string queue, TaskState state, string? key = null, string? tenant = null)
    {
        if (state is TaskState.Pending or TaskState.Canceled)
        {
            var pendingId = await Enqueue(queue, key: key, tenant: tenant);
            if (state == TaskState.Canceled) Assert.True(await Store.CancelAsync(pendingId, Ct));
            return pendingId;
        }
        // Top priority, so that the one-task lease below takes this task whatever else the queue holds.
        var id = await Enqueue(queue, key: key, tenant: tenant, priority: int.MaxValue);
        var lease = await LeaseOne(queue);
        Assert.True(id == lease.TaskId, $"{nameof(EnqueueInState)}({state}) leased another task: create the tasks that stay Pending last");
        switch (state)
        {
            case TaskState.Running: break;
            case TaskState.Succeeded: await Store.CompleteAsync(lease, null, Ct); break;
            case TaskState.Failed: await Store.FailAsync(lease, "setup failure", FailOptions.NonRetryable, Ct); break;
            default: throw new ArgumentOutOfRangeException(nameof(state), state, null);
        }
        Assert.Equal(state, (await Store.GetAsync(id, Ct)).State);
        return id;
    }

    /// <summary>The stats of one queue; all zeros when the store lists no such queue.</summary>
    protected async Task<QueueStats> StatsOf(string queue) =>
        (await Store.GetStatsAsync(Ct)).SingleOrDefault(s => s.Queue == queue) ?? new QueueStats(queue, 0, 0, 0, 0, 0);

    /// <summary>
    /// Asserts that <paramref name="act"/> throws exactly <typeparamref name="TException"/> and leaves the store
    /// unchanged, judged by the stats of every queue before and after (and returns the exception).
    /// </summary>
    protected async Task<TException> AssertRejected<TException>(Func<Task> act, string? paramName = null)
        where TException : ArgumentException
    {
        ArgumentNullException.ThrowIfNull(act);
        var before = await Store.GetStatsAsync(Ct);
        var ex = await Assert.ThrowsAsync<TException>(act);
        if (paramName is not null) Assert.Equal(paramName, ex.ParamName);
        var after = await Store.GetStatsAsync(Ct);
        Assert.Equal(before, after);
        return ex;
    }

    /// <summary>Asserts the lease-related fields of a task did not change between two snapshots.</summary>
    protected static void AssertUnchanged(TaskSnapshot before, TaskSnapshot after)
    {
        ArgumentNullException.ThrowIfNull(before);
        ArgumentNullException.ThrowIfNull(after);
        Assert.Equal(before.State, after.State);
        Assert.Equal(before.Attempts, after.Attempts);
        Assert.Equal(before.LeaseToken, after.LeaseToken);
        Assert.Equal(before.LeaseExpiresAt, after.LeaseExpiresAt);
        Assert.Equal(before.RunAt, after.RunAt);
        Assert.Equal(before.FinishedAt, after.FinishedAt);
        Assert.Equal(before.Errors.Count, after.Errors.Count);
        Assert.Equal(before.Result, after.Result);
    }

    /// <summary>Asserts that <paramref name="act"/> throws <see cref="LeaseLostException"/> for <paramref name="lease"/> naming <paramref name="state"/>.</summary>
    protected static async Task<LeaseLostException> AssertLeaseLost(Func<Task> act, TaskLease lease, TaskState? state)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var ex = await Assert.ThrowsAsync<LeaseLostException>(act);
        Assert.Equal(lease.TaskId, ex.TaskId);
        Assert.Equal(lease.LeaseToken, ex.LeaseToken);
        Assert.Equal(state, ex.CurrentState);
        return ex;
    }
}
