using System.Diagnostics;
using Konduit.InMemory;
using Konduit.OpenTelemetry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using Xunit;
using static Konduit.Hosting.Tests.TestKit;

namespace Konduit.Hosting.Tests;

/// <summary>
/// Konduit through the OpenTelemetry SDK and its in-memory exporter (issue 17): the instrument names and units, the
/// histograms' buckets as exported (not the default millisecond ones), and the enqueue → process span link.
/// </summary>
public sealed class OpenTelemetryTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AddKonduitInstrumentation_exports_named_metrics_in_second_buckets_and_linked_spans()
    {
        var queue = NewQueue();
        var metrics = new List<Metric>();
        var spans = new List<Activity>();
        await using var store = new InMemoryTaskStore();
        using var host = BuildHost(Config(queue), store, k => k.AddHandler<DelegateHandler>(queue), s =>
        {
            s.AddSingleton(new HandlerBody((_, ct) => Task.Delay(20, ct)));
            s.AddOpenTelemetry()
                .WithMetrics(m => m.AddKonduitInstrumentation().AddInMemoryExporter(metrics))
                .WithTracing(t => t.AddKonduitInstrumentation().SetSampler(new AlwaysOnSampler()).AddInMemoryExporter(spans));
        });
        await host.StartAsync(Ct);
        var client = host.Services.GetRequiredService<IKonduitClient>();
        var id = (await client.EnqueueAsync(client.CreateRequest(queue, [1]), Ct)).TaskId;
        await WaitForStateAsync(store, id, TaskState.Succeeded);
        await Eventually(() => spans.ToArray().Any(a => a.DisplayName == $"process {queue}"), "the process span is exported");
        host.Services.GetRequiredService<MeterProvider>().ForceFlush();
        await host.StopAsync(Ct);

        var exported = metrics.ToArray().GroupBy(m => m.Name).ToDictionary(g => g.Key, g => g.Last());
        Assert.Equal("{task}", exported["konduit.tasks.enqueued"].Unit);
        Assert.Equal("{task}", exported["konduit.tasks.completed"].Unit);
        var duration = exported["konduit.task.duration"];
        Assert.Equal("s", duration.Unit);
        Assert.Equal(MetricType.Histogram, duration.MetricType);
        var bounds = new List<double>();
        var samples = 0L;
        // Every host in the process has its own meter named Konduit, so the exporter holds one duration metric per meter
        // (other tests' hosts run in parallel): this queue's points are in one of them, not necessarily the last.
        foreach (var durations in metrics.ToArray().Where(m => m.Name == "konduit.task.duration").Distinct(ReferenceEqualityComparer.Instance).Cast<Metric>())
        foreach (ref readonly var point in durations.GetMetricPoints())
        {
            // The SDK listens to every meter named Konduit in the process: other tests' hosts, running in parallel,
            // export points too. Only this test's queue counts.
            if (!IsQueue(point, queue)) continue;
            samples += point.GetHistogramCount();
            foreach (var bucket in point.GetHistogramBuckets())
                if (!double.IsPositiveInfinity(bucket.ExplicitBound)) bounds.Add(bucket.ExplicitBound);
            // The 20 ms handler is in a bucket of its own size, not in the first one as with the default (0, 5, 10, …) bounds.
            var first = point.GetHistogramBuckets().GetEnumerator();
            Assert.True(first.MoveNext());
            Assert.Equal(0, first.Current.BucketCount);
        }
        Assert.Equal(1, samples);
        Assert.Equal(KonduitTelemetry.DurationBucketBoundaries, bounds.Distinct());

        var snapshot = spans.ToArray();
        var enqueue = Assert.Single(snapshot, a => a.DisplayName == $"enqueue {queue}");
        var process = Assert.Single(snapshot, a => a.DisplayName == $"process {queue}");
        Assert.Equal(ActivityKind.Producer, enqueue.Kind);
        Assert.Equal(ActivityKind.Consumer, process.Kind);
        Assert.Contains(process.Links, l => l.Context.TraceId == enqueue.TraceId && l.Context.SpanId == enqueue.SpanId);
        Assert.Equal(KonduitTelemetry.ActivitySourceName, process.Source.Name);
    }

    private static bool IsQueue(in MetricPoint point, string queue)
    {
        foreach (var tag in point.Tags)
            if (tag.Key == "queue" && Equals(tag.Value, queue)) return true;
        return false;
    }
}
