using System.Collections.Concurrent;

namespace Konduit.Hosting;

/// <summary>
/// Wraps a store and records every transition it accepts into a <see cref="TaskEventRecorder"/> (issue 6, ADR 005).
/// Events are recorded only after the inner call succeeded, with ids fixed at that moment; recording never blocks or
/// fails the store call. The inner store's behaviour, results and exceptions are unchanged.
/// </summary>
/// <remarks>
/// <para>Cancel and redrive read the task back (the contract returns no queue); a failure of that read only loses
/// the event. Reclaims are detected for leases granted through this instance: after each sweep, expired leases
/// it granted are read back and those no longer held become <see cref="TaskEventKind.Reclaimed"/> events.
/// Purge returns only a count, so purges are not recorded per task.</para>
/// </remarks>
public sealed class EventRecordingTaskStore : ITaskStore
{
    private readonly ITaskStore _inner;
    private readonly TaskEventRecorder _recorder;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<Guid, TaskLease> _leases = new();

    /// <summary>Wraps <paramref name="inner"/>.</summary>
    /// <param name="inner">The store (not disposed by this wrapper's owner unless it disposes the wrapper).</param>
    /// <param name="recorder">Where events go.</param>
    /// <param name="timeProvider">The clock that stamps events; <see cref="TimeProvider.System"/> when null.</param>
    public EventRecordingTaskStore(ITaskStore inner, TaskEventRecorder recorder, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(recorder);
        _inner = inner;
        _recorder = recorder;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>The wrapped store.</summary>
    public ITaskStore Inner => _inner;

    /// <inheritdoc />
    public string Name => _inner.Name;

    /// <inheritdoc />
    public StoreCapabilities Capabilities => _inner.Capabilities;

    /// <inheritdoc />
    public async Task<EnqueueResult> EnqueueAsync(EnqueueRequest request, CancellationToken cancellationToken = default)
    {
        var result = await _inner.EnqueueAsync(request, cancellationToken).ConfigureAwait(false);
        if (result.Created) Record(Event(TaskEventKind.Enqueued, result.TaskId, request.Queue, request.Tenant));
        return result;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, CancellationToken cancellationToken = default)
    {
        var results = await _inner.EnqueueManyAsync(requests, cancellationToken).ConfigureAwait(false);
        var events = new List<TaskEvent>();
        for (var i = 0; i < results.Count; i++)
            if (results[i].Created) events.Add(Event(TaskEventKind.Enqueued, results[i].TaskId, requests[i].Queue, requests[i].Tenant));
        _recorder.Record(events);
        return results;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<TaskLease>> LeaseAsync(string queue, string workerId, int maxCount, TimeSpan leaseDuration, CancellationToken cancellationToken = default)
    {
        var leases = await _inner.LeaseAsync(queue, workerId, maxCount, leaseDuration, cancellationToken).ConfigureAwait(false);
        var events = new List<TaskEvent>(leases.Count);
        foreach (var lease in leases)
        {
            _leases[lease.TaskId] = lease;
            events.Add(FromLease(TaskEventKind.Leased, lease));
        }
        _recorder.Record(events);
        return leases;
    }

    /// <inheritdoc />
    public async Task<TaskLease> HeartbeatAsync(TaskLease lease, TimeSpan extension, CancellationToken cancellationToken = default)
    {
        var extended = await Tracked(_inner.HeartbeatAsync(lease, extension, cancellationToken), lease).ConfigureAwait(false);
        _leases[extended.TaskId] = extended;
        if (_recorder.RecordHeartbeats) Record(FromLease(TaskEventKind.Heartbeat, extended));
        return extended;
    }

    /// <inheritdoc />
    public async Task CompleteAsync(TaskLease lease, byte[]? result = null, CancellationToken cancellationToken = default)
    {
        await Tracked(_inner.CompleteAsync(lease, result, cancellationToken), lease).ConfigureAwait(false);
        _leases.TryRemove(lease.TaskId, out _);
        Record(FromLease(TaskEventKind.Completed, lease));
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<Guid>> CompleteManyAsync(IReadOnlyList<TaskCompletion> completions, CancellationToken cancellationToken = default)
    {
        var lost = await _inner.CompleteManyAsync(completions, cancellationToken).ConfigureAwait(false);
        var lostSet = lost.Count == 0 ? null : lost.ToHashSet();
        var events = new List<TaskEvent>(completions.Count);
        foreach (var completion in completions)
        {
            _leases.TryRemove(completion.Lease.TaskId, out _);
            if (lostSet is null || !lostSet.Contains(completion.Lease.TaskId))
                events.Add(FromLease(TaskEventKind.Completed, completion.Lease));
        }
        _recorder.Record(events);
        return lost;
    }

    /// <inheritdoc />
    public async Task<FailResult> FailAsync(TaskLease lease, string error, FailOptions? options = null, CancellationToken cancellationToken = default)
    {
        var result = await Tracked(_inner.FailAsync(lease, error, options, cancellationToken), lease).ConfigureAwait(false);
        _leases.TryRemove(lease.TaskId, out _);
        Record(FromLease(result.WillRetry ? TaskEventKind.Retried : TaskEventKind.Failed, lease) with { Error = Truncate(error) });
        return result;
    }

    /// <inheritdoc />
    public async Task<int> ReclaimExpiredAsync(CancellationToken cancellationToken = default)
    {
        var reclaimed = await _inner.ReclaimExpiredAsync(cancellationToken).ConfigureAwait(false);
        // Leases this instance granted that have expired: read back, and record those no longer held as reclaimed.
        var now = _time.GetUtcNow();
        var events = new List<TaskEvent>();
        foreach (var lease in _leases.Values.Where(l => l.ExpiresAt < now).ToList())
        {
            try
            {
                var task = await _inner.GetAsync(lease.TaskId, cancellationToken).ConfigureAwait(false);
                if (task.State == TaskState.Running && task.LeaseToken == lease.Token) continue; // not swept yet
                if (!_leases.TryRemove(new KeyValuePair<Guid, TaskLease>(lease.TaskId, lease))) continue;
                if (task.State is TaskState.Pending or TaskState.Failed || task.LeaseToken > lease.Token)
                    events.Add(FromLease(TaskEventKind.Reclaimed, lease) with { Error = "lease expired" });
            }
            catch (TaskNotFoundException)
            {
                _leases.TryRemove(lease.TaskId, out _);
            }
        }
        _recorder.Record(events);
        return reclaimed;
    }

    /// <inheritdoc />
    public async Task<bool> CancelAsync(Guid taskId, CancellationToken cancellationToken = default)
    {
        var canceled = await _inner.CancelAsync(taskId, cancellationToken).ConfigureAwait(false);
        if (canceled)
        {
            _leases.TryRemove(taskId, out _);
            await RecordFromSnapshotAsync(TaskEventKind.Canceled, taskId, cancellationToken).ConfigureAwait(false);
        }
        return canceled;
    }

    /// <inheritdoc />
    public async Task RetryAsync(Guid taskId, CancellationToken cancellationToken = default)
    {
        await _inner.RetryAsync(taskId, cancellationToken).ConfigureAwait(false);
        await RecordFromSnapshotAsync(TaskEventKind.Redriven, taskId, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public Task<TaskSnapshot> GetAsync(Guid taskId, CancellationToken cancellationToken = default) => _inner.GetAsync(taskId, cancellationToken);

    /// <inheritdoc />
    public Task<TaskPage> QueryAsync(TaskQuery filter, PageRequest? page = null, CancellationToken cancellationToken = default) => _inner.QueryAsync(filter, page, cancellationToken);

    /// <inheritdoc />
    public Task<IReadOnlyList<QueueStats>> GetStatsAsync(CancellationToken cancellationToken = default) => _inner.GetStatsAsync(cancellationToken);

    /// <inheritdoc />
    public Task<long> PurgeAsync(TimeSpan olderThan, IReadOnlyCollection<TaskState>? states = null, string? queue = null, CancellationToken cancellationToken = default) =>
        _inner.PurgeAsync(olderThan, states, queue, cancellationToken);

    /// <inheritdoc />
    public Task<bool> WaitForWorkAsync(string queue, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        _inner.WaitForWorkAsync(queue, timeout, cancellationToken);

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _inner.DisposeAsync();

    private async Task<T> Tracked<T>(Task<T> call, TaskLease lease)
    {
        try
        {
            return await call.ConfigureAwait(false);
        }
        catch (LeaseLostException)
        {
            _leases.TryRemove(new KeyValuePair<Guid, TaskLease>(lease.TaskId, lease));
            throw;
        }
    }

    private async Task Tracked(Task call, TaskLease lease)
    {
        try
        {
            await call.ConfigureAwait(false);
        }
        catch (LeaseLostException)
        {
            _leases.TryRemove(new KeyValuePair<Guid, TaskLease>(lease.TaskId, lease));
            throw;
        }
    }

    private async Task RecordFromSnapshotAsync(TaskEventKind kind, Guid taskId, CancellationToken cancellationToken)
    {
        // The event time is taken before the read-back, so the event sorts where the transition happened.
        var eventId = TaskEventId.NewId(_time.GetUtcNow());
        try
        {
            var task = await _inner.GetAsync(taskId, cancellationToken).ConfigureAwait(false);
            Record(new TaskEvent
            {
                EventId = eventId,
                TaskId = taskId,
                Queue = task.Queue,
                Kind = kind,
                Tenant = task.Tenant,
                Attempt = task.Attempts,
                Token = task.LeaseToken,
            });
        }
#pragma warning disable CA1031 // The store call succeeded; a failed read-back costs only this event.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    private void Record(TaskEvent e) => _recorder.Record([e]);

    private TaskEvent Event(TaskEventKind kind, Guid taskId, string queue, string? tenant) =>
        TaskEvent.Create(kind, taskId, queue, _time.GetUtcNow()) with { Tenant = tenant };

    private TaskEvent FromLease(TaskEventKind kind, TaskLease lease) =>
        Event(kind, lease.TaskId, lease.Queue, lease.Tenant) with { Attempt = lease.Attempt, Token = lease.Token, Worker = Truncate(lease.WorkerId, TaskEventValidation.MaxWorkerLength) };

    private static string? Truncate(string? text, int max = TaskEventValidation.MaxErrorLength) =>
        text is null || text.Length <= max ? text : text[..max];
}
