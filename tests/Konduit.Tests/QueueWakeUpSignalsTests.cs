using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Konduit.Tests;

public sealed class QueueWakeUpSignalsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_signal_with_no_waiter_is_latched_once_and_only_for_its_queue()
    {
        var signals = new QueueWakeUpSignals();
        signals.Signal("a");

        Assert.False(await signals.WaitAsync("b", TimeSpan.Zero, Ct));
        Assert.True(await signals.WaitAsync("a", TimeSpan.Zero, Ct));
        Assert.False(await signals.WaitAsync("a", TimeSpan.Zero, Ct)); // consumed
    }

    [Fact]
    public async Task A_signal_wakes_every_waiter_of_the_queue()
    {
        var signals = new QueueWakeUpSignals();
        var waiters = Enumerable.Range(0, 3).Select(_ => signals.WaitAsync("q", Timeout.InfiniteTimeSpan, Ct)).ToArray();
        Assert.All(waiters, w => Assert.False(w.IsCompleted));

        signals.Signal("q");

        var woken = await Task.WhenAll(waiters);
        Assert.All(woken, Assert.True);
        Assert.False(await signals.WaitAsync("q", TimeSpan.Zero, Ct)); // nothing latched: the waiters took it
    }

    [Fact]
    public async Task A_wait_times_out_on_the_given_clock()
    {
        var time = new FakeTimeProvider();
        var signals = new QueueWakeUpSignals(time);
        var wait = signals.WaitAsync("q", TimeSpan.FromSeconds(5), Ct);

        time.Advance(TimeSpan.FromSeconds(4));
        Assert.False(wait.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));

        Assert.False(await wait);
    }

    [Fact]
    public async Task SignalAll_wakes_every_queue_seen_and_Close_releases_waiters_and_ignores_later_signals()
    {
        var signals = new QueueWakeUpSignals();
        var a = signals.WaitAsync("a", Timeout.InfiniteTimeSpan, Ct);
        Assert.False(await signals.WaitAsync("b", TimeSpan.Zero, Ct)); // "b" is now known

        signals.SignalAll();

        Assert.True(await a);
        Assert.True(await signals.WaitAsync("b", TimeSpan.Zero, Ct));
        var pending = signals.WaitAsync("a", Timeout.InfiniteTimeSpan, Ct);
        signals.Close();
        Assert.False(await pending);
        signals.Signal("a");
        Assert.False(await signals.WaitAsync("a", Timeout.InfiniteTimeSpan, Ct));
    }

    [Fact]
    public async Task A_canceled_wait_throws_and_a_later_signal_is_latched_for_the_next_wait()
    {
        var signals = new QueueWakeUpSignals();
        using var cts = new CancellationTokenSource();
        var wait = signals.WaitAsync("q", Timeout.InfiniteTimeSpan, cts.Token);

        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait);
        signals.Signal("q");
        Assert.True(await signals.WaitAsync("q", TimeSpan.Zero, Ct));
    }
}
