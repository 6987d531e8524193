using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Konduit.Hosting.Tests;

/// <summary>The handler body of one test, registered as a singleton and run by <see cref="DelegateHandler"/>.</summary>
public sealed class HandlerBody(Func<TaskContext, CancellationToken, Task> body)
{
    public Func<TaskContext, CancellationToken, Task> Body { get; } = body;
}

public sealed class DelegateHandler(HandlerBody body) : ITaskHandler
{
    public Task HandleAsync(TaskContext context, CancellationToken cancellationToken) => body.Body(context, cancellationToken);
}

public static class TestKit
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    public static string NewQueue() => "t." + Guid.NewGuid().ToString("N")[..12];

    /// <summary>Short leases and polls so tests finish quickly; <paramref name="extra"/> overrides.</summary>
    public static Dictionary<string, string?> Config(string queue, string store = "Test", params (string Key, string? Value)[] extra)
    {
        var config = new Dictionary<string, string?>
        {
            ["Konduit:Store"] = store,
            ["Konduit:SweepInterval"] = "00:00:00.200",
            ["Konduit:ShutdownGracePeriod"] = "00:00:05",
            [$"Konduit:Queues:{queue}:Concurrency"] = "4",
            [$"Konduit:Queues:{queue}:LeaseSeconds"] = "2",
            [$"Konduit:Queues:{queue}:PollInterval"] = "00:00:00.010",
            [$"Konduit:Queues:{queue}:MaxPollInterval"] = "00:00:00.100",
            [$"Konduit:Queues:{queue}:Retry:InitialDelay"] = "00:00:00.010",
            [$"Konduit:Queues:{queue}:Retry:MaxDelay"] = "00:00:00.050",
        };
        foreach (var (key, value) in extra) config[key] = value;
        return config;
    }

    /// <summary>A host with Konduit over <paramref name="store"/> (registered as store "Test"), not started.</summary>
    public static IHost BuildHost(Dictionary<string, string?> config, ITaskStore? store, Action<IKonduitBuilder> configure,
        Action<IServiceCollection>? services = null)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(config);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(15));
        var konduit = builder.Services.AddKonduit(builder.Configuration.GetSection("Konduit"));
        if (store is not null)
            konduit.AddComponent(KonduitComponentKind.Store, "Test", new KonduitComponentDefinition<ITaskStore, TaskStoreOptions> { Factory = (_, _) => store });
        configure(konduit);
        services?.Invoke(builder.Services);
        return builder.Build();
    }

    public static IHost BuildHost(Dictionary<string, string?> config, ITaskStore store, string queue,
        Func<TaskContext, CancellationToken, Task> handler) =>
        BuildHost(config, store, k => k.AddHandler<DelegateHandler>(queue), s => s.AddSingleton(new HandlerBody(handler)));

    /// <summary>Polls <paramref name="condition"/> until it holds or the deadline passes.</summary>
    public static async Task Eventually(Func<Task<bool>> condition, string what, TimeSpan? deadline = null)
    {
        var stopwatch = Stopwatch.StartNew();
        var limit = deadline ?? Deadline;
        while (!await condition())
        {
            if (stopwatch.Elapsed > limit) Assert.Fail($"Timed out after {limit} waiting for: {what}");
            await Task.Delay(15, TestContext.Current.CancellationToken);
        }
    }

    public static Task Eventually(Func<bool> condition, string what, TimeSpan? deadline = null) =>
        Eventually(() => Task.FromResult(condition()), what, deadline);

    public static Task<TaskSnapshot> WaitForStateAsync(ITaskStore store, Guid id, TaskState state) =>
        WaitForAsync(store, id, s => s.State == state, $"task {id} to be {state}");

    public static async Task<TaskSnapshot> WaitForAsync(ITaskStore store, Guid id, Func<TaskSnapshot, bool> predicate, string what)
    {
        TaskSnapshot? last = null;
        await Eventually(async () => predicate(last = await store.GetAsync(id)), what);
        return last!;
    }

    public static async Task<T> Within<T>(Task<T> task, string what)
    {
        try
        {
            return await task.WaitAsync(Deadline, TestContext.Current.CancellationToken);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"Timed out after {Deadline} waiting for: {what}");
            throw;
        }
    }

    public static Task Within(Task task, string what) => Within(task.ContinueWith(t => { t.GetAwaiter().GetResult(); return true; }, TaskScheduler.Default), what);
}

/// <summary>Collects the <c>Konduit</c> meter's measurements of one host (filtered by its <see cref="IMeterFactory"/>).</summary>
public sealed class MetricCollector : IDisposable
{
    private readonly MeterListener _listener = new();

    public MetricCollector(IHost host)
    {
        var factory = host.Services.GetRequiredService<IMeterFactory>();
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == "Konduit" && ReferenceEquals(instrument.Meter.Scope, factory))
                listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        _listener.Start();
    }

    public ConcurrentQueue<(string Instrument, double Value, Dictionary<string, object?> Tags)> Measurements { get; } = new();

    public double Sum(string instrument, string? queue = null) =>
        Measurements.Where(m => m.Instrument == instrument && (queue is null || Equals(m.Tags.GetValueOrDefault("queue"), queue))).Sum(m => m.Value);

    public int Count(string instrument, string? queue = null) =>
        Measurements.Count(m => m.Instrument == instrument && (queue is null || Equals(m.Tags.GetValueOrDefault("queue"), queue)));

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var dict = new Dictionary<string, object?>();
        foreach (var tag in tags) dict[tag.Key] = tag.Value;
        Measurements.Enqueue((instrument.Name, value, dict));
    }

    public void Dispose() => _listener.Dispose();
}

/// <summary>Collects the event ids of every log entry (any category, any level the host lets through).</summary>
public sealed class LogCollector : ILoggerProvider
{
    public ConcurrentQueue<(string Category, int EventId, string Message)> Entries { get; } = new();

    public bool Has(int eventId) => Entries.Any(e => e.EventId == eventId);

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(LogCollector owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner.Entries.Enqueue((category, eventId.Id, formatter(state, exception)));
    }
}

/// <summary>Collects stopped <c>Konduit</c> activities of one queue.</summary>
public sealed class ActivityCollector : IDisposable
{
    private readonly ActivityListener _listener;

    public ActivityCollector(string queue)
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "Konduit",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                if (Equals(activity.GetTagItem("messaging.destination.name"), queue)) Activities.Enqueue(activity);
            },
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public ConcurrentQueue<Activity> Activities { get; } = new();

    public void Dispose() => _listener.Dispose();
}

/// <summary>An in-memory event log whose appends fail with <see cref="IOException"/> while <see cref="Down"/> is set.</summary>
public sealed class SwitchableEventLog : ITaskEventLog
{
    private readonly Konduit.InMemory.InMemoryTaskEventLog _inner = new();

    public volatile bool Down;

    public string Name => "switchable";

    public TaskEventLogCapabilities Capabilities => _inner.Capabilities;

    public Task AppendAsync(IReadOnlyList<TaskEvent> events, CancellationToken cancellationToken = default) =>
        Down ? throw new IOException("log down") : _inner.AppendAsync(events, cancellationToken);

    public Task<IReadOnlyList<TaskEvent>> ReadTaskHistoryAsync(Guid taskId, CancellationToken cancellationToken = default) => _inner.ReadTaskHistoryAsync(taskId, cancellationToken);

    public Task<TaskEventPage> ReadQueueEventsAsync(string queue, DateTimeOffset from, DateTimeOffset to, TaskEventPageRequest? page = null, CancellationToken cancellationToken = default) =>
        _inner.ReadQueueEventsAsync(queue, from, to, page, cancellationToken);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
