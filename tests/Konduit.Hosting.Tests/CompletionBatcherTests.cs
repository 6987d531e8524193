using Konduit.InMemory;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Xunit;
using static Konduit.Hosting.Tests.TestKit;

namespace Konduit.Hosting.Tests;

/// <summary>The completion batcher on a fake clock, over the in-memory store on the same clock.</summary>
public sealed class CompletionBatcherTests : IAsyncDisposable
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly CancellationTokenSource _hardStop = new();
    private readonly TestStore _store;
    private readonly CompletionBatcher _batcher;

    public CompletionBatcherTests()
    {
        _store = new TestStore(new InMemoryTaskStore(null, _time));
        _batcher = new CompletionBatcher(_store, _time, new OutcomeBackoff(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(1)), _hardStop.Token, NullLogger.Instance);
        _batcher.Start();
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask DisposeAsync()
    {
        await _batcher.StopAsync();
        await _store.Inner.DisposeAsync();
        _hardStop.Dispose();
    }

    [Fact]
    public async Task Completions_that_arrive_while_a_round_trip_runs_go_in_one_CompleteMany()
    {
        var tracked = await Lease(4, TimeSpan.FromSeconds(30));
        _store.StallCompletions();
        var first = _batcher.CompleteAsync(tracked[0], [1]);
        await Eventually(() => _store.CompleteCalls == 1, "the first completion to go alone");
        var rest = tracked.Skip(1).Select(t => _batcher.CompleteAsync(t, null)).ToArray();

        _store.ResumeCompletions();

        Assert.True(await first);
        Assert.All(await Task.WhenAll(rest), Assert.True);
        Assert.Equal(1, _store.CompleteCalls);
        Assert.Equal(1, _store.CompleteManyCalls);
        foreach (var t in tracked) Assert.Equal(TaskState.Succeeded, (await _store.GetAsync(t.TaskId, Ct)).State);
    }

    [Fact]
    public async Task A_transient_failure_is_retried_with_backoff_until_the_completion_is_recorded()
    {
        var tracked = (await Lease(1, TimeSpan.FromSeconds(30)))[0];
        _store.FaultCompletions(2);

        var completing = _batcher.CompleteAsync(tracked, [7]);
        await Eventually(() => _batcher.Retries == 1, "the first failure");
        Assert.False(completing.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(100));
        await Eventually(() => _batcher.Retries == 2, "the second failure");
        _time.Advance(TimeSpan.FromMilliseconds(199));
        Assert.Equal(2, _store.CompleteCalls); // the backoff doubled: not due yet
        _time.Advance(TimeSpan.FromMilliseconds(1));

        Assert.True(await completing);
        Assert.Equal(3, _store.CompleteCalls);
        var task = await _store.GetAsync(tracked.TaskId, Ct);
        Assert.Equal(TaskState.Succeeded, task.State);
        Assert.Equal([7], task.Result);
    }

    [Fact]
    public async Task Retries_stop_before_the_lease_runs_out_and_the_store_error_surfaces()
    {
        var tracked = (await Lease(1, TimeSpan.FromSeconds(1)))[0];
        _store.FaultCompletions(int.MaxValue);

        var completing = _batcher.CompleteAsync(tracked, null);
        // Backoff 100, 200, 400 ms: the next one (800 ms) would end past the 1 s lease, so it gives up.
        for (var retry = 1; retry <= 3; retry++)
        {
            await Eventually(() => _batcher.Retries == retry, $"failure {retry}");
            _time.Advance(TimeSpan.FromMilliseconds(100 << (retry - 1)));
        }

        var ex = await Assert.ThrowsAsync<OutcomeNotRecordedException>(() => completing);
        Assert.IsType<StoreUnavailableException>(ex.InnerException);
        Assert.Equal(4, _store.CompleteCalls);
        Assert.Equal(TaskState.Running, (await _store.GetAsync(tracked.TaskId, Ct)).State);
    }

    [Fact]
    public async Task A_lost_lease_is_reported_as_refused_and_not_retried()
    {
        var tracked = await Lease(2, TimeSpan.FromSeconds(30));
        Assert.True(await _store.CancelAsync(tracked[0].TaskId, Ct));
        _store.StallCompletions();
        var first = _batcher.CompleteAsync(tracked[1], null);
        await Eventually(() => _store.CompleteCalls == 1, "a round trip in flight");
        var refusedAlone = _batcher.CompleteAsync(tracked[0], null);
        _store.ResumeCompletions();

        Assert.True(await first);
        Assert.False(await refusedAlone);
        Assert.Equal(0, _batcher.Retries);
    }

    [Fact]
    public async Task A_lease_marked_lost_is_not_retried()
    {
        var tracked = (await Lease(1, TimeSpan.FromSeconds(30)))[0];
        _store.FaultCompletions(1);
        tracked.MarkLost(null);

        await Assert.ThrowsAsync<OutcomeNotRecordedException>(() => _batcher.CompleteAsync(tracked, null));
        Assert.Equal(1, _store.CompleteCalls);
    }

    private async Task<TrackedLease[]> Lease(int count, TimeSpan duration)
    {
        var queue = NewQueue();
        for (var i = 0; i < count; i++) await _store.EnqueueAsync(new EnqueueRequest(queue, [(byte)i]), Ct);
        var leases = await _store.LeaseAsync(queue, "worker-1", count, duration, Ct);
        Assert.Equal(count, leases.Count);
        return leases.Select(l => new TrackedLease(l, duration, duration / 3)).ToArray();
    }
}
