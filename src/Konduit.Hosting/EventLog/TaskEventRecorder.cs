using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Konduit.Hosting;

/// <summary>Settings of the event recorder (<c>Konduit:EventLogBuffer</c>).</summary>
public sealed class TaskEventRecorderOptions
{
    /// <summary>Most events held in memory while the log is slow or down (default 100 000). Beyond it new events are dropped.</summary>
    public int Capacity { get; set; } = 100_000;

    /// <summary>Most events per append (default 500).</summary>
    public int BatchSize { get; set; } = 500;

    /// <summary>Longest wait between retries of a failed append (default 5 s; retries start at 100 ms and double).</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Whether heartbeats are recorded (default false: they are frequent and rarely useful in a history).</summary>
    public bool RecordHeartbeats { get; set; }

    /// <summary>
    /// Events waiting for the log at or beyond which the <c>konduit-event-log</c> health check reports Degraded (default
    /// 10 000): the log is slower than the workers or down, and the buffer is filling towards <see cref="Capacity"/>.
    /// </summary>
    public int DegradedBacklog { get; set; } = 10_000;

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A setting is out of range.</exception>
    public void Validate()
    {
        if (Capacity < 1) throw new ArgumentOutOfRangeException(nameof(Capacity), Capacity, "The capacity must be at least 1.");
        if (BatchSize is < 1 or > 10_000) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "The batch size must be 1–10000.");
        if (DegradedBacklog < 1) throw new ArgumentOutOfRangeException(nameof(DegradedBacklog), DegradedBacklog, "The degraded backlog must be at least 1.");
        if (MaxRetryDelay <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(MaxRetryDelay), MaxRetryDelay, "The retry delay must be positive.");
    }
}

/// <summary>
/// Delivers task events to an <see cref="ITaskEventLog"/> in the background: a bounded in-memory buffer and one
/// flusher. At-least-once and idempotent: a batch that fails is retried, with backoff, with the very same events
/// (ids fixed when they were recorded) until the log takes it. <see cref="Record"/> never blocks and never throws:
/// when the buffer is full the new events are dropped, counted (<c>konduit.events.dropped</c>) and logged once per
/// overflow episode.
/// </summary>
public sealed partial class TaskEventRecorder : IAsyncDisposable
{
    private readonly ITaskEventLog _log;
    private readonly TaskEventRecorderOptions _options;
    private readonly Func<CancellationToken, Task>? _initialize;
    private readonly ILogger _logger;
    private readonly ConcurrentQueue<TaskEvent> _queue = new();
    private readonly SemaphoreSlim _signal = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Meter? _ownMeter;
    private readonly Counter<long> _dropped;
    private readonly Counter<long> _appended;
    private readonly Counter<long> _appendFailures;
    private readonly Task _flusher;
    private long _buffered;
    private long _droppedTotal;
    private long _appendedTotal;
    private int _overflowing;
    private int _disposed;

    /// <summary>Starts the recorder and its flusher.</summary>
    /// <param name="log">The event log.</param>
    /// <param name="options">Buffer settings (validated).</param>
    /// <param name="initialize">Optional start-up work for the log (e.g. migrations), retried by the flusher until it succeeds; events wait meanwhile.</param>
    /// <param name="logger">Logs outages, recoveries and overflow.</param>
    /// <param name="meterFactory">Creates the <c>Konduit</c> meter; a private meter when null.</param>
    public TaskEventRecorder(ITaskEventLog log, TaskEventRecorderOptions? options = null, Func<CancellationToken, Task>? initialize = null,
        ILogger? logger = null, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(log);
        options ??= new TaskEventRecorderOptions();
        options.Validate();
        _log = log;
        _options = options;
        _initialize = initialize;
        _logger = logger ?? NullLogger.Instance;
        var meter = meterFactory?.Create("Konduit") ?? (_ownMeter = new Meter("Konduit"));
        _dropped = meter.CreateCounter<long>("konduit.events.dropped", "{event}", "Task events dropped because the event-log buffer was full.");
        _appended = meter.CreateCounter<long>("konduit.events.appended", "{event}", "Task events appended to the event log.");
        _appendFailures = meter.CreateCounter<long>("konduit.events.append_failures", "{append}", "Failed appends to the event log (each is retried).");
        meter.CreateObservableGauge("konduit.events.buffered", () => Interlocked.Read(ref _buffered), "{event}", "Task events waiting for the event log.");
        _flusher = Task.Run(() => RunAsync(_stop.Token));
    }

    /// <summary>The event log.</summary>
    public ITaskEventLog Log => _log;

    /// <summary>Events waiting in the buffer or in the batch being appended.</summary>
    public long Buffered => Interlocked.Read(ref _buffered);

    /// <summary>Events dropped because the buffer was full, since start.</summary>
    public long Dropped => Interlocked.Read(ref _droppedTotal);

    /// <summary>Events appended to the log, since start.</summary>
    public long Appended => Interlocked.Read(ref _appendedTotal);

    /// <summary>Options heartbeats are recorded by.</summary>
    public bool RecordHeartbeats => _options.RecordHeartbeats;

    /// <summary>The backlog at which the event-log health check reports Degraded (<see cref="TaskEventRecorderOptions.DegradedBacklog"/>).</summary>
    public int DegradedBacklog => _options.DegradedBacklog;

    /// <summary>Buffers events for the log. Never blocks, never throws; drops what does not fit.</summary>
    public void Record(IReadOnlyList<TaskEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        if (events.Count == 0) return;
        if (Interlocked.Add(ref _buffered, events.Count) > _options.Capacity)
        {
            Interlocked.Add(ref _buffered, -events.Count);
            Interlocked.Add(ref _droppedTotal, events.Count);
            _dropped.Add(events.Count);
            if (Interlocked.Exchange(ref _overflowing, 1) == 0)
                BufferFull(_logger, _options.Capacity, _log.Name);
            return;
        }
        foreach (var e in events) _queue.Enqueue(e);
        if (_signal.CurrentCount == 0) _signal.Release();
    }

    /// <summary>Waits until every event recorded so far has been appended (or <paramref name="cancellationToken"/> fires).</summary>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        while (Buffered > 0)
            await Task.Delay(TimeSpan.FromMilliseconds(20), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stops the flusher after giving it up to 5 s to deliver what is buffered.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        using (var drain = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            try
            {
                await FlushAsync(drain.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Not drained in time: what remains is lost with the process, and counted in the log line below.
            }
        }
        await _stop.CancelAsync().ConfigureAwait(false);
        await _flusher.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (Buffered > 0) Abandoned(_logger, Buffered, _log.Name);
        _stop.Dispose();
        _signal.Dispose();
        _ownMeter?.Dispose();
    }

    private async Task RunAsync(CancellationToken stop)
    {
        var delay = TimeSpan.FromMilliseconds(100);
        var failing = false;
        var initialized = _initialize is null;
        var batch = new List<TaskEvent>(_options.BatchSize);
        while (!stop.IsCancellationRequested)
        {
            try
            {
                if (!initialized)
                {
                    await _initialize!(stop).ConfigureAwait(false);
                    initialized = true;
                }
                if (batch.Count == 0)
                {
                    while (batch.Count < _options.BatchSize && _queue.TryDequeue(out var e)) batch.Add(e);
                    if (batch.Count == 0)
                    {
                        await _signal.WaitAsync(TimeSpan.FromSeconds(1), stop).ConfigureAwait(false);
                        continue;
                    }
                }
                // The same batch object, with the same event ids, is re-sent until it is accepted.
                await _log.AppendAsync(batch, stop).ConfigureAwait(false);
                Interlocked.Add(ref _appendedTotal, batch.Count);
                _appended.Add(batch.Count);
                Interlocked.Add(ref _buffered, -batch.Count);
                batch.Clear();
                Volatile.Write(ref _overflowing, 0);
                if (failing)
                {
                    failing = false;
                    Recovered(_logger, _log.Name, Buffered);
                }
                delay = TimeSpan.FromMilliseconds(100);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // Whatever the log throws, the recorder keeps the events and retries: it must never die.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                _appendFailures.Add(1);
                if (!failing)
                {
                    failing = true;
                    Unavailable(_logger, ex, _log.Name, Buffered);
                }
                try
                {
                    await Task.Delay(delay, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.MaxRetryDelay.Ticks));
            }
        }
    }

    [LoggerMessage(100, LogLevel.Warning, "Event log {Log} unavailable; buffering task events ({Buffered} waiting) and retrying")]
    private static partial void Unavailable(ILogger logger, Exception exception, string log, long buffered);

    [LoggerMessage(101, LogLevel.Information, "Event log {Log} available again; catching up ({Buffered} waiting)")]
    private static partial void Recovered(ILogger logger, string log, long buffered);

    [LoggerMessage(102, LogLevel.Error, "Event-log buffer full ({Capacity} events) for {Log}: dropping new task events until it drains (see konduit.events.dropped)")]
    private static partial void BufferFull(ILogger logger, int capacity, string log);

    [LoggerMessage(103, LogLevel.Warning, "Stopping with {Buffered} task events not delivered to {Log}")]
    private static partial void Abandoned(ILogger logger, long buffered, string log);
}
