using StackExchange.Redis;

namespace Konduit.PostgresRedis;

// Redis upkeep of the dispatch streams (issue 13, item 8): purging deletes the streams of queues with nothing pending,
// and the sweeper prunes idle consumers, as the Redis store does, so restarts do not pile up consumers.
public sealed partial class PostgresRedisTaskStore
{
    private long _lastPruneTicks;

    /// <summary>A consumer (worker id) that holds no entry and was idle this long is removed from its group (default 10 min, as the Redis store).</summary>
    internal TimeSpan ConsumerIdleLimit { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>The sweeper prunes consumers at most this often (default 1 min).</summary>
    internal TimeSpan ConsumerPruneInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Consumers removed by <see cref="PruneIdleConsumersAsync"/> so far.</summary>
    internal long ConsumersPruned => Interlocked.Read(ref _consumersPruned);

    private long _consumersPruned;

    /// <summary>
    /// After a purge: deletes the dispatch stream of every queue concerned (the one purged, else the queues of the
    /// purged tasks and every queue this store has used) that has no pending task left in PostgreSQL. Hints only
    /// point PostgreSQL's lease at ids, so a hint lost to a race with a concurrent enqueue costs nothing: the
    /// ordered lease still finds the row, and the next XADD recreates the stream (a missing group is recreated from
    /// the stream's beginning and refilled, as after Redis lost its data). Best effort: never throws for Redis.
    /// </summary>
    private async Task DropIdleDispatchStreamsAsync(string? queue, IReadOnlyList<PurgedTask> purged, CancellationToken cancellationToken)
    {
        if (IsRedisDegraded || Volatile.Read(ref _disposed) != 0) return;
        var candidates = new HashSet<string>(StringComparer.Ordinal);
        if (queue is not null) candidates.Add(queue);
        else
        {
            foreach (var p in purged) candidates.Add(p.Queue);
            foreach (var q in _queues.Keys) candidates.Add(q);
        }
        if (candidates.Count == 0) return;
        var stats = await _inner.GetStatsAsync(cancellationToken).ConfigureAwait(false);
        var busy = stats.Where(s => s.Pending > 0).Select(s => s.Queue).ToHashSet(StringComparer.Ordinal);
        try
        {
            var db = await DatabaseAsync().ConfigureAwait(false);
            var drops = new List<Task>();
            foreach (var q in candidates.Where(q => !busy.Contains(q)))
            {
                _groupsReady.TryRemove(q, out _);
                // One key per DEL: the streams of different queues live in different slots.
                drops.Add(db.KeyDeleteAsync(StreamKey(q)));
            }
            await Task.WhenAll(drops).WaitAsync(_redisTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsRedisFailure(ex))
        {
            RedisFailed();
        }
    }

    /// <summary>
    /// Removes, from the dispatch stream of every queue this store has used, the consumers that hold no entry and
    /// were idle for <see cref="ConsumerIdleLimit"/> (each worker id is a consumer; a restarted process brings new
    /// ones). At most once per <see cref="ConsumerPruneInterval"/>; best effort: never throws for Redis.
    /// </summary>
    private async Task PruneIdleConsumersAsync(CancellationToken cancellationToken)
    {
        if (IsRedisDegraded || Volatile.Read(ref _disposed) != 0) return;
        var now = Environment.TickCount64;
        var last = Interlocked.Read(ref _lastPruneTicks);
        if (last != 0 && now - last < (long)ConsumerPruneInterval.TotalMilliseconds) return;
        if (Interlocked.CompareExchange(ref _lastPruneTicks, now, last) != last) return;
        try
        {
            var db = await DatabaseAsync().ConfigureAwait(false);
            foreach (var queue in _queues.Keys)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var key = StreamKey(queue);
                StreamConsumerInfo[] consumers;
                try
                {
                    consumers = await db.StreamConsumerInfoAsync(key, GroupName).WaitAsync(_redisTimeout, cancellationToken).ConfigureAwait(false);
                }
                catch (RedisServerException ex) when (ex.Message.Contains("NOGROUP", StringComparison.Ordinal) || ex.Message.Contains("no such key", StringComparison.OrdinalIgnoreCase))
                {
                    continue; // no stream (purged, or never dispatched to): nothing to prune
                }
                foreach (var consumer in consumers)
                {
                    if (consumer.PendingMessageCount != 0 || consumer.IdleTimeInMilliseconds < (long)ConsumerIdleLimit.TotalMilliseconds) continue;
                    await db.StreamDeleteConsumerAsync(key, GroupName, consumer.Name).WaitAsync(_redisTimeout, cancellationToken).ConfigureAwait(false);
                    Interlocked.Increment(ref _consumersPruned);
                }
            }
        }
        catch (Exception ex) when (IsRedisFailure(ex))
        {
            RedisFailed();
        }
    }
}
