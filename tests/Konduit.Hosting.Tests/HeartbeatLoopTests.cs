using Konduit.InMemory;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Xunit;
using static Konduit.Hosting.Tests.TestKit;

namespace Konduit.Hosting.Tests;

/// <summary>The heartbeat loop on a fake clock, over the in-memory store on the same clock.</summary>
public sealed class HeartbeatLoopTests : IAsyncDisposable
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly TestStore _store;
    private readonly HeartbeatLoop _loop;

    public HeartbeatLoopTests()
    {
        _store = new TestStore(new InMemoryTaskStore(null, _time));
        _loop = new HeartbeatLoop(_store, Interval, Lease, _time, NullLogger.Instance);
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask DisposeAsync()
    {
        await _loop.DisposeAsync();
        await _store.Inner.DisposeAsync();
    }

    [Fact]
    public async Task One_HeartbeatMany_per_interval_renews_every_tracked_lease()
    {
        var tracked = await LeaseAndTrack(3);

        await Beat(1, Interval);
        Assert.Equal(1, _store.HeartbeatManyCalls);
        Assert.Equal(0, _store.HeartbeatCalls);
        Assert.All(tracked, t => Assert.Equal(_time.GetUtcNow() + Lease, t.Lease.ExpiresAt));

        await Beat(2, Interval);
        await Beat(3, Interval);
        Assert.Equal(3, _store.HeartbeatManyCalls);
        // Past the original expiry (30 s): the store still holds every lease.
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.Empty(await _store.ReclaimExpiredAsync(Ct));
        foreach (var t in tracked)
        {
            Assert.False(t.IsLost);
            Assert.Equal(TaskState.Running, (await _store.GetAsync(t.TaskId, Ct)).State);
        }
    }

    [Fact]
    public async Task A_lease_the_store_reports_lost_is_marked_lost_and_no_longer_renewed()
    {
        var tracked = await LeaseAndTrack(3);
        Assert.True(await _store.CancelAsync(tracked[1].TaskId, Ct));

        await Beat(1, Interval);

        Assert.True(tracked[1].IsLost);
        await Eventually(() => tracked[1].LostToken.IsCancellationRequested, "the lost lease's token to fire");
        Assert.False(tracked[0].IsLost);
        Assert.False(tracked[2].IsLost);
        Assert.Equal(2, _loop.Count);
    }

    [Fact]
    public async Task Nothing_is_sent_while_no_lease_is_tracked()
    {
        _time.Advance(TimeSpan.FromMinutes(1));
        var tracked = await LeaseAndTrack(1);
        _loop.Remove(tracked[0]);
        _time.Advance(TimeSpan.FromMinutes(1));
        // The armed timer fired, found nothing tracked, and did not re-arm.
        Assert.Equal(0, _loop.Beats);
        Assert.Equal(0, _store.HeartbeatManyCalls);

        _loop.Add(tracked[0]);
        await Beat(1, Interval);
        Assert.Equal(1, _store.HeartbeatManyCalls);
    }

    [Fact]
    public async Task A_failing_store_is_retried_at_half_the_interval_and_a_lease_without_renewal_for_a_whole_lease_is_lost()
    {
        var tracked = (await LeaseAndTrack(1))[0];
        _store.FaultHeartbeats(int.MaxValue);

        await Beat(1, Interval);                       // t = 10 s: fails
        for (var beat = 2; beat <= 4; beat++)          // t = 15, 20, 25 s: fail, the lease is still ours
        {
            await Beat(beat, Interval / 2);
            Assert.False(tracked.IsLost);
        }
        await Beat(5, Interval / 2);                   // t = 30 s: a whole lease without renewal
        Assert.True(tracked.IsLost);
        Assert.Equal(5, _store.HeartbeatManyCalls);
        Assert.Equal(0, _loop.Count);
    }

    [Fact]
    public async Task A_failed_beat_followed_by_a_good_one_keeps_the_lease()
    {
        var tracked = (await LeaseAndTrack(1))[0];
        _store.FaultHeartbeats(2);

        await Beat(1, Interval);
        await Beat(2, Interval / 2);
        await Beat(3, Interval / 2);

        Assert.False(tracked.IsLost);
        Assert.Equal(_time.GetUtcNow() + Lease, tracked.Lease.ExpiresAt);
        Assert.Equal(TaskState.Running, (await _store.GetAsync(tracked.TaskId, Ct)).State);
    }

    private async Task<TrackedLease[]> LeaseAndTrack(int count)
    {
        var queue = NewQueue();
        for (var i = 0; i < count; i++) await _store.EnqueueAsync(new EnqueueRequest(queue, [(byte)i]), Ct);
        var leases = await _store.LeaseAsync(queue, "worker-1", count, Lease, Ct);
        var tracked = leases.Select(l => new TrackedLease(l, Lease, Interval)).ToArray();
        foreach (var t in tracked) _loop.Add(t);
        return tracked;
    }

    /// <summary>Moves the clock by <paramref name="by"/> and waits for beat number <paramref name="beat"/> to finish.</summary>
    private async Task Beat(int beat, TimeSpan by)
    {
        _time.Advance(by);
        await Eventually(() => _loop.Beats >= beat, $"heartbeat {beat} to finish");
        Assert.Equal(beat, _loop.Beats);
    }
}
