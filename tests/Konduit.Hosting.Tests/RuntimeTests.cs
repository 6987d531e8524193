using System.Diagnostics;
using System.Text;
using System.Text.Json.Serialization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xunit;
using static Konduit.Hosting.Tests.TestKit;

namespace Konduit.Hosting.Tests;

public sealed record Email(string To, string Subject);

[JsonSerializable(typeof(Email))]
public sealed partial class TestJson : JsonSerializerContext;

public sealed class EmailHandler(HandlerBody body) : ITaskHandler<Email>
{
    public Task HandleAsync(Email payload, TaskContext context, CancellationToken cancellationToken)
    {
        context.Result = Encoding.UTF8.GetBytes("sent to " + payload.To);
        return body.Body(context, cancellationToken);
    }
}

/// <summary>
/// The worker runtime against a real store. Each store runs the same tests through a thin subclass; tests are
/// isolated by a unique queue name and each starts its own host.
/// </summary>
public abstract class RuntimeTests
{
    /// <summary>A store for one test, wrapped in a <see cref="TestStore"/>.</summary>
    protected abstract TestStore CreateStore();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Sweeper_purges_finished_tasks_when_PurgeFinishedAfter_is_set_and_leaves_the_rest()
    {
        var queue = NewQueue();
        var store = CreateStore();
        using var host = BuildHost(Config(queue, extra: ("Konduit:PurgeFinishedAfter", "00:00:00")), store, queue, (_, _) => Task.CompletedTask);
        await host.StartAsync(Ct);
        var client = host.Services.GetRequiredService<IKonduitClient>();

        var done = (await client.EnqueueAsync(client.CreateRequest(queue, [1]), Ct)).TaskId;
        var later = (await client.EnqueueAsync(client.CreateRequest(queue, [2]) with { RunAt = DateTimeOffset.UtcNow.AddHours(1) }, Ct)).TaskId;

        // The sweeper applies the retention through ApplyRetentionAsync, after the task ran.
        var retentionCallsAtStart = -1;
        await Eventually(async () =>
        {
            if (retentionCallsAtStart < 0)
            {
                try
                {
                    if ((await store.GetAsync(done, Ct)).State != TaskState.Succeeded) return false;
                }
                catch (TaskNotFoundException)
                {
                    return store.RetentionCalls > 0; // already run and purged by a sweep
                }
                retentionCallsAtStart = store.RetentionCalls;
            }
            return store.RetentionCalls > retentionCallsAtStart;
        }, "the task to run and a sweep after it");
        Assert.Equal(TimeSpan.Zero, store.LastRetention);
        if (store.Capabilities.RetentionGranularity == TimeSpan.Zero)
        {
            // A store that deletes row by row: the finished task is gone.
            await Assert.ThrowsAsync<TaskNotFoundException>(() => store.GetAsync(done, Ct));
        }
        else
        {
            // A store that drops history a unit at a time (Postgres: a UTC day) keeps a task finished moments ago until
            // its unit is past the retention; PostgresHistoryTests covers the drop itself.
            Assert.Equal(TaskState.Succeeded, (await store.GetAsync(done, Ct)).State);
        }
        Assert.Equal(TaskState.Pending, (await store.GetAsync(later, Ct)).State);
        await host.StopAsync(Ct);
    }

    [Fact]
    public async Task A_handler_past_its_execution_timeout_is_canceled_and_the_attempt_fails_then_retries()
    {
        var queue = NewQueue();
        var store = CreateStore();
        var tokenCanceled = 0;
        var attempts = 0;
        using var host = BuildHost(Config(queue, extra: ($"Konduit:Queues:{queue}:ExecutionTimeout", "00:00:00.300")), store, queue, async (ctx, ct) =>
        {
            Interlocked.Increment(ref attempts);
            if (ctx.Attempt >= 2) return;
            try
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
            catch (OperationCanceledException)
            {
                Interlocked.Increment(ref tokenCanceled);
                throw;
            }
        });
        await host.StartAsync(Ct);
        var client = host.Services.GetRequiredService<IKonduitClient>();

        var id = (await client.EnqueueAsync(client.CreateRequest(queue, [1]), Ct)).TaskId;

        var task = await WaitForStateAsync(store, id, TaskState.Succeeded);
        Assert.Equal(2, task.Attempts);
        var error = Assert.Single(task.Errors);
        Assert.Equal(1, error.Attempt);
        Assert.Contains(nameof(ExecutionTimeoutException), error.Message, StringComparison.Ordinal);
        Assert.Contains($"Konduit:Queues:{queue}:ExecutionTimeout", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, Volatile.Read(ref tokenCanceled));
        await host.StopAsync(Ct);
    }

    [Fact]
    public async Task A_handler_that_ignores_its_token_still_fails_at_the_execution_timeout()
    {
        var queue = NewQueue();
        var store = CreateStore();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var host = BuildHost(Config(queue,
                extra: [($"Konduit:Queues:{queue}:ExecutionTimeout", "00:00:00.300"), ($"Konduit:Queues:{queue}:Retry:InitialDelay", "01:00:00"), ($"Konduit:Queues:{queue}:Retry:MaxDelay", "01:00:00")]),
            store, queue, (_, _) => release.Task);
        await host.StartAsync(Ct);
        var client = host.Services.GetRequiredService<IKonduitClient>();

        var id = (await client.EnqueueAsync(client.CreateRequest(queue, [1]), Ct)).TaskId;

        // The hung handler keeps running, but its attempt is failed (retry in an hour) and its lease ends.
        var task = await WaitForAsync(store, id, t => t.State == TaskState.Pending && t.Errors.Count == 1, "the timed-out attempt to be failed");
        Assert.Contains(nameof(ExecutionTimeoutException), task.Errors[0].Message, StringComparison.Ordinal);
        Assert.True(task.RunAt > DateTimeOffset.UtcNow.AddMinutes(30), $"retried after the queue's backoff, not at once: {task.RunAt:O}");
        Assert.Null(task.LeaseExpiresAt);
        release.SetResult();
        await host.StopAsync(Ct);
    }

    [Fact]
    public async Task Handler_success_completes_the_task_with_its_result()
    {
        var queue = NewQueue();
        var store = CreateStore();
        var seen = new TaskCompletionSource<(Email?, int)>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var host = BuildHost(Config(queue), store, k => k.AddHandler<EmailHandler, Email>(queue, TestJson.Default.Email),
            s => s.AddSingleton(new HandlerBody((ctx, _) =>
            {
                seen.TrySetResult((ctx.GetPayload(TestJson.Default.Email), ctx.Attempt));
                return Task.CompletedTask;
            })));
        await host.StartAsync(Ct);
        var client = host.Services.GetRequiredService<IKonduitClient>();

        var enqueued = await client.EnqueueAsync(queue, new Email("a@example.com", "hi"), TestJson.Default.Email, cancellationToken: Ct);

        var (payload, attempt) = await Within(seen.Task, "the handler to run");
        Assert.Equal(new Email("a@example.com", "hi"), payload);
        Assert.Equal(1, attempt);
        var done = await WaitForStateAsync(store, enqueued.TaskId, TaskState.Succeeded);
        Assert.Equal("sent to a@example.com", Encoding.UTF8.GetString(done.Result!));
        Assert.Equal(1, done.Attempts);
        await host.StopAsync(Ct);
    }

    [Fact]
    public async Task Exception_is_retried_then_dead_lettered_with_the_exception_text()
    {
        var queue = NewQueue();
        var store = CreateStore();
        var calls = 0;
        using var host = BuildHost(Config(queue, extra: [($"Konduit:Queues:{queue}:MaxAttempts", "3")]), store, queue, (ctx, _) =>
        {
            Interlocked.Increment(ref calls);
            throw new InvalidOperationException($"boom on attempt {ctx.Attempt}");
        });
        await host.StartAsync(Ct);
        var client = host.Services.GetRequiredService<IKonduitClient>();

        var id = (await client.EnqueueAsync(client.CreateRequest(queue, [1]), Ct)).TaskId;

        var failed = await WaitForStateAsync(store, id, TaskState.Failed);
        Assert.Equal(3, failed.Attempts);
        Assert.Equal(3, failed.MaxAttempts);
        Assert.Equal(3, calls);
        Assert.Equal(3, failed.Errors.Count);
        Assert.Contains("System.InvalidOperationException: boom on attempt 1", failed.Errors[0].Message);
        Assert.Contains("boom on attempt 3", failed.Errors[2].Message);
        await host.StopAsync(Ct);
    }

    [Fact]
    public async Task NonRetryableException_dead_letters_on_the_first_attempt()
    {
        var queue = NewQueue();
        var store = CreateStore();
        using var host = BuildHost(Config(queue), store, queue, (_, _) => throw new NonRetryableException("bad input"));
        await host.StartAsync(Ct);
        var client = host.Services.GetRequiredService<IKonduitClient>();

        var id = (await client.EnqueueAsync(client.CreateRequest(queue, [1]), Ct)).TaskId;

        var failed = await WaitForStateAsync(store, id, TaskState.Failed);
        Assert.Equal(1, failed.Attempts);
        Assert.Contains("bad input", Assert.Single(failed.Errors).Message);
        await host.StopAsync(Ct);
    }

    [Fact]
    public async Task Lease_loss_cancels_the_handler_and_the_task_runs_again()
    {
        var queue = NewQueue();
        var store = CreateStore();
        var firstCanceled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var firstStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var config = Config(queue, extra: [($"Konduit:Queues:{queue}:Concurrency", "1"), ($"Konduit:Queues:{queue}:LeaseSeconds", "1")]);
        using var host = BuildHost(config, store, queue, async (ctx, ct) =>
        {
            if (ctx.Attempt > 1) return;
            await BlockUntilCanceled(firstStarted, firstCanceled, ct);
        });
        using var metrics = new MetricCollector(host);
        await host.StartAsync(Ct);
        var client = host.Services.GetRequiredService<IKonduitClient>();

        store.StallHeartbeats();
        var id = (await client.EnqueueAsync(client.CreateRequest(queue, [1]), Ct)).TaskId;
        await Within(firstStarted.Task, "the first attempt to start");
        // The heartbeat is stalled, so the lease expires and the sweeper returns the task to the queue. The
        // worker's only slot is still busy, so the task stays Pending.
        await WaitForStateAsync(store, id, TaskState.Pending);
        Assert.False(firstCanceled.Task.IsCompleted);

        store.ResumeHeartbeats(); // the stalled heartbeat reaches the store and is refused: lease lost
        await Within(firstCanceled.Task, "the handler's token to fire on lease loss");

        var done = await WaitForStateAsync(store, id, TaskState.Succeeded);
        Assert.Equal(2, done.Attempts);
        Assert.Contains(done.Errors, e => e.Attempt == 1);
        await host.StopAsync(Ct);
        Assert.Equal(1, metrics.Sum("konduit.tasks.lease_lost", queue));
        Assert.True(metrics.Sum("konduit.tasks.reclaimed") >= 1);
        Assert.Equal(1, metrics.Sum("konduit.tasks.completed", queue));
    }

    [Fact]
    public async Task Canceling_a_running_task_cancels_its_handler()
    {
        var queue = NewQueue();
        var store = CreateStore();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var canceled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var host = BuildHost(Config(queue, extra: [($"Konduit:Queues:{queue}:LeaseSeconds", "1")]), store, queue, async (_, ct) =>
        {
            await BlockUntilCanceled(started, canceled, ct);
        });
        using var metrics = new MetricCollector(host);
        await host.StartAsync(Ct);
        var client = host.Services.GetRequiredService<IKonduitClient>();
        var id = (await client.EnqueueAsync(client.CreateRequest(queue, [1]), Ct)).TaskId;
        await Within(started.Task, "the handler to start");

        Assert.True(await client.Store.CancelAsync(id, Ct));

        await Within(canceled.Task, "the handler's token to fire after the cancel");
        await host.StopAsync(Ct);
        var snapshot = await store.GetAsync(id, Ct);
        Assert.Equal(TaskState.Canceled, snapshot.State);
        Assert.Empty(snapshot.Errors);
        Assert.Equal(1, metrics.Sum("konduit.tasks.lease_lost", queue));
    }

    [Fact]
    public async Task Shutdown_cancels_a_slow_handler_after_the_grace_period_and_leaves_its_lease_to_expire()
    {
        var queue = NewQueue();
        var store = CreateStore();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var canceled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var config = Config(queue, extra: [("Konduit:ShutdownGracePeriod", "00:00:00.300"), ($"Konduit:Queues:{queue}:LeaseSeconds", "1")]);
        using var host = BuildHost(config, store, queue, async (_, ct) =>
        {
            await BlockUntilCanceled(started, canceled, ct);
        });
        await host.StartAsync(Ct);
        var client = host.Services.GetRequiredService<IKonduitClient>();
        var id = (await client.EnqueueAsync(client.CreateRequest(queue, [1]), Ct)).TaskId;
        await Within(started.Task, "the handler to start");

        await host.StopAsync(Ct);

        Assert.True(canceled.Task.IsCompleted, "the handler's token fired when the grace period ended");
        var snapshot = await store.GetAsync(id, Ct);
        Assert.Equal(TaskState.Running, snapshot.State); // neither completed nor failed
        Assert.Empty(snapshot.Errors);
        // Nobody heartbeats it any more: the lease expires and a sweep returns the task to the queue.
        await Eventually(async () => (await store.ReclaimExpiredAsync(Ct)).Count == 1, "the abandoned lease to expire and be reclaimed");
        snapshot = await store.GetAsync(id, Ct);
        Assert.Equal(TaskState.Pending, snapshot.State);
        Assert.Equal(1, snapshot.Attempts);
    }

    [Fact]
    public async Task Shutdown_lets_a_running_handler_finish_within_the_grace_period_and_completes_it()
    {
        var queue = NewQueue();
        var store = CreateStore();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var sawCancellation = false;
        using var host = BuildHost(Config(queue), store, queue, async (_, ct) =>
        {
            started.TrySetResult();
            await release.Task;
            sawCancellation = ct.IsCancellationRequested;
        });
        await host.StartAsync(Ct);
        var client = host.Services.GetRequiredService<IKonduitClient>();
        var id = (await client.EnqueueAsync(client.CreateRequest(queue, [1]), Ct)).TaskId;
        var second = (await client.EnqueueAsync(client.CreateRequest(queue, [2]), Ct)).TaskId;
        await Within(started.Task, "the handler to start");

        var stopping = host.StopAsync(Ct);
        Assert.False(stopping.IsCompleted);
        release.TrySetResult();
        await Within(stopping, "the host to stop");

        Assert.False(sawCancellation);
        Assert.Equal(TaskState.Succeeded, (await store.GetAsync(id, Ct)).State);
        Assert.NotEqual(TaskState.Running, (await store.GetAsync(second, Ct)).State);
    }

    [Fact]
    public async Task Concurrency_limit_is_respected()
    {
        var queue = NewQueue();
        var store = CreateStore();
        var running = 0;
        var max = 0;
        var finished = 0;
        const int tasks = 24;
        using var host = BuildHost(Config(queue, extra: [($"Konduit:Queues:{queue}:Concurrency", "3")]), store, queue, async (_, ct) =>
        {
            var now = Interlocked.Increment(ref running);
            InterlockedMax(ref max, now);
            await Task.Delay(5, ct); // simulated work, so handlers overlap
            Interlocked.Decrement(ref running);
            Interlocked.Increment(ref finished);
        });
        using var metrics = new MetricCollector(host);
        var client = host.Services.GetRequiredService<IKonduitClient>();
        await client.EnqueueManyAsync(Enumerable.Range(0, tasks).Select(i => client.CreateRequest(queue, [(byte)i])).ToArray(), Ct);
        await host.StartAsync(Ct);

        await Eventually(() => metrics.Sum("konduit.tasks.completed", queue) == tasks, "all tasks to complete");
        await host.StopAsync(Ct);
        Assert.Equal(tasks, finished);
        Assert.Equal(3, max);
        // The in-flight gauge never went above the limit either.
        AssertInFlightPeakedAtMostAndEndedAtZero(metrics, 3);
    }

    [Fact]
    public async Task A_queue_fetching_one_task_at_a_time_completes_each_task_and_leases_the_slots_next_in_one_call()
    {
        // Issue 15, complete-and-lease-next: with MaxBatchSize 1 a finished task's completion leases its slot's next
        // task, which runs on that slot without the lease loop. Concurrency, the gauges and the counts stay exact.
        var queue = NewQueue();
        var store = CreateStore();
        var running = 0;
        var max = 0;
        const int tasks = 40;
        using var host = BuildHost(
            Config(queue, extra:
            [
                ($"Konduit:Queues:{queue}:Concurrency", "3"),
                ($"Konduit:Queues:{queue}:MaxBatchSize", "1"),
            ]),
            store, queue, async (_, ct) =>
            {
                InterlockedMax(ref max, Interlocked.Increment(ref running));
                await Task.Yield();
                Interlocked.Decrement(ref running);
            });
        using var metrics = new MetricCollector(host);
        var client = host.Services.GetRequiredService<IKonduitClient>();
        await client.EnqueueManyAsync(Enumerable.Range(0, tasks).Select(i => client.CreateRequest(queue, [(byte)i])).ToArray(), Ct);
        await host.StartAsync(Ct);

        await Eventually(() => metrics.Sum("konduit.tasks.completed", queue) == tasks, "all tasks to complete");
        await host.StopAsync(Ct);

        Assert.Equal(tasks, store.Completed);
        Assert.Equal(tasks, store.Leased); // each task leased once
        // Every completion went through the one call (the queue never stopped leasing before the last one), and most
        // tasks came from it rather than from the lease loop.
        Assert.Equal(tasks, store.CompleteAndLeaseCalls);
        Assert.Equal(0, store.CompleteCalls + store.CompleteManyCalls);
        Assert.True(store.ChainLeased >= tasks / 2, $"{store.ChainLeased} of {tasks} tasks leased by a completion");
        Assert.True(max <= 3, $"{max} handlers ran at once");
        Assert.True(store.MaxUnrecorded <= QueueWorker.MaxOutstanding(3), $"{store.MaxUnrecorded} leased tasks unrecorded at once");
        Assert.Equal(tasks, metrics.Sum("konduit.tasks.leased", queue));
        AssertInFlightPeakedAtMostAndEndedAtZero(metrics, 3);
    }

    // The in-flight gauge, replayed from its measurements: never above the limit, back at zero at the end.
    private static void AssertInFlightPeakedAtMostAndEndedAtZero(MetricCollector metrics, int limit)
    {
        var inFlight = 0.0;
        var gaugeMax = 0.0;
        foreach (var m in metrics.Measurements.Where(m => m.Instrument == "konduit.tasks.in_flight"))
            gaugeMax = Math.Max(gaugeMax, inFlight += m.Value);
        Assert.True(gaugeMax <= limit, $"in-flight peaked at {gaugeMax}");
        Assert.Equal(0, inFlight);
    }

    [Fact]
    public async Task A_queue_fetching_one_task_at_a_time_leases_no_next_task_once_it_stopped()
    {
        var queue = NewQueue();
        var store = CreateStore();
        var logs = new LogCollector();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var host = BuildHost(
            Config(queue, extra:
            [
                ($"Konduit:Queues:{queue}:Concurrency", "1"),
                ($"Konduit:Queues:{queue}:MaxBatchSize", "1"),
            ]),
            store, k => k.AddHandler<DelegateHandler>(queue), s =>
            {
                s.AddSingleton(new HandlerBody(async (_, _) =>
                {
                    started.TrySetResult();
                    await release.Task;
                }));
                s.AddLogging(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(logs));
            });
        var client = host.Services.GetRequiredService<IKonduitClient>();
        var first = (await client.EnqueueAsync(client.CreateRequest(queue, [1]), Ct)).TaskId;
        await host.StartAsync(Ct);
        await Within(started.Task, "the handler to start");
        var waiting = (await client.EnqueueAsync(client.CreateRequest(queue, [2]), Ct)).TaskId;

        var stopping = host.StopAsync(Ct);
        await Eventually(() => logs.Entries.Any(e => e.EventId == WorkerStoppingEventId && e.Category == "Konduit.Hosting.QueueWorker"),
            "the worker to stop leasing");
        release.TrySetResult();
        await Within(stopping, "the host to stop");

        // The finished task is completed on its own; the waiting one is not leased by that completion.
        Assert.Equal(TaskState.Succeeded, (await store.GetAsync(first, Ct)).State);
        Assert.Equal(0, store.CompleteAndLeaseCalls);
        Assert.Equal(TaskState.Pending, (await store.GetAsync(waiting, Ct)).State);
        Assert.Equal(1, store.Leased);
    }

    [Fact]
    public async Task A_complete_and_lease_call_the_store_cannot_take_falls_back_to_the_completion_alone()
    {
        var queue = NewQueue();
        var store = CreateStore();
        store.FaultCompletions(1);
        using var host = BuildHost(
            Config(queue, extra:
            [
                ($"Konduit:Queues:{queue}:Concurrency", "1"),
                ($"Konduit:Queues:{queue}:MaxBatchSize", "1"),
            ]),
            store, queue, (_, _) => Task.CompletedTask);
        var client = host.Services.GetRequiredService<IKonduitClient>();
        var ids = (await client.EnqueueManyAsync([client.CreateRequest(queue, [1]), client.CreateRequest(queue, [2])], Ct)).Select(r => r.TaskId).ToArray();
        await host.StartAsync(Ct);

        await Eventually(() => store.Completed == 2, "both tasks to complete");
        await host.StopAsync(Ct);

        foreach (var id in ids) Assert.Equal(TaskState.Succeeded, (await store.GetAsync(id, Ct)).State);
        Assert.Equal(2, store.Leased);
        Assert.True(store.CompleteAndLeaseCalls >= 1, "the first completion tried the one call");
    }

    [Fact]
    public async Task A_queue_leasing_one_task_per_call_keeps_several_lease_calls_in_flight()
    {
        // Issue 15: with MaxBatchSize 1 one lease loop kept a single call in flight, so 24 handlers drained at most one
        // task per lease round trip. Every lease call is held here, so the calls the worker makes at once are counted.
        var queue = NewQueue();
        var store = CreateStore();
        store.StallLeases();
        using var host = BuildHost(
            Config(queue, extra:
            [
                ($"Konduit:Queues:{queue}:Concurrency", "24"),
                ($"Konduit:Queues:{queue}:MaxBatchSize", "1"),
            ]),
            store, queue, (_, _) => Task.CompletedTask);
        var client = host.Services.GetRequiredService<IKonduitClient>();
        await client.EnqueueManyAsync(Enumerable.Range(0, 40).Select(i => client.CreateRequest(queue, [(byte)i])).ToArray(), Ct);
        await host.StartAsync(Ct);

        await Eventually(() => store.LeaseCallsInFlight == 4, "four lease calls in flight at once (the default for 24 handlers leasing one task each)");
        store.ResumeLeases();
        await Eventually(() => store.Completed == 40, "every task to complete");
        await host.StopAsync(Ct);
        Assert.Equal(4, store.MaxLeaseCallsInFlight);
        Assert.Equal(40, store.Leased); // each task leased once
    }

    [Fact]
    public async Task A_partial_batch_waits_while_another_lease_call_is_in_flight_and_goes_as_a_full_batch()
    {
        // Issue 15, batched drain: with two lease loops, the loop woken by the first freed slot leased that one task
        // while the other loop's call was in flight, so on Postgres half the lease calls carried a single task (a
        // round trip that costs the server about as much as a full batch).
        using var rig = await PartialBatchRig.StartAsync(this);
        rig.Finish.Release(4);
        await Eventually(() => rig.Store.LeaseCallsInFlight == 2, "a second lease call");
        var requests = rig.Store.LeaseRequests;
        Assert.Equal(1, requests[^2]);
        Assert.Equal(5, requests[^1]); // the second freed slot waited for a full batch instead of going alone
        await rig.DrainAsync();
    }

    [Fact]
    public async Task A_partial_batch_waiting_on_another_lease_call_is_leased_when_that_call_returns()
    {
        // The other side of Nagle's rule: a partial batch waits for the call in flight, not for a full batch, so a slot
        // of a slow handler stays idle for at most one lease round trip.
        using var rig = await PartialBatchRig.StartAsync(this);
        rig.Store.ResumeLeases();
        // No more slots free up: the waiting loop leases its one slot as soon as the call in flight has returned.
        await Eventually(() => rig.Store.LeaseRequests.Count == rig.CallsBeforeSecondSlot + 1, "the waiting slot's lease call");
        Assert.Equal(1, rig.Store.LeaseRequests[^1]);
        await rig.DrainAsync();
    }

    /// <summary>
    /// Two lease loops, 10 slots, batches of 5, 40 tasks, and handlers that finish one at a time on the test's signal,
    /// so which lease call asks for how many tasks is exact. Started, it has every slot running a handler, then holds
    /// lease calls: the first freed slot's call (for 1 task) is in flight, and the other loop has taken the second
    /// freed slot.
    /// </summary>
    private sealed class PartialBatchRig : IDisposable
    {
        private const int Tasks = 40;
        private readonly IHost _host;

        private PartialBatchRig(IHost host, TestStore store)
        {
            _host = host;
            Store = store;
        }

        public TestStore Store { get; }

        /// <summary>Each release lets one waiting handler finish.</summary>
        public SemaphoreSlim Finish { get; } = new(0);

        /// <summary>Lease calls made before the second slot was freed (the held call included).</summary>
        public int CallsBeforeSecondSlot { get; private set; }

        public static async Task<PartialBatchRig> StartAsync(RuntimeTests tests)
        {
            var queue = NewQueue();
            var store = tests.CreateStore();
            var started = 0;
            PartialBatchRig? rig = null;
            var host = BuildHost(
                Config(queue, extra:
                [
                    ($"Konduit:Queues:{queue}:Concurrency", "10"),
                    ($"Konduit:Queues:{queue}:MaxBatchSize", "5"),
                    ($"Konduit:Queues:{queue}:LeaseCallsInFlight", "2"),
                    ($"Konduit:Queues:{queue}:LeaseSeconds", "120"),
                ]),
                store, queue, async (_, ct) =>
                {
                    Interlocked.Increment(ref started);
                    await rig!.Finish.WaitAsync(ct);
                });
            rig = new PartialBatchRig(host, store);
            var worker = host.Services.GetServices<IHostedService>().OfType<QueueWorker>().Single();
            var client = host.Services.GetRequiredService<IKonduitClient>();
            await client.EnqueueManyAsync(Enumerable.Range(0, Tasks).Select(i => client.CreateRequest(queue, [(byte)i])).ToArray(), Ct);
            await host.StartAsync(Ct);
            await Eventually(() => Volatile.Read(ref started) == 10 && store.LeaseCallsInFlight == 0, "every slot to run a handler");

            store.StallLeases();
            rig.Finish.Release();
            // No other call in flight: the one free slot is leased for at once (no added latency when the worker is idle).
            await Eventually(() => store.LeaseCallsInFlight == 1, "a lease call for the first freed slot");
            rig.CallsBeforeSecondSlot = store.LeaseRequests.Count;
            rig.Finish.Release();
            await Eventually(() => worker.FreeSlots == 0, "the other lease loop to take the second freed slot");
            return rig;
        }

        /// <summary>Lets every call and handler go, and checks that each task was leased once and completed.</summary>
        public async Task DrainAsync()
        {
            Store.ResumeLeases();
            Finish.Release(Tasks);
            await Eventually(() => Store.Completed == Tasks, "every task to complete");
            await _host.StopAsync(Ct);
            Assert.Equal(Tasks, Store.Leased);
        }

        public void Dispose()
        {
            _host.Dispose();
            Finish.Dispose();
        }
    }

    [Theory]
    [InlineData(8, 100, null, 1)]
    [InlineData(24, 1, null, 4)]
    [InlineData(3, 1, null, 3)]
    [InlineData(200, 100, null, 2)]
    [InlineData(24, 1, 12, 12)]
    public void Lease_calls_in_flight_default_to_one_per_batch_of_the_concurrency_at_most_four(int concurrency, int maxBatch, int? configured, int expected) =>
        Assert.Equal(expected, new KonduitQueueOptions { Concurrency = concurrency, MaxBatchSize = maxBatch, LeaseCallsInFlight = configured }.EffectiveLeaseCallsInFlight);

    [Fact]
    public async Task Leasing_pauses_while_completions_lag_instead_of_taking_the_whole_queue()
    {
        // Handler slots are freed before the outcome is recorded (completions are batched). A store whose
        // completions lag must stop the lease loop at a bound: before, it leased the whole queue, whose leases then
        // expired unrecorded (tasks ran twice), and on Postgres each extra running row slowed the next batch.
        var queue = NewQueue();
        var store = CreateStore();
        const int concurrency = 4;
        var bound = QueueWorker.MaxOutstanding(concurrency);
        var tasks = bound * 2;
        var logs = new LogCollector();
        store.StallCompletions();
        using var host = BuildHost(
            Config(queue, extra:
            [
                ($"Konduit:Queues:{queue}:Concurrency", concurrency.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                ($"Konduit:Queues:{queue}:MaxBatchSize", "50"),
                // Long enough that no lease expires while completions are stalled: the test waits on events only.
                ($"Konduit:Queues:{queue}:LeaseSeconds", "120"),
            ]),
            store, k => k.AddHandler<DelegateHandler>(queue), s =>
            {
                s.AddSingleton(new HandlerBody((_, _) => Task.CompletedTask));
                s.AddLogging(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(logs));
            });
        var client = host.Services.GetRequiredService<IKonduitClient>();
        await client.EnqueueManyAsync(Enumerable.Range(0, tasks).Select(i => client.CreateRequest(queue, [(byte)i])).ToArray(), Ct);
        await host.StartAsync(Ct);

        await Eventually(() => logs.Has(LeasingPausedEventId), "the worker to pause leasing while no completion is recorded");
        // Every permit is held by a task that ran and waits for its completion; nothing else was leased.
        Assert.Equal(bound, store.Leased);
        Assert.Equal(0, store.Completed);

        store.ResumeCompletions();
        await Eventually(() => store.Completed == tasks, "every task to complete once completions flow again");
        await host.StopAsync(Ct);
        Assert.Equal(tasks, store.Leased); // each task leased once: no lease expired unrecorded
        Assert.True(store.MaxUnrecorded <= bound, $"{store.MaxUnrecorded} tasks were leased without a recorded outcome (bound {bound})");
    }

    [Fact]
    public async Task A_completion_that_fails_transiently_is_retried_and_the_task_does_not_run_again()
    {
        // Issue 13 item 2: a completion the store could not take (connection cut, restart) was dropped; the lease
        // then expired and the finished task ran again.
        var queue = NewQueue();
        var store = CreateStore();
        var runs = 0;
        using var host = BuildHost(Config(queue), store, queue, (_, _) =>
        {
            Interlocked.Increment(ref runs);
            return Task.CompletedTask;
        });
        await host.StartAsync(Ct);
        var client = host.Services.GetRequiredService<IKonduitClient>();
        store.FaultCompletions(2);

        var id = (await client.EnqueueAsync(client.CreateRequest(queue, [1]), Ct)).TaskId;

        var done = await WaitForStateAsync(store, id, TaskState.Succeeded);
        await host.StopAsync(Ct);
        Assert.Equal(1, done.Attempts);
        Assert.Empty(done.Errors);
        Assert.Equal(1, runs);
    }

    [Fact]
    public async Task Heartbeats_go_on_until_the_outcome_is_recorded_so_a_slow_completion_keeps_its_lease()
    {
        // Issue 13 item 2: heartbeats stopped when the handler returned, so a completion slower than the lease
        // found the lease expired and the task was reclaimed and run again.
        var queue = NewQueue();
        var store = CreateStore();
        var runs = 0;
        var ran = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var host = BuildHost(Config(queue, extra: [($"Konduit:Queues:{queue}:LeaseSeconds", "1")]), store, queue, (_, _) =>
        {
            Interlocked.Increment(ref runs);
            ran.TrySetResult();
            return Task.CompletedTask;
        });
        await host.StartAsync(Ct);
        var client = host.Services.GetRequiredService<IKonduitClient>();
        store.StallCompletions();

        var id = (await client.EnqueueAsync(client.CreateRequest(queue, [1]), Ct)).TaskId;
        await Within(ran.Task, "the handler to run");
        var firstExpiry = (await store.GetAsync(id, Ct)).LeaseExpiresAt!.Value;
        // The store's clock passes the lease the task was given while its completion is stalled.
        await Eventually(() => DateTimeOffset.UtcNow > firstExpiry + TimeSpan.FromMilliseconds(500), "the first lease period to pass");
        await store.ReclaimExpiredAsync(Ct);
        var waiting = await store.GetAsync(id, Ct);
        Assert.Equal(TaskState.Running, waiting.State);
        Assert.Empty(waiting.Errors);
        Assert.True(waiting.LeaseExpiresAt > firstExpiry, "the lease was renewed after the handler returned");

        store.ResumeCompletions();
        var done = await WaitForStateAsync(store, id, TaskState.Succeeded);
        await host.StopAsync(Ct);
        Assert.Equal(1, done.Attempts);
        Assert.Empty(done.Errors);
        Assert.Equal(1, runs);
    }

    [Fact]
    public async Task A_refused_completion_is_logged_as_refused_not_as_a_canceled_handler()
    {
        var queue = NewQueue();
        var store = CreateStore();
        var logs = new LogCollector();
        var ran = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var host = BuildHost(Config(queue), store, k => k.AddHandler<DelegateHandler>(queue), s =>
        {
            s.AddSingleton(new HandlerBody((_, _) =>
            {
                ran.TrySetResult();
                return Task.CompletedTask;
            }));
            s.AddLogging(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(logs));
        });
        using var metrics = new MetricCollector(host);
        await host.StartAsync(Ct);
        var client = host.Services.GetRequiredService<IKonduitClient>();
        store.StallCompletions();

        var id = (await client.EnqueueAsync(client.CreateRequest(queue, [1]), Ct)).TaskId;
        await Within(ran.Task, "the handler to run");
        Assert.True(await store.CancelAsync(id, Ct)); // the lease is gone before the completion reaches the store
        store.ResumeCompletions();

        await Eventually(() => logs.Has(OutcomeRefusedEventId), "the refused outcome to be logged");
        await host.StopAsync(Ct);
        Assert.False(logs.Has(LeaseLostWhileRunningEventId), "a finished handler was reported as canceled");
        Assert.Equal(TaskState.Canceled, (await store.GetAsync(id, Ct)).State);
        Assert.Equal(1, metrics.Sum("konduit.tasks.lease_lost", queue));
        Assert.Equal(0, metrics.Sum("konduit.tasks.completed", queue));
    }

    [Fact]
    public async Task A_failure_the_store_could_not_record_at_first_is_retried_and_NonRetryableException_is_honoured()
    {
        // Issue 13 item 6: a FailAsync that threw was swallowed; the task was later reclaimed as "lease expired",
        // the real error was lost and NonRetryableException was ignored.
        var queue = NewQueue();
        var store = CreateStore();
        var runs = 0;
        using var host = BuildHost(Config(queue), store, queue, (_, _) =>
        {
            Interlocked.Increment(ref runs);
            throw new NonRetryableException("bad input");
        });
        await host.StartAsync(Ct);
        var client = host.Services.GetRequiredService<IKonduitClient>();
        store.FaultFails(2);

        var id = (await client.EnqueueAsync(client.CreateRequest(queue, [1]), Ct)).TaskId;

        var failed = await WaitForStateAsync(store, id, TaskState.Failed);
        await host.StopAsync(Ct);
        Assert.Equal(1, failed.Attempts);
        Assert.Contains("bad input", Assert.Single(failed.Errors).Message);
        Assert.Equal(1, runs);
        Assert.Equal(3, store.FailCalls);
    }

    [Fact]
    public async Task A_failure_whose_error_text_the_store_refuses_is_still_recorded_with_the_real_error()
    {
        // Issue 13 item 6: an error text the store cannot hold (a NUL character, refused by PostgreSQL) must not
        // lose the failure.
        var queue = NewQueue();
        var store = CreateStore();
        using var host = BuildHost(Config(queue), store, queue, (_, _) => throw new NonRetryableException("bad\0input"));
        await host.StartAsync(Ct);
        var client = host.Services.GetRequiredService<IKonduitClient>();

        var id = (await client.EnqueueAsync(client.CreateRequest(queue, [1]), Ct)).TaskId;

        var failed = await WaitForStateAsync(store, id, TaskState.Failed);
        await host.StopAsync(Ct);
        Assert.Equal(1, failed.Attempts);
        var error = Assert.Single(failed.Errors).Message;
        Assert.Contains("NonRetryableException", error);
        Assert.Contains("bad", error);
        Assert.Contains("input", error);
    }

    [Fact]
    public async Task Running_tasks_are_renewed_with_one_HeartbeatMany_per_interval_not_one_call_per_task()
    {
        var queue = NewQueue();
        var store = CreateStore();
        const int tasks = 6;
        var started = 0;
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var host = BuildHost(Config(queue, extra: [($"Konduit:Queues:{queue}:Concurrency", "8"), ($"Konduit:Queues:{queue}:LeaseSeconds", "1")]),
            store, queue, async (_, _) =>
            {
                Interlocked.Increment(ref started);
                await release.Task;
            });
        await host.StartAsync(Ct);
        var client = host.Services.GetRequiredService<IKonduitClient>();
        var ids = (await client.EnqueueManyAsync(Enumerable.Range(0, tasks).Select(i => client.CreateRequest(queue, [(byte)i])).ToArray(), Ct))
            .Select(r => r.TaskId).ToArray();
        await Eventually(() => Volatile.Read(ref started) == tasks, "every handler to start");
        var beatsBefore = store.HeartbeatManyCalls;
        var expiries = new List<DateTimeOffset>();
        foreach (var id in ids) expiries.Add((await store.GetAsync(id, Ct)).LeaseExpiresAt!.Value);

        // Three more intervals (1/3 s each) with every handler still running.
        await Eventually(() => store.HeartbeatManyCalls >= beatsBefore + 3, "three more heartbeat intervals");
        var beats = store.HeartbeatManyCalls - beatsBefore;
        for (var i = 0; i < tasks; i++)
        {
            var task = await store.GetAsync(ids[i], Ct);
            Assert.Equal(TaskState.Running, task.State);
            Assert.True(task.LeaseExpiresAt > expiries[i], $"task {i}'s lease was renewed");
        }
        release.TrySetResult();
        foreach (var id in ids) await WaitForStateAsync(store, id, TaskState.Succeeded);
        await host.StopAsync(Ct);
        Assert.Equal(0, store.HeartbeatCalls); // no per-task heartbeat from the runtime
        TestContext.Current.TestOutputHelper?.WriteLine($"{tasks} running tasks: {beats} HeartbeatMany calls over {beats} intervals");
    }

    [Fact]
    public async Task A_registered_ILeaseRenewer_replaces_the_store_heartbeat_and_learns_when_each_lease_starts_and_is_recorded()
    {
        var queue = NewQueue();
        var store = CreateStore();
        var renewer = new RecordingRenewer();
        using var host = BuildHost(Config(queue, extra: [($"Konduit:Queues:{queue}:LeaseSeconds", "1")]), store,
            k => k.AddHandler<DelegateHandler>(queue), s =>
            {
                s.AddSingleton<ILeaseRenewer>(renewer);
                s.AddSingleton(new HandlerBody((ctx, _) =>
                {
                    // While the handler runs the lease is tracked and not yet released.
                    Assert.Contains(ctx.TaskId, renewer.Tracked);
                    Assert.DoesNotContain(ctx.TaskId, renewer.Released);
                    return Task.CompletedTask;
                }));
            });
        await host.StartAsync(Ct);
        var client = host.Services.GetRequiredService<IKonduitClient>();

        var id = (await client.EnqueueAsync(client.CreateRequest(queue, [1]), Ct)).TaskId;

        await WaitForStateAsync(store, id, TaskState.Succeeded);
        await Eventually(() => renewer.Released.Contains(id), "the lease to be released once the completion is recorded");
        await host.StopAsync(Ct);
        Assert.Equal(new[] { id }, renewer.Tracked);
        Assert.Equal(0, store.HeartbeatManyCalls + store.HeartbeatCalls);
    }

    /// <summary>An <see cref="ILeaseRenewer"/> that renews nothing and records what the worker told it.</summary>
    private sealed class RecordingRenewer : ILeaseRenewer
    {
        public System.Collections.Concurrent.ConcurrentQueue<Guid> TrackedQueue { get; } = new();
        public System.Collections.Concurrent.ConcurrentQueue<Guid> ReleasedQueue { get; } = new();
        public Guid[] Tracked => [.. TrackedQueue];
        public Guid[] Released => [.. ReleasedQueue];

        public void Track(TrackedLease lease) => TrackedQueue.Enqueue(lease.TaskId);

        public void Release(TrackedLease lease) => ReleasedQueue.Enqueue(lease.TaskId);
    }

    /// <summary>The id of <c>Log.OutcomeRefused</c>: the handler finished, but its lease was lost before the outcome was recorded.</summary>
    private const int OutcomeRefusedEventId = 19;

    /// <summary>The id of <c>Log.LeaseLost</c>: the lease was lost while the handler ran, so it was canceled.</summary>
    private const int LeaseLostWhileRunningEventId = 14;

    /// <summary>The id of <c>Log.LeasingPaused</c>.</summary>
    private const int LeasingPausedEventId = 18;

    // Log.WorkerStopping: logged once the lease loop has ended at shutdown (the host's own "stopping" has id 3 too: match the category).
    private const int WorkerStoppingEventId = 3;

    [Fact]
    public async Task Metrics_are_emitted_with_queue_and_store_tags()
    {
        var queue = NewQueue();
        var store = CreateStore();
        using var host = BuildHost(Config(queue, extra: [($"Konduit:Queues:{queue}:MaxAttempts", "2")]), store, queue, (ctx, _) =>
            ctx.Payload.Span[0] switch
            {
                0 => Task.CompletedTask,
                1 => throw new NonRetryableException("permanent"),
                _ => ctx.Attempt == 1 ? throw new InvalidOperationException("transient") : Task.CompletedTask,
            });
        using var metrics = new MetricCollector(host);
        await host.StartAsync(Ct);
        var client = host.Services.GetRequiredService<IKonduitClient>();

        var ids = new List<Guid>();
        foreach (byte kind in new byte[] { 0, 1, 2 })
            ids.Add((await client.EnqueueAsync(client.CreateRequest(queue, [kind]), Ct)).TaskId);
        await Eventually(() => metrics.Sum("konduit.tasks.completed", queue) == 2 && metrics.Sum("konduit.tasks.failed", queue) == 1,
            "two completions and one dead letter");
        await host.StopAsync(Ct);

        Assert.Equal(3, metrics.Sum("konduit.tasks.enqueued", queue));
        Assert.Equal(4, metrics.Sum("konduit.tasks.leased", queue));
        Assert.Equal(1, metrics.Sum("konduit.tasks.retried", queue));
        Assert.Equal(4, metrics.Count("konduit.task.duration", queue));
        Assert.Equal(4, metrics.Count("konduit.task.queue_wait", queue));
        Assert.Equal(0, metrics.Sum("konduit.tasks.in_flight", queue));
        Assert.All(metrics.Measurements.Where(m => m.Tags.ContainsKey("queue")), m => Assert.Equal(store.Name, m.Tags["store"]));
    }

    [Fact]
    public async Task Spans_are_emitted_and_the_execution_links_to_the_enqueue()
    {
        var queue = NewQueue();
        var store = CreateStore();
        using var activities = new ActivityCollector(queue);
        using var host = BuildHost(Config(queue), store, queue, (_, _) => Task.CompletedTask);
        await host.StartAsync(Ct);
        var client = host.Services.GetRequiredService<IKonduitClient>();

        var id = (await client.EnqueueAsync(client.CreateRequest(queue, [1]), Ct)).TaskId;
        await WaitForStateAsync(store, id, TaskState.Succeeded);
        await Eventually(() => activities.Activities.Any(a => a.Kind == ActivityKind.Consumer), "the execution span to end");
        await host.StopAsync(Ct);

        var enqueue = Assert.Single(activities.Activities, a => a.Kind == ActivityKind.Producer);
        var process = Assert.Single(activities.Activities, a => a.Kind == ActivityKind.Consumer);
        Assert.Equal($"enqueue {queue}", enqueue.DisplayName);
        Assert.Equal($"process {queue}", process.DisplayName);
        Assert.Equal(id.ToString(), process.GetTagItem("messaging.message.id"));
        var link = Assert.Single(process.Links);
        Assert.Equal(enqueue.TraceId, link.Context.TraceId);
        Assert.Equal(enqueue.SpanId, link.Context.SpanId);
        Assert.Equal(ActivityStatusCode.Ok, process.Status);
        Assert.Equal(enqueue.Id, (await store.GetAsync(id, Ct)).Headers["traceparent"]);
    }

    [Fact]
    public async Task Health_check_reports_the_store_healthy()
    {
        var queue = NewQueue();
        var store = CreateStore();
        using var host = BuildHost(Config(queue), store, queue, (_, _) => Task.CompletedTask);
        await host.StartAsync(Ct);

        var report = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync(Ct);

        var entry = report.Entries["konduit-store"];
        Assert.Equal(HealthStatus.Healthy, entry.Status);
        Assert.Equal(store.Name, entry.Data["store"]);
        await host.StopAsync(Ct);
    }

    /// <summary>A handler body that signals it started, then runs until its token fires (and signals that).</summary>
    private static async Task BlockUntilCanceled(TaskCompletionSource started, TaskCompletionSource canceled, CancellationToken ct)
    {
        started.TrySetResult();
        try
        {
            await Task.Delay(Timeout.Infinite, ct);
        }
        catch (OperationCanceledException)
        {
            canceled.TrySetResult();
            throw;
        }
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current) { }
    }
}
