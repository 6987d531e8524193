using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Konduit.InMemory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xunit;
using static Konduit.Hosting.Tests.TestKit;

namespace Konduit.Hosting.Tests;

/// <summary>Telemetry that works by default (issue 17): public names, histogram bucket advice, a task scope on handler logs.</summary>
public sealed class TelemetryTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_duration_histograms_advise_second_buckets_and_the_public_names_are_the_ones_used()
    {
        var queue = NewQueue();
        var advised = new ConcurrentDictionary<string, IReadOnlyList<double>?>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, _) =>
            {
                if (instrument.Meter.Name == KonduitTelemetry.MeterName && instrument is Histogram<double> histogram)
                    advised[instrument.Name] = histogram.Advice?.HistogramBucketBoundaries;
            },
        };
        listener.Start();
        var sources = new ConcurrentBag<string>();
        using var activities = new System.Diagnostics.ActivityListener
        {
            ShouldListenTo = source => source.Name == KonduitTelemetry.ActivitySourceName,
            Sample = (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) => System.Diagnostics.ActivitySamplingResult.AllData,
            ActivityStopped = activity => sources.Add(activity.Source.Name + ":" + activity.OperationName),
        };
        System.Diagnostics.ActivitySource.AddActivityListener(activities);
        await using var store = new InMemoryTaskStore();
        using var host = BuildHost(Config(queue), store, queue, (_, _) => Task.CompletedTask);
        await host.StartAsync(Ct);
        var client = host.Services.GetRequiredService<IKonduitClient>();
        var id = (await client.EnqueueAsync(client.CreateRequest(queue, [1]), Ct)).TaskId;
        await WaitForStateAsync(store, id, TaskState.Succeeded);
        await host.StopAsync(Ct);

        foreach (var name in new[] { "konduit.task.duration", "konduit.task.queue_wait" })
        {
            Assert.True(advised.TryGetValue(name, out var buckets), name + " was published on meter " + KonduitTelemetry.MeterName);
            Assert.Equal(KonduitTelemetry.DurationBucketBoundaries, buckets);
        }
        // Seconds: a 2 ms task and a 3 min task land in different, non-edge buckets.
        Assert.InRange(KonduitTelemetry.DurationBucketBoundaries.Count(b => b < 0.002), 1, 5);
        Assert.InRange(KonduitTelemetry.DurationBucketBoundaries.Count(b => b > 180), 1, 5);
        Assert.Contains($"{KonduitTelemetry.ActivitySourceName}:process {queue}", sources);
    }

    [Fact]
    public async Task Handler_logs_carry_the_task_id_queue_and_attempt_as_scope()
    {
        var queue = NewQueue();
        var logs = new ScopeCapturingProvider();
        await using var store = new InMemoryTaskStore();
        ILogger? handlerLogger = null;
        using var host = BuildHost(Config(queue, extra: [($"Konduit:Queues:{queue}:MaxAttempts", "2")]), store,
            k => k.AddHandler<DelegateHandler>(queue),
            s =>
            {
                s.AddLogging(b => b.AddProvider(logs));
                s.AddSingleton(new HandlerBody((ctx, _) =>
                {
                    handlerLogger!.LogInformation("handling payload {Payload}", ctx.Payload.Span[0]);
                    return ctx.Attempt == 1 ? throw new InvalidOperationException("first attempt fails") : Task.CompletedTask;
                }));
            });
        handlerLogger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("UserHandler");
        await host.StartAsync(Ct);
        var client = host.Services.GetRequiredService<IKonduitClient>();
        var id = (await client.EnqueueAsync(client.CreateRequest(queue, [7]), Ct)).TaskId;
        await WaitForStateAsync(store, id, TaskState.Succeeded);
        await host.StopAsync(Ct);

        var handlerLines = logs.Entries.Where(e => e.Category == "UserHandler").ToList();
        Assert.Equal(2, handlerLines.Count);
        foreach (var (line, attempt) in handlerLines.Zip([1, 2]))
        {
            Assert.Equal(id, line.Scope["TaskId"]);
            Assert.Equal(queue, line.Scope["Queue"]);
            Assert.Equal(attempt, line.Scope["Attempt"]);
        }
        // Outside a task (worker start and stop) there is no task scope.
        Assert.Contains(logs.Entries, e => e.Category != "UserHandler" && !e.Scope.ContainsKey("TaskId"));
    }

    [Fact]
    public async Task Queue_gauges_report_due_scheduled_running_and_the_oldest_due_age_from_the_store()
    {
        var queue = NewQueue();
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var store = new InMemoryTaskStore(null, time);
        // No handler for the queue: its tasks stay where the test puts them.
        using var host = BuildHost(Config(queue, extra: [("Konduit:QueueStatsInterval", "00:00:00.050")]), store, _ => { },
            s => s.AddSingleton<TimeProvider>(time));
        var depth = new ConcurrentDictionary<string, double>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == KonduitTelemetry.MeterName && instrument.Name.StartsWith("konduit.queue.", StringComparison.Ordinal))
                    l.EnableMeasurementEvents(instrument);
            },
        };
        void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            string? q = null, state = null;
            foreach (var tag in tags)
            {
                if (tag.Key == "queue") q = (string?)tag.Value;
                if (tag.Key == "state") state = (string?)tag.Value;
            }
            if (q == queue) depth[instrument.Name + (state is null ? "" : ":" + state)] = value;
        }
        listener.SetMeasurementEventCallback<long>((i, v, t, _) => Record(i, v, t));
        listener.SetMeasurementEventCallback<double>((i, v, t, _) => Record(i, v, t));
        listener.Start();

        await store.EnqueueAsync(new EnqueueRequest(queue, [1]), Ct);
        await store.EnqueueAsync(new EnqueueRequest(queue, [2]), Ct);
        await store.EnqueueAsync(new EnqueueRequest(queue, [3]), Ct);
        await store.EnqueueAsync(new EnqueueRequest(queue, [4]) { RunAt = time.GetUtcNow().AddHours(1) }, Ct);
        Assert.Single(await store.LeaseAsync(queue, "w", 1, TimeSpan.FromMinutes(5), Ct));
        time.Advance(TimeSpan.FromSeconds(90)); // the two still pending have been due for 90 s
        await host.StartAsync(Ct);

        await Eventually(() =>
        {
            time.Advance(TimeSpan.FromMilliseconds(50)); // lets the gauge loop's delay elapse
            listener.RecordObservableInstruments();
            return depth.GetValueOrDefault("konduit.queue.depth:due") == 2;
        }, "the gauges read the store");
        await host.StopAsync(Ct);

        Assert.Equal(1, depth["konduit.queue.depth:scheduled"]);
        Assert.Equal(1, depth["konduit.queue.depth:running"]);
        Assert.InRange(depth["konduit.queue.oldest_due_age"], 90, 120);
    }

    private sealed class ScopeCapturingProvider : ILoggerProvider, ISupportExternalScope
    {
        private IExternalScopeProvider _scopes = new LoggerExternalScopeProvider();

        public ConcurrentQueue<(string Category, string Message, Dictionary<string, object?> Scope)> Entries { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

        public void Dispose()
        {
        }

        private sealed class Logger(ScopeCapturingProvider owner, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => owner._scopes.Push(state);

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                var scope = new Dictionary<string, object?>();
                owner._scopes.ForEachScope((value, into) =>
                {
                    if (value is IEnumerable<KeyValuePair<string, object?>> pairs)
                        foreach (var pair in pairs) into[pair.Key] = pair.Value;
                }, scope);
                owner.Entries.Enqueue((category, formatter(state, exception), scope));
            }
        }
    }
}
