// The Konduit sample: enqueue N tasks, work them with the hosted runtime on the store named in appsettings.json,
// print a live progress line and a one-line summary. Exit code 0 only when every task succeeded.
//
//   dotnet run --project samples/Konduit.Sample                                   (Postgres; source .services/env first)
//   dotnet run --project samples/Konduit.Sample -- --Konduit:Store=InMemory --count 5000
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text.Json.Serialization;
using Konduit;
using Konduit.Hosting;
using Konduit.Sample;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
var config = builder.Configuration;
if (string.IsNullOrEmpty(config["Konduit:Postgres:ConnectionString"])
    && Environment.GetEnvironmentVariable("KONDUIT_TEST_POSTGRES") is { Length: > 0 } fromServices)
{
    config["Konduit:Postgres:ConnectionString"] = fromServices;
}
var count = int.Parse(config["count"] ?? config["Sample:Count"] ?? "5000", CultureInfo.InvariantCulture);
var timeout = TimeSpan.FromSeconds(double.Parse(config["Sample:TimeoutSeconds"] ?? "120", CultureInfo.InvariantCulture));

// A queue of its own per run, so leftovers of an earlier run never count; it takes the "sample" queue's settings.
var queue = $"sample.{DateTime.UtcNow:yyyyMMddHHmmss}.{Guid.NewGuid().ToString("N")[..6]}";
foreach (var (key, value) in config.GetSection("Konduit:Queues:sample").AsEnumerable(makePathsRelative: true))
{
    if (value is not null) config[$"Konduit:Queues:{queue}:{key}"] = value;
}

builder.Services.AddKonduit(config.GetSection("Konduit"))
    .AddHandler<SampleHandler, SamplePayload>(queue, SampleJson.Default.SamplePayload);

using var host = builder.Build();
using var meter = new SampleMeter(host.Services.GetRequiredService<IMeterFactory>(), queue);
try
{
    await host.StartAsync(); // validates the configuration and runs the store's migrations
}
catch (Exception ex)
{
    Console.Error.WriteLine($"sample: the host did not start: {ex.Message}");
    return 2;
}

var client = host.Services.GetRequiredService<IKonduitClient>();
var store = client.Store;
var stopwatch = Stopwatch.StartNew();
const int batch = 1000;
for (var start = 0; start < count; start += batch)
{
    var payloads = Enumerable.Range(start, Math.Min(batch, count - start)).Select(i => new SamplePayload(i, $"item-{i}"));
    await client.EnqueueManyAsync(queue, payloads, SampleJson.Default.SamplePayload);
}

var live = !Console.IsOutputRedirected;
var lastPrint = TimeSpan.Zero;
while (meter.Completed + meter.Failed < count && stopwatch.Elapsed < timeout)
{
    await Task.Delay(50);
    if (live || stopwatch.Elapsed - lastPrint >= TimeSpan.FromSeconds(1))
    {
        lastPrint = stopwatch.Elapsed;
        var line = $"sample: {meter.Completed}/{count} completed, {meter.Failed} failed, {meter.Retried} retried, {meter.Completed / stopwatch.Elapsed.TotalSeconds:0} tasks/s";
        if (live) Console.Write("\r" + line.PadRight(78));
        else Console.WriteLine(line);
    }
}
var elapsed = stopwatch.Elapsed;
if (live) Console.WriteLine();
await host.StopAsync();

var stats = (await store.GetStatsAsync()).FirstOrDefault(s => s.Queue == queue);
var succeeded = stats?.Succeeded ?? 0;
await store.PurgeAsync(TimeSpan.Zero, queue: queue);

var (p50, p99) = meter.QueueWaitPercentiles();
var summary = string.Create(CultureInfo.InvariantCulture,
    $"sample: {succeeded} tasks in {elapsed.TotalSeconds:0.00} s = {succeeded / elapsed.TotalSeconds:0} tasks/s, queue wait p50 {p50:0.0} ms p99 {p99:0.0} ms (store={store.Name}; all tasks enqueued up front, so queue wait is mostly backlog)");
Console.WriteLine(summary);
if (succeeded != count)
{
    Console.Error.WriteLine($"sample: only {succeeded} of {count} tasks succeeded (failed {stats?.Failed ?? 0}, pending {stats?.Pending ?? 0}, running {stats?.Running ?? 0}).");
    return 1;
}
return 0;

namespace Konduit.Sample
{
    public sealed record SamplePayload(int Index, string Name);

    [JsonSerializable(typeof(SamplePayload))]
    public sealed partial class SampleJson : JsonSerializerContext;

    /// <summary>The sample's work: a little CPU per task, nothing else.</summary>
    public sealed class SampleHandler : ITaskHandler<SamplePayload>
    {
        public Task HandleAsync(SamplePayload payload, TaskContext context, CancellationToken cancellationToken)
        {
            if (payload.Name.Length == 0) throw new NonRetryableException("empty name");
            context.Result = BitConverter.GetBytes(payload.Name.GetHashCode(StringComparison.Ordinal));
            return Task.CompletedTask;
        }
    }

    /// <summary>Reads the runtime's own metrics (the Konduit meter of this host) for progress and queue-wait percentiles.</summary>
    public sealed class SampleMeter : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly Lock _gate = new();
        private readonly List<double> _waits = [];
        private long _completed;
        private long _failed;
        private long _retried;

        public SampleMeter(IMeterFactory factory, string queue)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == "Konduit" && ReferenceEquals(instrument.Meter.Scope, factory))
                    listener.EnableMeasurementEvents(instrument);
            };
            _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
            {
                if (!IsQueue(tags, queue)) return;
                switch (instrument.Name)
                {
                    case "konduit.tasks.completed": Interlocked.Add(ref _completed, value); break;
                    case "konduit.tasks.failed": Interlocked.Add(ref _failed, value); break;
                    case "konduit.tasks.retried": Interlocked.Add(ref _retried, value); break;
                }
            });
            _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
            {
                if (instrument.Name != "konduit.task.queue_wait" || !IsQueue(tags, queue)) return;
                lock (_gate) _waits.Add(value * 1000.0);
            });
            _listener.Start();
        }

        public long Completed => Interlocked.Read(ref _completed);
        public long Failed => Interlocked.Read(ref _failed);
        public long Retried => Interlocked.Read(ref _retried);

        public (double P50, double P99) QueueWaitPercentiles()
        {
            double[] sorted;
            lock (_gate) sorted = [.. _waits.Order()];
            if (sorted.Length == 0) return (0, 0);
            double At(double q) => sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Length) - 1, 0, sorted.Length - 1)];
            return (At(0.50), At(0.99));
        }

        private static bool IsQueue(ReadOnlySpan<KeyValuePair<string, object?>> tags, string queue)
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "queue") return Equals(tag.Value, queue);
            }
            return false;
        }

        public void Dispose() => _listener.Dispose();
    }
}
