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
    private ITaskStore? _store;

    public KonduitClient(IServiceProvider services, IOptions<KonduitOptions> options, KonduitMetrics metrics, QueueWakeUpSignals wakeUp, TimeProvider time)
    {
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
        var queue = requests.Count > 0 && requests.All(r => r?.Queue == requests[0]?.Queue) ? requests[0]?.Queue ?? "(none)" : "(many)";
        using var activity = KonduitDiagnostics.StartEnqueue(queue, store.Name, requests.Count);
        var traced = new EnqueueRequest[requests.Count];
        for (var i = 0; i < traced.Length; i++) traced[i] = requests[i] is { } r ? WithTraceContext(activity, r) : null!;
        try
        {
            var results = await store.EnqueueManyAsync(traced, cancellationToken).ConfigureAwait(false);
            var created = new Dictionary<string, long>(StringComparer.Ordinal);
            for (var i = 0; i < results.Count; i++)
            {
                if (!results[i].Created) continue;
                created[traced[i].Queue] = created.GetValueOrDefault(traced[i].Queue) + 1;
            }
            foreach (var (q, count) in created)
            {
                _metrics.Enqueued(q, store.Name, count);
                _wakeUp.Signal(q);
            }
            return results;
        }
        catch (Exception ex)
        {
            activity?.SetStatus(ActivityStatusCode.Error, ex.GetType().Name);
            throw;
        }
    }

    private static EnqueueRequest WithTraceContext(Activity? activity, EnqueueRequest request)
    {
        var headers = KonduitDiagnostics.InjectTraceContext(activity, request.Headers);
        return ReferenceEquals(headers, request.Headers) ? request : request with { Headers = headers };
    }
}
