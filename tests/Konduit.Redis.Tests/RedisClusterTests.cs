using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using Konduit.Testing.Conformance;
using Konduit.Tests.Shared;
using StackExchange.Redis;
using Xunit;

namespace Konduit.Redis.Tests;

/// <summary>
/// The Redis store on a real Redis Cluster (issue 16): queues spread over every master, and a master killed with
/// SIGKILL mid-run, whose replica is promoted while the same store keeps working.
/// </summary>
public sealed class RedisClusterTests(RedisClusterStoreFixture fixture) : IClassFixture<RedisClusterStoreFixture>
{
    /// <summary>The failover test's private cluster: client ports 26411–26416, bus ports 28411–28416.</summary>
    private const int FailoverPort = 26411, FailoverBusPort = 28411;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static byte[] Bytes(string text) => System.Text.Encoding.UTF8.GetBytes(text);

    [Fact]
    public async Task Queues_spread_over_all_three_masters_and_each_works_end_to_end()
    {
        var prefix = RedisStoreFixture.NewKeyPrefix();
        var store = fixture.CreateRedisStore(prefix);
        var queues = Enumerable.Range(0, 24).Select(i => "spread-" + i.ToString(CultureInfo.InvariantCulture)).ToArray();
        foreach (var queue in queues)
            await store.EnqueueManyAsync([new EnqueueRequest(queue, Bytes("a")) { IdempotencyKey = "k" }, new EnqueueRequest(queue, Bytes("b"))], Ct);

        var masters = fixture.Connection.GetServers().Where(s => s.IsConnected && !s.IsReplica).ToList();
        Assert.Equal(3, masters.Count);
        foreach (var master in masters)
        {
            var keys = new List<string>();
            await foreach (var key in master.KeysAsync(pattern: "{" + prefix + ":*", pageSize: 1000)) keys.Add(key!);
            Assert.True(keys.Count > 0, $"master {master.EndPoint} holds none of the queues' keys");
        }
        foreach (var queue in queues)
        {
            var leases = await store.LeaseAsync(queue, "w", 10, TimeSpan.FromMinutes(1), Ct);
            Assert.Equal(2, leases.Count);
            Assert.Equal(2, (await store.HeartbeatManyAsync(leases, TimeSpan.FromMinutes(2), Ct)).Renewed.Count);
            Assert.Empty(await store.CompleteManyAsync([.. leases.Select(l => new TaskCompletion(l))], Ct));
            Assert.Equal(TaskState.Succeeded, (await store.GetAsync(leases[0].TaskId, Ct)).State);
        }
        Assert.Equal(queues.Length, (await store.GetStatsAsync(Ct)).Count);
        Assert.Equal(queues.Length * 2, (await store.PurgeAsync(TimeSpan.Zero, null, null, Ct)).Count);
        Assert.Empty(await fixture.KeysAsync(prefix));
    }

    [Fact]
    public async Task A_killed_master_is_replaced_by_its_replica_and_the_same_store_carries_on()
    {
        var output = TestContext.Current.TestOutputHelper;
        // Node timeout 2 s: on a loaded CI box a 1 s timeout let busy nodes flag each other failing (CLUSTERDOWN for minutes).
        await using var cluster = await PrivateRedis.StartClusterAsync(FailoverPort, FailoverBusPort, nodeTimeoutMs: 2000);
        await using var admin = await ConnectionMultiplexer.ConnectAsync(cluster.Configuration);
        await using var store = new RedisTaskStore(new RedisTaskStoreOptions
        {
            Configuration = cluster.Configuration,
            KeyPrefix = "failover",
            OperationTimeout = TimeSpan.FromSeconds(1),
        });
        const int perQueue = 60;
        var queues = Enumerable.Range(0, 12).Select(i => "fo-" + i.ToString(CultureInfo.InvariantCulture)).ToArray();
        var acknowledged = new List<(string Queue, Guid Id)>();
        foreach (var queue in queues)
            foreach (var r in await store.EnqueueManyAsync([.. Enumerable.Range(0, perQueue).Select(i => new EnqueueRequest(queue, Bytes($"{i}")) { MaxAttempts = 10 })], Ct))
                acknowledged.Add((queue, r.TaskId));

        // The master of the first queue's slot is the one to die.
        var victimSlot = RedisTaskStore.HashSlot("failover:" + queues[0]);
        var config = admin.GetServers().First(s => !s.IsReplica).ClusterConfiguration!;
        var victimPort = ((IPEndPoint)config.GetBySlot(victimSlot)!.EndPoint!).Port;
        var victim = cluster.Nodes.Single(n => n.Port == victimPort);
        var heir = await cluster.ReplicaOfAsync(victim);

        var accepted = new ConcurrentDictionary<Guid, int>();
        var unavailable = 0;
        string? lastUnavailable = null;
        var completedAfterFailover = 0;
        var failedOver = false;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        stop.CancelAfter(TimeSpan.FromSeconds(90));
        async Task WorkAsync(string queue)
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var leases = await store.LeaseAsync(queue, "w-" + queue, 5, TimeSpan.FromSeconds(2), stop.Token);
                    if (leases.Count == 0)
                    {
                        if (Volatile.Read(ref failedOver)) await store.ReclaimExpiredAsync(stop.Token);
                        if ((await store.GetStatsAsync(stop.Token)).Where(s => s.Queue == queue).All(s => s.Pending + s.Running == 0)) return;
                        await Task.Delay(50, stop.Token); // the polling interval of an idle worker
                        continue;
                    }
                    var lost = await store.CompleteManyAsync([.. leases.Select(l => new TaskCompletion(l))], stop.Token);
                    foreach (var lease in leases.Where(l => !lost.Contains(l.TaskId)))
                    {
                        accepted.AddOrUpdate(lease.TaskId, 1, (_, n) => n + 1);
                        if (Volatile.Read(ref failedOver) && queue == queues[0]) Interlocked.Increment(ref completedAfterFailover);
                    }
                }
                catch (StoreUnavailableException ex)
                {
                    Interlocked.Increment(ref unavailable);
                    lastUnavailable = ex.InnerException?.Message ?? ex.Message;
                    try
                    {
                        await Task.Delay(100, stop.Token); // back off while the cluster fails over
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    return;
                }
            }
        }
        var workers = queues.Select(q => Task.Run(() => WorkAsync(q), Ct)).ToList();
        await Await.Until(() => Task.FromResult(accepted.Count >= acknowledged.Count / 4), TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(20), "a quarter of the tasks are done");

        var killedAt = DateTime.UtcNow;
        await victim.KillAsync();
        Volatile.Write(ref failedOver, true);
        // The replica's promotion first: until the nodes notice the kill (node timeout) they all still say ok.
        await PrivateRedis.WaitForPromotionAsync(heir, TimeSpan.FromSeconds(30));
        await cluster.WaitForClusterOkAsync(TimeSpan.FromSeconds(30));
        var promotedAfter = DateTime.UtcNow - killedAt;
        await Task.WhenAll(workers);
        if (stop.IsCancellationRequested)
        {
            // What each surviving node thinks of the cluster: the failure message says why it stayed down.
            var views = new List<string>();
            foreach (var node in cluster.Nodes.Where(n => n.IsRunning))
            {
                var info = (await PrivateRedis.CliAsync(node.Port, "cluster", "info")).Output;
                var nodes = (await PrivateRedis.CliAsync(node.Port, "cluster", "nodes")).Output;
                views.Add($"node {node.Port}: {info.Split('\n').FirstOrDefault(l => l.StartsWith("cluster_state", StringComparison.Ordinal))?.Trim()}\n{nodes.Trim()}\n" +
                    $"log:\n{node.LogTail(12)}");
            }
            Assert.Fail($"the run did not drain before its deadline ({accepted.Count} of {acknowledged.Count} done; {unavailable} refused, last: {lastUnavailable}); " +
                $"replica promoted {promotedAfter.TotalSeconds:F1} s after SIGKILL\n{string.Join("\n", views)}");
        }

        // Counted from the store: every acknowledged task that still exists is Succeeded; the rest are what the
        // failover lost (asynchronous replication: writes the master acknowledged but had not yet sent).
        var missing = 0;
        var notDone = 0;
        foreach (var (_, id) in acknowledged)
        {
            try
            {
                if ((await store.GetAsync(id, Ct)).State != TaskState.Succeeded) notDone++;
            }
            catch (TaskNotFoundException)
            {
                missing++;
            }
        }
        var twice = accepted.Count(a => a.Value > 1);
        output?.WriteLine($"failover: replica promoted {promotedAfter.TotalSeconds:F1} s after SIGKILL; {unavailable} calls refused as unavailable meanwhile; " +
            $"of {acknowledged.Count} acknowledged tasks {missing} lost, {twice} completed twice (their first completion was lost), {notDone} not done");
        Assert.Equal(0, notDone);
        // The same store, with no restart, serves the dead master's slot from the promoted replica: a new task there is
        // enqueued, leased and completed. (Counting the workers' completions after the kill was not enough: queue 0's
        // worker could drain it before the kill, and the check then failed with nothing lost.)
        TaskLease? again = null;
        await Await.Until(async () =>
        {
            try
            {
                again ??= (await store.LeaseAsync(queues[0], "after", 1, TimeSpan.FromSeconds(30), Ct)).SingleOrDefault();
                if (again is null) await store.EnqueueAsync(new EnqueueRequest(queues[0], [7]), Ct);
                return again is not null;
            }
            catch (StoreUnavailableException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(100), "a task on the dead master's queue leased after the failover");
        await store.CompleteAsync(again!, null, Ct);
        Assert.Equal(TaskState.Succeeded, (await store.GetAsync(again!.TaskId, Ct)).State);
        output?.WriteLine($"completions on the dead master's queue after the kill, by the workers: {completedAfterFailover}");
        // Asynchronous replication may lose acknowledged writes of the dead master (ADR 004 promises nothing more under
        // data loss), and how many depends on the replica's lag at the kill: a CI rehearsal lost 180 of 720 on a loaded
        // box. What must hold is that nothing is lost anywhere else: at most the tasks of the queues the victim served.
        var victimPorts = new[] { victimPort };
        var onVictim = acknowledged.Count(a => victimPorts.Contains(((IPEndPoint)config.GetBySlot(RedisTaskStore.HashSlot("failover:" + a.Queue))!.EndPoint!).Port));
        Assert.True(missing <= onVictim, $"{missing} lost, more than the {onVictim} acknowledged tasks of the killed master's queues");
    }
}
