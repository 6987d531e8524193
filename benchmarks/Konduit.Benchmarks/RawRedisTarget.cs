using System.Collections.Concurrent;
using StackExchange.Redis;

namespace Konduit.Benchmarks;

/// <summary>
/// The Redis ceiling: a stream per queue and one consumer group, driven through StackExchange.Redis with no library
/// code. Enqueue = XADD (a batch = 100 XADDs pipelined in one write); lease = XREADGROUP … COUNT n STREAMS key &gt;;
/// complete = XACK + XDEL of the ids, pipelined (one round trip); heartbeat = XCLAIM … 0 id JUSTID (resets the
/// entry's idle time, what a lease extension is in a consumer group). No idempotency key, no fencing token, no
/// retry bookkeeping: the least a stream-based queue can do per task. A stream's key is hash-tagged
/// (<c>{prefix:queue}</c>), as the store's keys are: on a Redis Cluster each queue lives in one slot, and the queues
/// spread over the masters (the <c>raw-redis-cluster</c> target).
/// </summary>
public sealed class RawRedisTarget : IBenchTarget
{
    private const string Group = "workers";
    private static readonly NameValueEntry[] NoFields = [];
    private readonly RedisKeys _keys;
    private readonly ConcurrentDictionary<string, Task> _groups = new(StringComparer.Ordinal);

    private RawRedisTarget(string name, RedisKeys keys)
    {
        Name = name;
        _keys = keys;
    }

    /// <param name="name">The row label: <c>raw-redis</c> (one server) or <c>raw-redis-cluster</c>.</param>
    /// <param name="configuration">The server, or the cluster's nodes.</param>
    /// <param name="cancellationToken">Unused: connecting takes the multiplexer's own timeout.</param>
    public static async Task<IBenchTarget> CreateAsync(string name, string configuration, CancellationToken cancellationToken) =>
        new RawRedisTarget(name, await RedisKeys.ConnectAsync(configuration, Targets.NewName("rawredis")));

    public string Name { get; }
    public string Where => $"{_keys.Server}, streams `{{{_keys.Prefix}:<queue>}}`, group `{Group}`";

    /// <summary>This run's key prefix (every stream key starts with <c>{</c> and it).</summary>
    internal string KeyPrefix => _keys.Prefix;
    public ITaskStore? Store => null;
    public string? Baseline => null;
    public bool MeasuresStorage => false;
    public bool SupportsCopy => false;

    // Hash-tagged: the whole name is the tag, so a queue's stream has one slot and different queues land on different masters.
    private RedisKey Stream(string queue) => "{" + _keys.Prefix + ":" + queue + "}";

    /// <summary>The stream and its group, created once per queue (MKSTREAM), before the first XADD or XREADGROUP.</summary>
    private Task EnsureGroupAsync(string queue) => _groups.GetOrAdd(queue, q => CreateGroupAsync(Stream(q)));

    private async Task CreateGroupAsync(RedisKey key)
    {
        try
        {
            await _keys.Database.StreamCreateConsumerGroupAsync(key, Group, StreamPosition.Beginning, createStream: true);
        }
        catch (RedisServerException ex) when (ex.Message.StartsWith("BUSYGROUP", StringComparison.Ordinal))
        {
        }
    }

    public async Task EnqueueOneAsync(string queue, long n, CancellationToken cancellationToken)
    {
        await EnsureGroupAsync(queue);
        await _keys.Database.StreamAddAsync(Stream(queue), "p", Targets.Payload(n));
    }

    public async Task EnqueueBatchAsync(string queue, long first, int count, bool copy, CancellationToken cancellationToken)
    {
        await EnsureGroupAsync(queue);
        var key = Stream(queue);
        var batch = _keys.Database.CreateBatch();
        var adds = new Task[count];
        for (var i = 0; i < count; i++) adds[i] = batch.StreamAddAsync(key, "p", Targets.Payload(first + i));
        batch.Execute();
        await Task.WhenAll(adds);
    }

    public async Task<int> CycleAsync(string queue, string worker, int max, CancellationToken cancellationToken)
    {
        var entries = await ReadAsync(queue, worker, max);
        if (entries.Length == 0) return 0;
        var ids = new RedisValue[entries.Length];
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = entries[i].Id;
            _ = entries[i]["p"]; // the payload is read, as a worker would
        }
        var key = Stream(queue);
        var batch = _keys.Database.CreateBatch();
        var ack = batch.StreamAcknowledgeAsync(key, Group, ids);
        var del = batch.StreamDeleteAsync(key, ids);
        batch.Execute();
        await Task.WhenAll(ack, del);
        return entries.Length;
    }

    private async Task<StreamEntry[]> ReadAsync(string queue, string worker, int max)
    {
        await EnsureGroupAsync(queue);
        return await _keys.Database.StreamReadGroupAsync(Stream(queue), Group, worker, StreamPosition.NewMessages, max);
    }

    public async Task<IHeartbeats> LeaseForHeartbeatsAsync(string queue, string worker, int count, CancellationToken cancellationToken)
    {
        var ids = new List<RedisValue>(count);
        while (ids.Count < count)
        {
            var entries = await ReadAsync(queue, worker, count - ids.Count);
            if (entries.Length == 0) break;
            ids.AddRange(entries.Select(e => e.Id));
        }
        return new Beats(_keys.Database, Stream(queue), worker, [.. ids]);
    }

    private sealed class Beats(IDatabase db, RedisKey key, string worker, RedisValue[] ids) : IHeartbeats
    {
        public int Count => ids.Length;

        public async Task BeatAsync(int index, CancellationToken cancellationToken)
        {
            var claimed = await db.StreamClaimIdsOnlyAsync(key, Group, worker, 0, [ids[index]]);
            if (claimed.Length != 1) throw new InvalidOperationException($"XCLAIM of {ids[index]} claimed nothing");
        }
    }

    public Task<long?> RelationBytesAsync(CancellationToken cancellationToken) => Task.FromResult<long?>(null);

    public Task<long?> WalPositionAsync(CancellationToken cancellationToken) => Task.FromResult<long?>(null);

    public Task<StorageSnapshot?> StorageAsync(CancellationToken cancellationToken) => Task.FromResult<StorageSnapshot?>(null);

    public bool CanPinHorizon => false;

    public Task<HorizonPin?> PinHorizonAsync(CancellationToken cancellationToken) => Task.FromResult<HorizonPin?>(null);

    public async Task ResetAsync(CancellationToken cancellationToken)
    {
        await _keys.DeleteAllAsync();
        _groups.Clear();
    }

    public ValueTask DisposeAsync() => _keys.DisposeAsync();
}
