using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Konduit.Heartbeats;
using Konduit.InMemory;
using Konduit.Testing.Conformance;
using Xunit;

namespace Konduit.Kafka.Tests;

/// <summary>The Kafka channel's own behaviour: the store fallback, the documented format read by an outside client, throughput.</summary>
public sealed class KafkaChannelTests(KafkaFixture fixture) : IClassFixture<KafkaFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<TrackedLease> LeaseAsync(InMemoryTaskStore store, string queue, TimeSpan ceiling)
    {
        await store.EnqueueAsync(new EnqueueRequest(queue, [1]), Ct);
        var lease = Assert.Single(await store.LeaseAsync(queue, "worker-1", 1, ceiling, Ct));
        // The queue's heartbeat interval: a third of the ceiling, as the runtime's default.
        return new TrackedLease(lease, ceiling, ceiling / 3);
    }

    [Fact]
    public async Task Publishing_to_unreachable_brokers_falls_back_to_store_heartbeats()
    {
        // Nothing listens on this port (the private range of issue 12's tests).
        var options = fixture.Options("hb-unreachable");
        options.BootstrapServers = "127.0.0.1:27001";
        options.DeliveryTimeout = TimeSpan.FromMilliseconds(500);
        await using var channel = new KafkaHeartbeatChannel(options);
        await using var store = new InMemoryTaskStore();
        await using var renewer = new HeartbeatChannelLeaseRenewer(store, channel, TimeSpan.FromMilliseconds(100));
        var tracked = await LeaseAsync(store, "fallback", TimeSpan.FromMinutes(1));
        var first = tracked.Lease.ExpiresAt;

        renewer.Track(tracked);

        await Await.Until(() => Task.FromResult(renewer.FallbackBeats > 0 && tracked.Lease.ExpiresAt > first), TimeSpan.FromSeconds(10),
            TimeSpan.FromMilliseconds(20), "the renewer renews through the store once deliveries fail");
        Assert.False(channel.IsPublishing);
        Assert.False(tracked.IsLost);
        var stored = await store.GetAsync(tracked.TaskId, Ct);
        Assert.Equal(tracked.Lease.ExpiresAt, stored.LeaseExpiresAt);
        renewer.Release(tracked);
    }

    [Fact]
    public async Task Kcat_reads_the_topic_and_decodes_the_documented_format()
    {
        var kcat = new[] { "/usr/bin/kcat", "/usr/local/bin/kcat" }.FirstOrDefault(File.Exists);
        Assert.True(kcat is not null, "kcat is not installed: run `scripts/services.sh up` (as root it installs the Debian package kcat).");
        var topic = "hb-kcat-" + Guid.NewGuid().ToString("N");
        await fixture.CreateTopicAsync(topic, 2);
        var channel = fixture.Track(new KafkaHeartbeatChannel(fixture.Options(topic)));
        var sent = Enumerable.Range(1, 3).Select(i => new LeaseHeartbeat(Guid.CreateVersion7(), 1000 + i, "worker-" + i,
            new DateTimeOffset(2026, 12, 1, 23, 59, 0, i, TimeSpan.Zero), TimeSpan.FromMinutes(5), Released: i == 3)).ToList();
        foreach (var beat in sent) Assert.True(channel.TryPublish(beat));
        channel.Flush(TimeSpan.FromSeconds(10));
        Assert.Equal(3, channel.Delivered);

        var psi = new ProcessStartInfo(kcat!) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "-C", "-b", fixture.BootstrapServers, "-t", topic, "-o", "beginning", "-c", "3", "-e", "-q", "-f", "%k\t%s\n" })
            psi.ArgumentList.Add(arg);
        using var process = Process.Start(psi)!;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        var output = await process.StandardOutput.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, $"kcat exited {process.ExitCode}: {await process.StandardError.ReadToEndAsync(Ct)}");

        var read = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line =>
        {
            var (key, value) = (line[..line.IndexOf('\t')], line[(line.IndexOf('\t') + 1)..]);
            using var json = JsonDocument.Parse(value);
            var root = json.RootElement;
            Assert.Equal(1, root.GetProperty("v").GetInt32());
            Assert.Equal(key, root.GetProperty("task").GetString());
            return new LeaseHeartbeat(Guid.Parse(key), root.GetProperty("token").GetInt64(), root.GetProperty("worker").GetString()!,
                DateTimeOffset.Parse(root.GetProperty("sent").GetString()!, System.Globalization.CultureInfo.InvariantCulture),
                TimeSpan.FromMilliseconds(root.GetProperty("ext_ms").GetInt64()), root.GetProperty("released").GetBoolean());
        }).ToList();
        Assert.Equal(sent.OrderBy(s => s.LeaseToken), read.OrderBy(r => r.LeaseToken));
    }

    [Fact]
    public async Task Heartbeats_per_second_published_and_consumed_are_measured()
    {
        const int count = 20_000;
        var topic = "hb-rate-" + Guid.NewGuid().ToString("N");
        await fixture.CreateTopicAsync(topic, 4);
        var channel = fixture.Track(new KafkaHeartbeatChannel(fixture.Options(topic)));
        var observer = new CountingObserver();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var consuming = channel.ConsumeAsync(observer, stop.Token);
        await Await.Until(() => Task.FromResult(observer.Assigned == 4), fixture.AssignmentDeadline, TimeSpan.FromMilliseconds(20), "assigned all partitions");
        var probe = Guid.CreateVersion7();
        await Await.Until(() => Task.FromResult(channel.TryPublish(new LeaseHeartbeat(probe, 1, "probe", DateTimeOffset.UtcNow, TimeSpan.FromMinutes(1))) && observer.Count > 0),
            fixture.AssignmentDeadline, TimeSpan.FromMilliseconds(100), "the consumer reads");
        var before = observer.Count;

        var tasks = Enumerable.Range(0, 1000).Select(_ => Guid.CreateVersion7()).ToArray();
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < count; i++)
            Assert.True(channel.TryPublish(new LeaseHeartbeat(tasks[i % tasks.Length], 1 + (i / tasks.Length), "worker-1", DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5))));
        var queued = clock.Elapsed;
        channel.Flush(TimeSpan.FromSeconds(60));
        var delivered = clock.Elapsed;
        await Await.Until(() => Task.FromResult(observer.Count - before >= count), TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(10), "every heartbeat is consumed");
        var consumed = clock.Elapsed;

        var line = $"kafka mock ({fixture.BootstrapServers.Split(',').Length} broker): {count} heartbeats, queued {count / queued.TotalSeconds:0}/s, " +
            $"published (acked) {count / delivered.TotalSeconds:0}/s, consumed {count / consumed.TotalSeconds:0}/s";
        TestContext.Current.TestOutputHelper?.WriteLine(line);
        Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "measurements"));
        await File.AppendAllTextAsync(Path.Combine(AppContext.BaseDirectory, "measurements", "kafka.txt"), line + "\n", Ct);
        Assert.Equal(0, channel.DeliveryFailures);
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => consuming);
    }

    private sealed class CountingObserver : IHeartbeatObserver
    {
        private long _count;
        private int _assigned;

        public long Count => Interlocked.Read(ref _count);

        public int Assigned => Volatile.Read(ref _assigned);

        public void OnHeartbeat(LeaseHeartbeat heartbeat, int partition) => Interlocked.Increment(ref _count);

        public void OnAssigned(IReadOnlyCollection<int> partitions) => Interlocked.Add(ref _assigned, partitions.Count);

        public void OnRevoked(IReadOnlyCollection<int> partitions) => Interlocked.Add(ref _assigned, -partitions.Count);
    }
}

/// <summary>Three brokers, the topic at replication factor 3: a broker going down mid-run changes no liveness decision.</summary>
public sealed class KafkaBrokerDownTests(KafkaThreeBrokerFixture fixture) : IClassFixture<KafkaThreeBrokerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // The mock never moves a group's coordinator off a stopped broker by itself (real Kafka does), so here the group
    // is coordinated by broker 2 and broker 1, a partition leader and follower, is the one stopped.
    [Fact]
    public Task A_broker_going_down_mid_run_loses_no_liveness_decision() => BrokerDownAsync(coordinator: 2, movedTo: null);

    // Coordinator failover as the mock can show it: broker 1 coordinates the group and goes down, and the coordinator
    // is moved to broker 2 (what the cluster's controller would do). The monitor must find it there, and a rebalance
    // this causes must not turn into a false expiry.
    [Fact]
    public Task A_monitor_follows_its_group_coordinator_to_another_broker() => BrokerDownAsync(coordinator: 1, movedTo: 2);

    private async Task BrokerDownAsync(int coordinator, int? movedTo)
    {
        Assert.True(fixture.IsMock, "this test stops a broker of the mock cluster; it does not run against KONDUIT_TEST_KAFKA");
        var topic = "hb-rf3-" + Guid.NewGuid().ToString("N");
        await fixture.CreateTopicAsync(topic, 6, 3);
        var options = fixture.Options(topic);
        fixture.Mock!.SetGroupCoordinator(options.ConsumerGroup, coordinator);
        var channel = fixture.Track(new KafkaHeartbeatChannel(options));
        await using var store = new InMemoryTaskStore();
        var expired = new ConcurrentQueue<ReclaimedTask>();
        await using var monitor = new LeaseMonitor(channel, store, new LeaseMonitorOptions
        {
            LivenessTimeout = options.LivenessTimeout,
            CheckInterval = options.LivenessTimeout / 10,
            Expired = (task, _) => expired.Enqueue(task),
        });
        monitor.Start();
        await using var living = new HeartbeatChannelLeaseRenewer(store, channel, options.HeartbeatInterval);
        var dyingRenewer = new HeartbeatChannelLeaseRenewer(store, channel, options.HeartbeatInterval);
        var ceiling = TimeSpan.FromMinutes(5);
        var leases = new List<TrackedLease>();
        for (var i = 0; i < 6; i++)
        {
            await store.EnqueueAsync(new EnqueueRequest("rf3", [1]), Ct);
            var lease = Assert.Single(await store.LeaseAsync("rf3", "worker-" + i, 1, ceiling, Ct));
            var tracked = new TrackedLease(lease, ceiling, ceiling / 3);
            leases.Add(tracked);
            (i == 0 ? dyingRenewer : living).Track(tracked);
        }
        await Await.Until(() => Task.FromResult(monitor.TrackedLeases == 6), fixture.AssignmentDeadline, TimeSpan.FromMilliseconds(20), "the monitor tracks all six leases");

        fixture.Mock.SetBrokerDown(1);
        if (movedTo is { } broker) fixture.Mock.SetGroupCoordinator(options.ConsumerGroup, broker);
        try
        {
            var downAt = DateTimeOffset.UtcNow;
            // Three liveness windows with a broker down: no lease is declared dead.
            await Await.Until(() => Task.FromResult(!expired.IsEmpty || DateTimeOffset.UtcNow - downAt > options.LivenessTimeout * 3),
                TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(20), "three windows pass");
            Assert.Empty(expired);

            // The one worker that dies during the outage is still found.
            await dyingRenewer.DisposeAsync();
            var diedAt = DateTimeOffset.UtcNow;
            await Await.Until(() => Task.FromResult(!expired.IsEmpty), TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(20), "the dead worker's lease is expired");
            var line = $"kafka mock (3 brokers, RF 3, broker 1 down{(movedTo is null ? "" : $", group coordinator moved 1 -> {movedTo}")}): renewer stopped -> lease expired in {(DateTimeOffset.UtcNow - diedAt).TotalSeconds:0.00} s " +
                $"(liveness timeout {options.LivenessTimeout.TotalSeconds:0.0} s, ceiling {ceiling.TotalSeconds:0} s)";
            TestContext.Current.TestOutputHelper?.WriteLine(line);
            Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "measurements"));
            await File.AppendAllTextAsync(Path.Combine(AppContext.BaseDirectory, "measurements", "kafka.txt"), line + "\n", Ct);
        }
        finally
        {
            fixture.Mock.SetBrokerUp(1);
        }
        Assert.Equal(leases[0].TaskId, Assert.Single(expired).TaskId);
        foreach (var lease in leases.Skip(1)) Assert.Equal(TaskState.Running, (await store.GetAsync(lease.TaskId, Ct)).State);
    }
}
