using System.Collections.Concurrent;
using Konduit.Heartbeats;
using Konduit.InMemory;
using Xunit;

#pragma warning disable CS1591 // Test methods: their names are the documentation.

namespace Konduit.Testing.Conformance;

/// <summary>What a heartbeat channel adapter provides to run <see cref="HeartbeatChannelConformance{TFixture}"/>.</summary>
public abstract class HeartbeatChannelFixture : IAsyncLifetime
{
    /// <summary>
    /// A new channel over this fixture's server with its own topic and consumer group (isolation between tests);
    /// the fixture disposes it.
    /// </summary>
    public abstract ValueTask<IHeartbeatChannel> CreateChannelAsync();

    /// <summary>The monitors' liveness timeout in the suite: several heartbeat intervals, above the channel's delivery latency.</summary>
    public virtual TimeSpan LivenessTimeout => TimeSpan.FromSeconds(1);

    /// <summary>How often the suite's workers publish.</summary>
    public virtual TimeSpan HeartbeatInterval => TimeSpan.FromMilliseconds(100);

    /// <summary>How long a new consumer may take to be assigned its partitions (a group rebalance).</summary>
    public virtual TimeSpan AssignmentDeadline => TimeSpan.FromSeconds(10);

    /// <inheritdoc />
    public virtual ValueTask InitializeAsync() => ValueTask.CompletedTask;

    /// <inheritdoc />
    public virtual ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// The heartbeat channel contract (issue 12): heartbeats arrive in order per task; a lease monitor on the channel ends
/// a silent lease after the liveness timeout and not before, forgets completed ones, judges each lease by its own
/// token, and survives a restart without a false expiry. The store is an <see cref="InMemoryTaskStore"/>: the channel is
/// what is under test.
/// </summary>
public abstract class HeartbeatChannelConformance<TFixture> : IClassFixture<TFixture>, IAsyncLifetime
    where TFixture : HeartbeatChannelFixture
{
    private readonly List<IAsyncDisposable> _owned = [];
    private IHeartbeatChannel? _channel;

    protected HeartbeatChannelConformance(TFixture fixture) => Fixture = fixture;

    protected TFixture Fixture { get; }

    protected IHeartbeatChannel Channel => _channel ?? throw new InvalidOperationException("Created in InitializeAsync.");

    protected InMemoryTaskStore Store { get; } = new();

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    protected TimeSpan Timeout => Fixture.LivenessTimeout;

    protected static readonly TimeSpan Ceiling = TimeSpan.FromMinutes(5);

    public virtual async ValueTask InitializeAsync() => _channel = await Fixture.CreateChannelAsync();

    public virtual async ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        for (var i = _owned.Count - 1; i >= 0; i--) await _owned[i].DisposeAsync();
        await Store.DisposeAsync();
    }

    /// <summary>A started monitor whose expiries are recorded with the time they happened.</summary>
    protected async Task<(LeaseMonitor Monitor, ConcurrentQueue<(ReclaimedTask Task, DateTimeOffset At)> Expired)> StartMonitorAsync()
    {
        var expired = new ConcurrentQueue<(ReclaimedTask, DateTimeOffset)>();
        var monitor = new LeaseMonitor(Channel, Store, new LeaseMonitorOptions
        {
            LivenessTimeout = Timeout,
            CheckInterval = Timeout / 10,
            Expired = (task, _) => expired.Enqueue((task, DateTimeOffset.UtcNow)),
        });
        _owned.Add(monitor);
        monitor.Start();
        await Await.Until(() => Task.FromResult(monitor.HeldPartitions > 0), Fixture.AssignmentDeadline, TimeSpan.FromMilliseconds(20), "the monitor is assigned partitions");
        return (monitor, expired);
    }

    protected async Task<TaskLease> LeaseAsync(string queue)
    {
        await Store.EnqueueAsync(new EnqueueRequest(queue, [1]), Ct);
        return Assert.Single(await Store.LeaseAsync(queue, "worker-1", 1, Ceiling, Ct));
    }

    protected LeaseHeartbeat Beat(TaskLease lease, long? token = null, bool released = false) =>
        new(lease.TaskId, token ?? lease.LeaseToken, lease.WorkerId, DateTimeOffset.UtcNow, Ceiling, released);

    /// <summary>Publishes <paramref name="beat"/> every heartbeat interval until <paramref name="stop"/>; returns when the last one was published.</summary>
    protected Task<DateTimeOffset> BeatUntilAsync(Func<LeaseHeartbeat> beat, CancellationToken stop) => Task.Run(async () =>
    {
        var last = DateTimeOffset.UtcNow;
        while (!stop.IsCancellationRequested)
        {
            Assert.True(Channel.TryPublish(beat()));
            last = DateTimeOffset.UtcNow;
            try
            {
                await Task.Delay(Fixture.HeartbeatInterval, stop);
            }
            catch (OperationCanceledException)
            {
            }
        }
        return last;
    });

    /// <summary>Beats <paramref name="lease"/> until the monitor tracks <paramref name="tracked"/> leases, then stops (the lease goes silent).</summary>
    protected async Task BeatUntilTrackedAsync(LeaseMonitor monitor, TaskLease lease, int tracked)
    {
        using var stop = new CancellationTokenSource();
        var beats = BeatUntilAsync(() => Beat(lease), stop.Token);
        await Await.Until(() => Task.FromResult(monitor.TrackedLeases >= tracked), TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(20), $"the monitor tracks {tracked} leases");
        await stop.CancelAsync();
        await beats;
    }

    [Fact]
    public virtual async Task Heartbeats_are_observed_in_order_per_task()
    {
        var observer = new RecordingObserver();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var consuming = Channel.ConsumeAsync(observer, stop.Token);
        await Await.Until(() => Task.FromResult(observer.Assigned > 0), Fixture.AssignmentDeadline, TimeSpan.FromMilliseconds(20), "the consumer is assigned partitions");
        var tasks = Enumerable.Range(0, 3).Select(_ => Guid.CreateVersion7()).ToArray();
        // Consumers start at the newest offset: probe until every task's partition is flowing, then send the sequence.
        await Await.Until(() =>
        {
            foreach (var t in tasks) Channel.TryPublish(new LeaseHeartbeat(t, 1, "probe", DateTimeOffset.UtcNow, Ceiling));
            return Task.FromResult(tasks.All(t => observer.Of(t).Count > 0));
        }, Fixture.AssignmentDeadline, TimeSpan.FromMilliseconds(100), "probe heartbeats arrive");

        for (var seq = 2; seq <= 101; seq++)
            foreach (var t in tasks) Assert.True(Channel.TryPublish(new LeaseHeartbeat(t, seq, "worker-1", DateTimeOffset.UtcNow, Ceiling)));

        await Await.Until(() => Task.FromResult(tasks.All(t => observer.Of(t).Contains(101))), TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(20), "every heartbeat arrives");
        foreach (var t in tasks)
        {
            var tokens = observer.Of(t).Where(token => token > 1).ToList();
            Assert.Equal(Enumerable.Range(2, 100).Select(i => (long)i), tokens);
        }
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => consuming);
    }

    [Fact]
    public virtual async Task A_stopped_lease_is_expired_after_the_timeout_and_not_before()
    {
        var (monitor, expired) = await StartMonitorAsync();
        var stopped = await LeaseAsync("hb-stopped");
        var alive = await LeaseAsync("hb-alive");
        using var stopBeats = new CancellationTokenSource();
        using var stopAlive = new CancellationTokenSource();
        var lastBeat = BeatUntilAsync(() => Beat(stopped), stopBeats.Token);
        var aliveBeats = BeatUntilAsync(() => Beat(alive), stopAlive.Token);
        await Await.Until(() => Task.FromResult(monitor.TrackedLeases == 2), TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(20), "the monitor tracks both leases");

        await stopBeats.CancelAsync();
        var last = await lastBeat;
        await Await.Until(() => Task.FromResult(!expired.IsEmpty), Timeout * 6, TimeSpan.FromMilliseconds(20), "the silent lease is expired");

        var (task, at) = Assert.Single(expired);
        Assert.Equal((stopped.TaskId, stopped.LeaseToken, TaskState.Pending), (task.TaskId, task.LeaseToken, task.State));
        Assert.True(at - last >= Timeout, $"expired {(at - last).TotalMilliseconds:0} ms after the last heartbeat; the timeout is {Timeout.TotalMilliseconds:0} ms");
        Assert.Equal(TaskState.Pending, (await Store.GetAsync(stopped.TaskId, Ct)).State);
        Assert.Equal(TaskState.Running, (await Store.GetAsync(alive.TaskId, Ct)).State);
        await stopAlive.CancelAsync();
        await aliveBeats;
    }

    [Fact]
    public virtual async Task A_completed_task_stops_being_tracked()
    {
        var (monitor, expired) = await StartMonitorAsync();
        var lease = await LeaseAsync("hb-completed");
        using var stopBeats = new CancellationTokenSource();
        var beats = BeatUntilAsync(() => Beat(lease), stopBeats.Token);
        await Await.Until(() => Task.FromResult(monitor.TrackedLeases == 1), TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(20), "the monitor tracks the lease");

        await stopBeats.CancelAsync();
        await beats;
        await Store.CompleteAsync(lease, null, Ct);
        Assert.True(Channel.TryPublish(Beat(lease, released: true)));

        await Await.Until(() => Task.FromResult(monitor.TrackedLeases == 0), TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(20), "the released lease is forgotten");
        Assert.Empty(expired);
        Assert.Equal(TaskState.Succeeded, (await Store.GetAsync(lease.TaskId, Ct)).State);
    }

    [Fact]
    public virtual async Task An_old_token_never_keeps_a_newer_lease_alive()
    {
        var (monitor, expired) = await StartMonitorAsync();
        var first = await LeaseAsync("hb-old-token");
        Assert.NotNull(await Store.ExpireLeaseAsync(first.TaskId, first.LeaseToken, Ct));
        var second = Assert.Single(await Store.LeaseAsync("hb-old-token", "worker-2", 1, Ceiling, Ct));
        using var stopZombie = new CancellationTokenSource();
        // The first lease's holder has not noticed it lost the task and goes on sending its old token.
        var zombie = BeatUntilAsync(() => Beat(first), stopZombie.Token);
        await BeatUntilTrackedAsync(monitor, second, 2);

        await Await.Until(() => Task.FromResult(expired.Any(e => e.Task.LeaseToken == second.LeaseToken)), Timeout * 6, TimeSpan.FromMilliseconds(20), "the newer lease is expired");

        Assert.Equal(TaskState.Pending, (await Store.GetAsync(second.TaskId, Ct)).State);
        Assert.DoesNotContain(expired, e => e.Task.LeaseToken == first.LeaseToken);
        await stopZombie.CancelAsync();
        await zombie;
    }

    [Fact]
    public virtual async Task A_newer_token_never_keeps_an_older_lease_alive()
    {
        var (monitor, expired) = await StartMonitorAsync();
        var lease = await LeaseAsync("hb-new-token");
        using var stopOther = new CancellationTokenSource();
        // Heartbeats for a token the store never issued (a confused or forged sender) keep only themselves alive.
        var other = BeatUntilAsync(() => Beat(lease, token: lease.LeaseToken + 1), stopOther.Token);
        await BeatUntilTrackedAsync(monitor, lease, 2);

        await Await.Until(() => Task.FromResult(!expired.IsEmpty), Timeout * 6, TimeSpan.FromMilliseconds(20), "the current lease is expired");

        var (task, _) = Assert.Single(expired);
        Assert.Equal(lease.LeaseToken, task.LeaseToken);
        await stopOther.CancelAsync();
        await other;
    }

    [Fact]
    public virtual async Task A_monitor_restart_resumes_without_false_expiries()
    {
        var (first, firstExpired) = await StartMonitorAsync();
        var lease = await LeaseAsync("hb-restart");
        using var stopBeats = new CancellationTokenSource();
        var beats = BeatUntilAsync(() => Beat(lease), stopBeats.Token);
        await Await.Until(() => Task.FromResult(first.TrackedLeases == 1), TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(20), "the first monitor tracks the lease");

        await first.DisposeAsync();
        var (second, secondExpired) = await StartMonitorAsync();
        var assignedAt = DateTimeOffset.UtcNow;
        // Two liveness windows of the new monitor judging a lease that is alive all along.
        await Await.Until(() => Task.FromResult(second.TrackedLeases == 1 && DateTimeOffset.UtcNow - assignedAt > Timeout * 2),
            Timeout * 4 + Fixture.AssignmentDeadline, TimeSpan.FromMilliseconds(20), "the new monitor has judged the live lease for two windows");
        Assert.Empty(firstExpired);
        Assert.Empty(secondExpired);
        Assert.Equal(TaskState.Running, (await Store.GetAsync(lease.TaskId, Ct)).State);

        await stopBeats.CancelAsync();
        await beats;
        await Await.Until(() => Task.FromResult(!secondExpired.IsEmpty), Timeout * 6, TimeSpan.FromMilliseconds(20), "the restarted monitor expires the lease once it goes silent");
        Assert.Equal(lease.TaskId, Assert.Single(secondExpired).Task.TaskId);
    }

    [Fact]
    public virtual async Task Bad_input_is_rejected_with_a_typed_error()
    {
        var lease = await LeaseAsync("hb-bad-input");
        Assert.Throws<ArgumentNullException>(() => Channel.TryPublish(null!));
        Assert.Equal("TaskId", Assert.Throws<ArgumentException>(() => Channel.TryPublish(Beat(lease) with { TaskId = Guid.Empty })).ParamName);
        Assert.Equal("LeaseToken", Assert.Throws<ArgumentOutOfRangeException>(() => Channel.TryPublish(Beat(lease) with { LeaseToken = 0 })).ParamName);
        Assert.Equal("WorkerId", Assert.Throws<ArgumentException>(() => Channel.TryPublish(Beat(lease) with { WorkerId = "" })).ParamName);
        Assert.Equal("WorkerId", Assert.Throws<ArgumentException>(() => Channel.TryPublish(Beat(lease) with { WorkerId = "a\0b" })).ParamName);
        Assert.Equal("Extension", Assert.Throws<ArgumentOutOfRangeException>(() => Channel.TryPublish(Beat(lease) with { Extension = TimeSpan.Zero })).ParamName);
        await Assert.ThrowsAsync<ArgumentNullException>(() => Channel.ConsumeAsync(null!, Ct));
        Assert.Equal("LivenessTimeout", Assert.Throws<ArgumentOutOfRangeException>(() =>
            new LeaseMonitor(Channel, Store, new LeaseMonitorOptions { LivenessTimeout = TimeSpan.Zero })).ParamName);
        Assert.Equal(TaskState.Running, (await Store.GetAsync(lease.TaskId, Ct)).State);
    }

    /// <summary>Records what a consumer is told.</summary>
    protected sealed class RecordingObserver : IHeartbeatObserver
    {
        private readonly ConcurrentDictionary<Guid, List<long>> _byTask = new();
        private int _assigned;

        public int Assigned => Volatile.Read(ref _assigned);

        public IReadOnlyList<long> Of(Guid taskId)
        {
            var list = _byTask.GetOrAdd(taskId, _ => []);
            lock (list) return [.. list];
        }

        public void OnHeartbeat(LeaseHeartbeat heartbeat, int partition)
        {
            ArgumentNullException.ThrowIfNull(heartbeat);
            var list = _byTask.GetOrAdd(heartbeat.TaskId, _ => []);
            lock (list) list.Add(heartbeat.LeaseToken);
        }

        public void OnAssigned(IReadOnlyCollection<int> partitions) => Interlocked.Add(ref _assigned, partitions.Count);

        public void OnRevoked(IReadOnlyCollection<int> partitions) => Interlocked.Add(ref _assigned, -partitions.Count);
    }
}
