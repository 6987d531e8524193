using System.Data.Common;
using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Konduit.Hosting;

internal sealed class KonduitClient : IKonduitClient
{
    private readonly IServiceProvider _services;
    private readonly IOptions<KonduitOptions> _options;
    private readonly KonduitMetrics _metrics;
    private readonly QueueWakeUpSignals _wakeUp;
    private readonly TimeProvider _time;
    private readonly EnqueueCommitWatcher _commits;
    private ITaskStore? _store;

    public KonduitClient(IServiceProvider services, IOptions<KonduitOptions> options, KonduitMetrics metrics, QueueWakeUpSignals wakeUp, TimeProvider time, EnqueueCommitWatcher commits)
    {
        _commits = commits;
        _services = services;
        _options = options;
        _metrics = metrics;
        _wakeUp = wakeUp;
        _time = time;
    }

    // Resolved on first use so that building the client never creates (or connects) the store.
    public ITaskStore Store => _store ??= _services.GetRequiredService<ITaskStore>();

    public EnqueueRequest CreateRequest(string queue, byte[] payload, EnqueueOptions? options = null)
    {
        TaskValidation.ValidateQueue(queue);
        var maxAttempts = options?.MaxAttempts ?? _options.Value.GetQueue(queue).MaxAttempts ?? TaskValidation.DefaultMaxAttempts;
        var runAt = options?.RunAt ?? (options?.Delay is { } delay ? _time.GetUtcNow() + delay : null);
        return new EnqueueRequest(queue, payload)
        {
            IdempotencyKey = options?.IdempotencyKey,
            Priority = options?.Priority ?? 0,
            RunAt = runAt,
            MaxAttempts = maxAttempts,
            Tenant = options?.Tenant,
            Headers = options?.Headers,
            RetryPolicy = options?.RetryPolicy,
        };
    }

    public async Task<EnqueueResult> EnqueueAsync(EnqueueRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var store = Store;
        using var activity = KonduitDiagnostics.StartEnqueue(request.Queue, store.Name, 1);
        request = WithTraceContext(activity, request);
        try
        {
            var result = await store.EnqueueAsync(request, cancellationToken).ConfigureAwait(false);
            activity?.SetTag("messaging.message.id", result.TaskId.ToString());
            if (result.Created)
            {
                _metrics.Enqueued(request.Queue, store.Name);
                _wakeUp.Signal(request.Queue);
            }
            return result;
        }
        catch (Exception ex)
        {
            activity?.SetStatus(ActivityStatusCode.Error, ex.GetType().Name);
            throw;
        }
    }

    public async Task<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(requests);
        var store = Store;
        using var activity = KonduitDiagnostics.StartEnqueue(QueueTag(requests), store.Name, requests.Count);
        var traced = Traced(activity, requests);
        try
        {
            var results = await store.EnqueueManyAsync(traced, cancellationToken).ConfigureAwait(false);
            Created(store, traced, results);
            return results;
        }
        catch (Exception ex)
        {
            activity?.SetStatus(ActivityStatusCode.Error, ex.GetType().Name);
            throw;
        }
    }

    public async Task<EnqueueResult> EnqueueAsync(EnqueueRequest request, DbTransaction transaction, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var results = await EnqueueManyAsync([request], transaction, cancellationToken).ConfigureAwait(false);
        return results[0];
    }

    public async Task<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, DbTransaction transaction, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(requests);
        ArgumentNullException.ThrowIfNull(transaction);
        var store = Store;
        // The flag is the promise; the interface alone is not (every decorator has it, whatever it wraps).
        if (!store.Capabilities.TransactionalEnqueue || store is not ITransactionalTaskStore transactional)
            throw TaskValidation.TransactionalEnqueueNotSupported(store);
        using var activity = KonduitDiagnostics.StartEnqueue(QueueTag(requests), store.Name, requests.Count);
        var traced = Traced(activity, requests);
        IReadOnlyList<EnqueueResult> results;
        try
        {
            results = await transactional.EnqueueManyAsync(traced, transaction, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            activity?.SetStatus(ActivityStatusCode.Error, ex.GetType().Name);
            throw;
        }
        if (results.Count == 1) activity?.SetTag("messaging.message.id", results[0].TaskId.ToString());

        var created = new List<int>(results.Count);
        for (var i = 0; i < results.Count; i++)
            if (results[i].Created) created.Add(i);
        if (created.Count == 0) return results;
        // One transaction: all of these commit or none do, so one read-back of one of them stands for all.
        _commits.Watch(store, results[created[0]].TaskId, () =>
        {
            (store as EventRecordingTaskStore)?.RecordEnqueued(traced, results);
            Created(store, traced, results);
        });
        return results;
    }

    private static string QueueTag(IReadOnlyList<EnqueueRequest> requests) =>
        requests.Count > 0 && requests.All(r => r?.Queue == requests[0]?.Queue) ? requests[0]?.Queue ?? "(none)" : "(many)";

    private static EnqueueRequest[] Traced(Activity? activity, IReadOnlyList<EnqueueRequest> requests)
    {
        var traced = new EnqueueRequest[requests.Count];
        for (var i = 0; i < traced.Length; i++) traced[i] = requests[i] is { } r ? WithTraceContext(activity, r) : null!;
        return traced;
    }

    // The enqueue metric and the local wake-up, per queue, for the tasks that were created.
    private void Created(ITaskStore store, IReadOnlyList<EnqueueRequest> requests, IReadOnlyList<EnqueueResult> results)
    {
        var created = new Dictionary<string, long>(StringComparer.Ordinal);
        for (var i = 0; i < results.Count; i++)
        {
            if (!results[i].Created) continue;
            created[requests[i].Queue] = created.GetValueOrDefault(requests[i].Queue) + 1;
        }
        foreach (var (q, count) in created)
        {
            _metrics.Enqueued(q, store.Name, count);
            _wakeUp.Signal(q);
        }
    }

    private static EnqueueRequest WithTraceContext(Activity? activity, EnqueueRequest request)
    {
        var headers = KonduitDiagnostics.InjectTraceContext(activity, request.Headers);
        return ReferenceEquals(headers, request.Headers) ? request : request with { Headers = headers };
    }
}
