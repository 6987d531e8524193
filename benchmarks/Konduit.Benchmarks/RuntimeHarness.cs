using System.Diagnostics;
using Konduit.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Konduit.Benchmarks;

/// <summary>
/// The real worker runtime (AddKonduit + a no-op handler) over a target's store. The store is wrapped so that the
/// harness can count completions, switch push wake-up off, and keep the store alive after the host stops.
/// </summary>
public sealed class RuntimeHarness : IAsyncDisposable
{
    private readonly IHost _host;

    private RuntimeHarness(IHost host, BenchStore store, RuntimeProbe probe)
    {
        _host = host;
        Store = store;
        Probe = probe;
    }

    public BenchStore Store { get; }
    public RuntimeProbe Probe { get; }

    /// <param name="purgeFinishedAfter">When set, the runtime's sweeper purges finished tasks this old (every second).</param>
    public static async Task<RuntimeHarness> StartAsync(ITaskStore store, string queue, int concurrency, int maxBatch, bool push, CancellationToken cancellationToken,
        TimeSpan? purgeFinishedAfter = null, int? leaseCallsInFlight = null)
    {
        var bench = new BenchStore(store, push);
        var probe = new RuntimeProbe();
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Konduit:Store"] = "Bench",
            ["Konduit:ShutdownGracePeriod"] = "00:00:05",
            [$"Konduit:Queues:{queue}:Concurrency"] = concurrency.ToString(System.Globalization.CultureInfo.InvariantCulture),
            [$"Konduit:Queues:{queue}:MaxBatchSize"] = maxBatch.ToString(System.Globalization.CultureInfo.InvariantCulture),
            [$"Konduit:Queues:{queue}:LeaseSeconds"] = "30",
        });
        if (leaseCallsInFlight is { } calls)
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                [$"Konduit:Queues:{queue}:LeaseCallsInFlight"] = calls.ToString(System.Globalization.CultureInfo.InvariantCulture),
            });
        if (purgeFinishedAfter is { } purge)
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Konduit:PurgeFinishedAfter"] = purge.ToString("c", System.Globalization.CultureInfo.InvariantCulture),
                ["Konduit:SweepInterval"] = "00:00:01",
            });
        builder.Services.AddSingleton(probe);
        builder.Services.AddKonduit(builder.Configuration.GetSection("Konduit"))
            .AddComponent(KonduitComponentKind.Store, "Bench", new KonduitComponentDefinition<ITaskStore, BenchStoreOptions> { Factory = (_, _) => bench })
            .AddHandler<NoOpHandler>(queue);
        var host = builder.Build();
        await host.StartAsync(cancellationToken);
        return new RuntimeHarness(host, bench, probe);
    }

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await _host.StopAsync(timeout.Token);
        _host.Dispose();
    }
}

public sealed class BenchStoreOptions : TaskStoreOptions;

/// <summary>What the handler saw: starts, and enqueue → handler-start latency when the payload carries a timestamp.</summary>
public sealed class RuntimeProbe
{
    private long _started;
    public LatencyHistogram PickupLatency { get; private set; } = new();
    public long Started => Interlocked.Read(ref _started);

    public void ResetLatency() => PickupLatency = new LatencyHistogram();

    internal void OnStart(ReadOnlySpan<byte> payload)
    {
        Interlocked.Increment(ref _started);
        // Timestamped payloads: 8 bytes = Stopwatch timestamp taken just before the enqueue call.
        if (payload.Length == 8) PickupLatency.RecordSince(BitConverter.ToInt64(payload));
    }

    /// <summary>A task started outside the runtime (a raw baseline's consumer), picked up at <paramref name="timestamp"/>'s enqueue.</summary>
    internal void OnPickedUp(long timestamp)
    {
        Interlocked.Increment(ref _started);
        PickupLatency.RecordSince(timestamp);
    }

    public static byte[] TimestampPayload() => BitConverter.GetBytes(Stopwatch.GetTimestamp());
}

internal sealed class NoOpHandler(RuntimeProbe probe) : ITaskHandler
{
    public Task HandleAsync(TaskContext context, CancellationToken cancellationToken)
    {
        probe.OnStart(context.Payload.Span);
        return Task.CompletedTask;
    }
}

/// <summary>A pass-through store that counts completed tasks, can hide push wake-up, and never disposes the inner store.</summary>
public sealed class BenchStore(ITaskStore inner, bool push) : DelegatingTaskStore(inner, ownsInner: false) // the target owns the inner store
{
    private long _completed;
    private long _leaseCalls;
    private long _leased;
    private long _completeCalls;

    public long Completed => Interlocked.Read(ref _completed);

    /// <summary>Lease calls (LeaseAsync and CompleteAndLeaseAsync) and the tasks they returned: how the runtime batches.</summary>
    public (long Calls, long Tasks) Leases => (Interlocked.Read(ref _leaseCalls), Interlocked.Read(ref _leased));

    /// <summary>Completion calls of any kind: the completed tasks divided by this is the runtime's mean completion batch.</summary>
    public long CompleteCalls => Interlocked.Read(ref _completeCalls);

    /// <summary>Lease calls that returned tasks, call latency: the lease's share of the pickup (the steady scenario).</summary>
    public LatencyHistogram LeaseLatency { get; private set; } = new();

    public void ResetLatency() => LeaseLatency = new LatencyHistogram();

    public override async Task<IReadOnlyList<TaskLease>> LeaseAsync(string queue, string workerId, int maxCount, TimeSpan leaseDuration, CancellationToken cancellationToken = default)
    {
        var started = Stopwatch.GetTimestamp();
        var leases = await Inner.LeaseAsync(queue, workerId, maxCount, leaseDuration, cancellationToken);
        if (leases.Count > 0) LeaseLatency.RecordSince(started);
        Interlocked.Increment(ref _leaseCalls);
        Interlocked.Add(ref _leased, leases.Count);
        return leases;
    }
    public override StoreCapabilities Capabilities { get; } = inner.Capabilities with { PushWakeUp = push && inner.Capabilities.PushWakeUp };

    public override async Task CompleteAsync(TaskLease lease, byte[]? result = null, CancellationToken cancellationToken = default)
    {
        await Inner.CompleteAsync(lease, result, cancellationToken);
        Interlocked.Increment(ref _completeCalls);
        Interlocked.Increment(ref _completed);
    }

    public override async Task<IReadOnlyList<Guid>> CompleteManyAsync(IReadOnlyList<TaskCompletion> completions, CancellationToken cancellationToken = default)
    {
        var lost = await Inner.CompleteManyAsync(completions, cancellationToken);
        Interlocked.Increment(ref _completeCalls);
        Interlocked.Add(ref _completed, completions.Count - lost.Count);
        return lost;
    }

    public override async Task<CompleteAndLeaseResult> CompleteAndLeaseAsync(TaskCompletion completion, string workerId, int maxCount, TimeSpan leaseDuration,
        CancellationToken cancellationToken = default)
    {
        var result = await Inner.CompleteAndLeaseAsync(completion, workerId, maxCount, leaseDuration, cancellationToken);
        if (result.Completed) Interlocked.Increment(ref _completed);
        Interlocked.Increment(ref _completeCalls);
        Interlocked.Increment(ref _leaseCalls);
        Interlocked.Add(ref _leased, result.Leases.Count);
        return result;
    }

    public override async Task<bool> WaitForWorkAsync(string queue, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        if (Capabilities.PushWakeUp) return await Inner.WaitForWorkAsync(queue, timeout, cancellationToken);
        // Push off: the worker's poll timer alone decides when it looks again.
        try { await Task.Delay(timeout, cancellationToken); } catch (OperationCanceledException) { }
        cancellationToken.ThrowIfCancellationRequested();
        return false;
    }
}
