namespace Konduit.Hosting;

/// <summary>
/// Wraps a store and records every transition it accepts into a <see cref="TaskEventRecorder"/> (issue 6, ADR 005).
/// Events are recorded only after the inner call succeeded, with ids fixed at that moment; recording never blocks or
/// fails the store call. The inner store's behaviour, results and exceptions are unchanged.
/// </summary>
/// <remarks>
/// <para>Cancel and redrive read the task back (the contract returns no queue); a failure of that read only loses
/// the event. Reclaims and purges are recorded from what the store reports it did (<see cref="ReclaimedTask"/>,
/// <see cref="PurgedTask"/>), so the sweeper on any node records every task it reclaims or purges, whichever
/// node held the lease: each expired lease and each purged task is reported by exactly one call.</para>
/// <para>A transactional enqueue is forwarded unrecorded: its Enqueued events are recorded by the runtime's
/// <see cref="IKonduitClient"/> once the caller's transaction is seen committed, never for a rollback.</para>
/// </remarks>
public sealed class EventRecordingTaskStore : DelegatingTaskStore
{
    private readonly TaskEventRecorder _recorder;
    private readonly TimeProvider _time;

    /// <summary>Wraps <paramref name="inner"/>.</summary>
    /// <param name="inner">The store (not disposed by this wrapper's owner unless it disposes the wrapper).</param>
    /// <param name="recorder">Where events go.</param>
    /// <param name="timeProvider">The clock that stamps events; <see cref="TimeProvider.System"/> when null.</param>
    public EventRecordingTaskStore(ITaskStore inner, TaskEventRecorder recorder, TimeProvider? timeProvider = null)
        : base(inner)
    {
        ArgumentNullException.ThrowIfNull(recorder);
        _recorder = recorder;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <inheritdoc />
    public override async Task<EnqueueResult> EnqueueAsync(EnqueueRequest request, CancellationToken cancellationToken = default)
    {
        var result = await Inner.EnqueueAsync(request, cancellationToken).ConfigureAwait(false);
        if (result.Created) Record(Event(TaskEventKind.Enqueued, result.TaskId, request.Queue, request.Tenant));
        return result;
    }

    /// <inheritdoc />
    public override async Task<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, CancellationToken cancellationToken = default)
    {
        var results = await Inner.EnqueueManyAsync(requests, cancellationToken).ConfigureAwait(false);
        RecordEnqueued(requests, results);
        return results;
    }

    // A transactional enqueue is not recorded here: the call returns before the caller commits or rolls back. The
    // client records it through RecordEnqueued once the commit is seen (EnqueueCommitWatcher).
    internal void RecordEnqueued(IReadOnlyList<EnqueueRequest> requests, IReadOnlyList<EnqueueResult> results)
    {
        var events = new List<TaskEvent>();
        for (var i = 0; i < results.Count; i++)
            if (results[i].Created) events.Add(Event(TaskEventKind.Enqueued, results[i].TaskId, requests[i].Queue, requests[i].Tenant));
        _recorder.Record(events);
    }

    /// <inheritdoc />
    public override async Task<IReadOnlyList<TaskLease>> LeaseAsync(string queue, string workerId, int maxCount, TimeSpan leaseDuration, CancellationToken cancellationToken = default)
    {
        var leases = await Inner.LeaseAsync(queue, workerId, maxCount, leaseDuration, cancellationToken).ConfigureAwait(false);
        var events = new List<TaskEvent>(leases.Count);
        foreach (var lease in leases) events.Add(FromLease(TaskEventKind.Leased, lease));
        _recorder.Record(events);
        return leases;
    }

    /// <inheritdoc />
    public override async Task<TaskLease> HeartbeatAsync(TaskLease lease, TimeSpan extension, CancellationToken cancellationToken = default)
    {
        var extended = await Inner.HeartbeatAsync(lease, extension, cancellationToken).ConfigureAwait(false);
        if (_recorder.RecordHeartbeats) Record(FromLease(TaskEventKind.Heartbeat, extended));
        return extended;
    }

    /// <inheritdoc />
    public override async Task<HeartbeatManyResult> HeartbeatManyAsync(IReadOnlyList<TaskLease> leases, TimeSpan extension, CancellationToken cancellationToken = default)
    {
        var result = await Inner.HeartbeatManyAsync(leases, extension, cancellationToken).ConfigureAwait(false);
        if (_recorder.RecordHeartbeats && result.Renewed.Count > 0)
        {
            var events = new List<TaskEvent>(result.Renewed.Count);
            foreach (var renewed in result.Renewed) events.Add(FromLease(TaskEventKind.Heartbeat, renewed));
            _recorder.Record(events);
        }
        return result;
    }

    /// <inheritdoc />
    public override async Task CompleteAsync(TaskLease lease, byte[]? result = null, CancellationToken cancellationToken = default)
    {
        await Inner.CompleteAsync(lease, result, cancellationToken).ConfigureAwait(false);
        Record(FromLease(TaskEventKind.Completed, lease));
    }

    /// <inheritdoc />
    public override async Task<IReadOnlyList<Guid>> CompleteManyAsync(IReadOnlyList<TaskCompletion> completions, CancellationToken cancellationToken = default)
    {
        var lost = await Inner.CompleteManyAsync(completions, cancellationToken).ConfigureAwait(false);
        var lostSet = lost.Count == 0 ? null : lost.ToHashSet();
        var events = new List<TaskEvent>(completions.Count);
        foreach (var completion in completions)
            if (lostSet is null || !lostSet.Contains(completion.Lease.TaskId))
                events.Add(FromLease(TaskEventKind.Completed, completion.Lease));
        _recorder.Record(events);
        return lost;
    }

    /// <inheritdoc />
    public override async Task<CompleteAndLeaseResult> CompleteAndLeaseAsync(TaskCompletion completion, string workerId, int maxCount, TimeSpan leaseDuration,
        CancellationToken cancellationToken = default)
    {
        var result = await Inner.CompleteAndLeaseAsync(completion, workerId, maxCount, leaseDuration, cancellationToken).ConfigureAwait(false);
        var events = new List<TaskEvent>(result.Leases.Count + 1);
        if (result.Completed) events.Add(FromLease(TaskEventKind.Completed, completion.Lease));
        foreach (var lease in result.Leases) events.Add(FromLease(TaskEventKind.Leased, lease));
        _recorder.Record(events);
        return result;
    }

    /// <inheritdoc />
    public override async Task<FailResult> FailAsync(TaskLease lease, string error, FailOptions? options = null, CancellationToken cancellationToken = default)
    {
        var result = await Inner.FailAsync(lease, error, options, cancellationToken).ConfigureAwait(false);
        Record(FromLease(result.WillRetry ? TaskEventKind.Retried : TaskEventKind.Failed, lease) with { Error = Truncate(error) });
        return result;
    }

    /// <inheritdoc />
    public override async Task<IReadOnlyList<ReclaimedTask>> ReclaimExpiredAsync(CancellationToken cancellationToken = default)
    {
        var reclaimed = await Inner.ReclaimExpiredAsync(cancellationToken).ConfigureAwait(false);
        var events = new List<TaskEvent>(reclaimed.Count);
        foreach (var task in reclaimed) events.Add(Reclaimed(task));
        _recorder.Record(events);
        return reclaimed;
    }

    /// <inheritdoc />
    public override async Task<ReclaimedTask?> ExpireLeaseAsync(Guid taskId, long leaseToken, CancellationToken cancellationToken = default)
    {
        var expired = await Inner.ExpireLeaseAsync(taskId, leaseToken, cancellationToken).ConfigureAwait(false);
        if (expired is not null) Record(Reclaimed(expired));
        return expired;
    }

    private TaskEvent Reclaimed(ReclaimedTask task) =>
        Event(TaskEventKind.Reclaimed, task.TaskId, task.Queue, task.Tenant) with
        {
            Attempt = task.Attempt,
            LeaseToken = task.LeaseToken,
            WorkerId = Truncate(task.WorkerId, TaskEventValidation.MaxWorkerLength),
            Error = task.State == TaskState.Failed ? "lease expired; attempts exhausted, dead-lettered" : "lease expired",
        };

    /// <inheritdoc />
    public override async Task<bool> CancelAsync(Guid taskId, CancellationToken cancellationToken = default)
    {
        var canceled = await Inner.CancelAsync(taskId, cancellationToken).ConfigureAwait(false);
        if (canceled) await RecordFromSnapshotAsync(TaskEventKind.Canceled, taskId, cancellationToken).ConfigureAwait(false);
        return canceled;
    }

    /// <inheritdoc />
    public override async Task RedriveAsync(Guid taskId, CancellationToken cancellationToken = default)
    {
        await Inner.RedriveAsync(taskId, cancellationToken).ConfigureAwait(false);
        await RecordFromSnapshotAsync(TaskEventKind.Redriven, taskId, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>One Canceled event per task canceled, read back like <see cref="CancelAsync"/>'s.</remarks>
    public override async Task<IReadOnlyList<Guid>> CancelManyAsync(TaskQuery filter, int maxCount, CancellationToken cancellationToken = default)
    {
        var canceled = await Inner.CancelManyAsync(filter, maxCount, cancellationToken).ConfigureAwait(false);
        foreach (var id in canceled) await RecordFromSnapshotAsync(TaskEventKind.Canceled, id, cancellationToken).ConfigureAwait(false);
        return canceled;
    }

    /// <inheritdoc />
    /// <remarks>One Redriven event per task redriven, read back like <see cref="RedriveAsync"/>'s.</remarks>
    public override async Task<IReadOnlyList<Guid>> RedriveManyAsync(TaskQuery filter, int maxCount, CancellationToken cancellationToken = default)
    {
        var redriven = await Inner.RedriveManyAsync(filter, maxCount, cancellationToken).ConfigureAwait(false);
        foreach (var id in redriven) await RecordFromSnapshotAsync(TaskEventKind.Redriven, id, cancellationToken).ConfigureAwait(false);
        return redriven;
    }

    /// <inheritdoc />
    public override async Task<IReadOnlyList<PurgedTask>> PurgeAsync(TimeSpan olderThan, IReadOnlyCollection<TaskState>? states = null, string? queue = null, CancellationToken cancellationToken = default)
    {
        var purged = await Inner.PurgeAsync(olderThan, states, queue, cancellationToken).ConfigureAwait(false);
        RecordPurged(purged);
        return purged;
    }

    /// <inheritdoc />
    /// <remarks>One Purged event per task deleted, as for <see cref="PurgeAsync"/>.</remarks>
    public override async Task<IReadOnlyList<PurgedTask>> ApplyRetentionAsync(TimeSpan olderThan, CancellationToken cancellationToken = default)
    {
        var purged = await Inner.ApplyRetentionAsync(olderThan, cancellationToken).ConfigureAwait(false);
        RecordPurged(purged);
        return purged;
    }

    private void RecordPurged(IReadOnlyList<PurgedTask> purged)
    {
        var events = new List<TaskEvent>(purged.Count);
        foreach (var task in purged) events.Add(Event(TaskEventKind.Purged, task.TaskId, task.Queue, task.Tenant));
        _recorder.Record(events);
    }

    private async Task RecordFromSnapshotAsync(TaskEventKind kind, Guid taskId, CancellationToken cancellationToken)
    {
        // The event time is taken before the read-back, so the event sorts where the transition happened.
        var eventId = TaskEventId.NewId(_time.GetUtcNow());
        try
        {
            var task = await Inner.GetAsync(taskId, cancellationToken).ConfigureAwait(false);
            Record(new TaskEvent
            {
                EventId = eventId,
                TaskId = taskId,
                Queue = task.Queue,
                Kind = kind,
                Tenant = task.Tenant,
                Attempt = task.Attempts,
                LeaseToken = task.LeaseToken,
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
        Event(kind, lease.TaskId, lease.Queue, lease.Tenant) with { Attempt = lease.Attempt, LeaseToken = lease.LeaseToken, WorkerId = Truncate(lease.WorkerId, TaskEventValidation.MaxWorkerLength) };

    private static string? Truncate(string? text, int max = TaskEventValidation.MaxErrorLength) =>
        text is null || text.Length <= max ? text : text[..max];
}
