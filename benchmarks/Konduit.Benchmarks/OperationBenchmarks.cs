using BenchmarkDotNet.Attributes;

namespace Konduit.Benchmarks;

/// <summary>Builds a target by name for BenchmarkDotNet's [Params] (from <see cref="Targets.All"/>).</summary>
internal static class TargetByName
{
    public static async Task<IBenchTarget> CreateAsync(string name)
    {
        var factory = Targets.All(BenchEnvironment.FromEnvironment()).Single(f => f.Name == name);
        if (!factory.Available) throw new InvalidOperationException($"{name}: {factory.Why}");
        return await factory.Create(CancellationToken.None);
    }

    /// <summary>The [ParamsSource] of every class: the targets whose servers are configured (the others would only fail).</summary>
    public static IEnumerable<string> Available() =>
        Targets.All(BenchEnvironment.FromEnvironment()).Where(f => f.Available).Select(f => f.Name);
}

/// <summary>Per-operation enqueue cost (time and allocations per task), raw baseline and stores side by side.</summary>
[MemoryDiagnoser]
public class EnqueueBenchmarks
{
    private IBenchTarget _target = null!;
    private readonly string _queue = "bdn.enqueue." + Guid.NewGuid().ToString("N")[..8];
    private long _n;

    [ParamsSource(typeof(TargetByName), nameof(TargetByName.Available))]
    public string Target { get; set; } = "inmemory";

    [GlobalSetup]
    public async Task SetupAsync() => _target = await TargetByName.CreateAsync(Target);

    [GlobalCleanup]
    public async Task CleanupAsync() => await _target.DisposeAsync();

    /// <summary>One task with an idempotency key: the seed's INSERT … ON CONFLICT.</summary>
    [Benchmark]
    public Task EnqueueSingle() => _target.EnqueueOneAsync(_queue, Interlocked.Increment(ref _n), CancellationToken.None);

    /// <summary>100 tasks in one round trip (arrays/unnest; raw-redis: 100 pipelined XADDs).</summary>
    [Benchmark(OperationsPerInvoke = 100)]
    public Task EnqueueBatch100() => _target.EnqueueBatchAsync(_queue, Interlocked.Add(ref _n, 100), 100, copy: false, CancellationToken.None);
}

/// <summary>The raw binary COPY of 100 rows (the stores' batch figure is in <see cref="EnqueueBenchmarks"/>; Konduit.Postgres's own COPY path is the load runner's "enqueue batch 100 (binary COPY)" row).</summary>
[MemoryDiagnoser]
public class CopyBenchmarks
{
    private IBenchTarget _target = null!;
    private long _n;

    [GlobalSetup]
    public async Task SetupAsync() => _target = await TargetByName.CreateAsync("raw-sql");

    [GlobalCleanup]
    public async Task CleanupAsync() => await _target.DisposeAsync();

    [Benchmark(OperationsPerInvoke = 100)]
    public Task RawCopy100() => _target.EnqueueBatchAsync("bdn.copy", Interlocked.Add(ref _n, 100), 100, copy: true, CancellationToken.None);
}

/// <summary>
/// Full cycles (lease → complete) at 1, 4 and 16 concurrent workers: 16 single-task cycles or 16 × 100-task cycles per
/// invocation, split among the workers. The queue is prefilled in GlobalSetup and topped up (inside the measured call,
/// rarely) when it runs low.
/// </summary>
[MemoryDiagnoser]
public class CycleBenchmarks
{
    private const int Refill = 100_000;
    private IBenchTarget _target = null!;
    private readonly string _queue = "bdn.cycle." + Guid.NewGuid().ToString("N")[..8];
    private long _remaining;
    private long _n;

    [ParamsSource(typeof(TargetByName), nameof(TargetByName.Available))]
    public string Target { get; set; } = "inmemory";

    [Params(1, 4, 16)]
    public int Workers { get; set; } = 1;

    /// <summary>Tasks prefilled at setup (the smoke test lowers it).</summary>
    public int Prefill { get; set; } = 200_000;

    [GlobalSetup]
    public async Task SetupAsync()
    {
        _target = await TargetByName.CreateAsync(Target);
        await FillAsync(Prefill);
    }

    [GlobalCleanup]
    public async Task CleanupAsync() => await _target.DisposeAsync();

    [Benchmark(OperationsPerInvoke = 16)]
    public Task Cycle1() => RunAsync(16, 1);

    [Benchmark(OperationsPerInvoke = 1600)]
    public Task Cycle100() => RunAsync(16, 100);

    private async Task RunAsync(int rounds, int batch)
    {
        if (Interlocked.Read(ref _remaining) < rounds * batch) await FillAsync(Math.Max(Refill, Prefill));
        var perWorker = rounds / Workers;
        await Task.WhenAll(Enumerable.Range(0, Workers).Select(async w =>
        {
            for (var i = 0; i < perWorker; i++)
                Interlocked.Add(ref _remaining, -await _target.CycleAsync(_queue, "w" + w, batch, CancellationToken.None));
        }));
    }

    private async Task FillAsync(int count)
    {
        for (var done = 0; done < count; done += 1000)
            await _target.EnqueueBatchAsync(_queue, Interlocked.Add(ref _n, 1000), Math.Min(1000, count - done), _target.SupportsCopy, CancellationToken.None);
        Interlocked.Add(ref _remaining, count);
    }
}
