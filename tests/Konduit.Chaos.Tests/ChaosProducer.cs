using System.Collections.Concurrent;
using System.Diagnostics;

namespace Konduit.Chaos.Tests;

/// <summary>
/// The test process's enqueuer. Keeps a backlog (so the workers are never idle and the completion rate measures
/// what they can drain), or offers a fixed rate (sustained_high_load), plus a trickle of single enqueues that goes
/// on through every fault. An acknowledgement is a call that returned: those ids must all be on the server later.
/// </summary>
internal sealed class ChaosProducer : IAsyncDisposable
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(50);
    private static readonly RetryPolicy FastRetry = new() { InitialDelay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromSeconds(1) };
    private static readonly byte[] Payload = new byte[64];

    private readonly ChaosTarget _target;
    private readonly long _backlog;
    private readonly ConcurrentQueue<Guid> _acknowledged = new();
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;
    private double _offeredRate;
    private int _errors;

    public ChaosProducer(ChaosTarget target, long backlog)
    {
        _target = target;
        _backlog = backlog;
    }

    public int Acknowledged => _acknowledged.Count;

    /// <summary>Enqueue calls that threw (not acknowledged: their tasks may or may not exist).</summary>
    public int Errors => Volatile.Read(ref _errors);

    public IReadOnlyCollection<Guid> AcknowledgedIds => [.. _acknowledged];

    public void Start() => _loop = Task.Run(async () =>
    {
        try
        {
            await LoopAsync();
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Stopped mid-call: that call is not acknowledged.
        }
    });

    /// <summary>Offer <paramref name="tasksPerSecond"/> whatever the backlog; 0 goes back to keeping the backlog.</summary>
    public void Offer(double tasksPerSecond) => Volatile.Write(ref _offeredRate, tasksPerSecond);

    public async Task StopAsync()
    {
        if (!_stop.IsCancellationRequested) await _stop.CancelAsync();
        if (_loop is not null) await _loop;
    }

    private static EnqueueRequest Request(string queue) =>
        new(queue, Payload) { MaxAttempts = 100, RetryPolicy = FastRetry };

    private async Task LoopAsync()
    {
        var stop = _stop.Token;
        var clock = Stopwatch.StartNew();
        var last = clock.Elapsed;
        var owed = 0.0;
        while (!stop.IsCancellationRequested)
        {
            await EnqueueAsync(1, stop);
            var rate = Volatile.Read(ref _offeredRate);
            var now = clock.Elapsed;
            if (rate > 0)
            {
                owed += rate * (now - last).TotalSeconds;
                var due = (int)owed;
                owed -= due;
                await EnqueueAsync(due, stop);
            }
            else
            {
                owed = 0;
                long? backlog;
                try
                {
                    backlog = await _target.BacklogAsync(stop);
                }
                catch (Exception) when (!stop.IsCancellationRequested)
                {
                    backlog = null; // the store is down: only the trickle goes on
                }
                if (backlog is { } b && b < _backlog) await EnqueueAsync((int)(_backlog - b), stop);
            }
            last = now;
            try
            {
                await Task.Delay(Tick, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task EnqueueAsync(int count, CancellationToken stop)
    {
        while (count > 0 && !stop.IsCancellationRequested)
        {
            var n = Math.Min(count, 500);
            count -= n;
            try
            {
                if (n == 1)
                {
                    var result = await _target.Store.EnqueueAsync(Request(_target.Queue), stop);
                    _acknowledged.Enqueue(result.TaskId);
                }
                else
                {
                    var requests = Enumerable.Range(0, n).Select(_ => Request(_target.Queue)).ToArray();
                    foreach (var result in await _target.Store.EnqueueManyAsync(requests, stop)) _acknowledged.Enqueue(result.TaskId);
                }
            }
            catch (Exception) when (!stop.IsCancellationRequested)
            {
                Interlocked.Increment(ref _errors);
                return;
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stop.Dispose();
    }
}
