using Konduit.Cassandra.Cql;

namespace Konduit.Cassandra.EventLog;

/// <summary>
/// Reads a queue window (docs/adr/005): only buckets that can hold unexpired, non-future events; in each bucket the
/// shards are read concurrently and merged in Cassandra's timeuuid order (<see cref="CassandraTimeUuidOrder"/>), so the
/// keyset cursor (the last event id returned) means the same position in every shard.
/// </summary>
internal sealed class QueueWindowReader(CqlSession session, CassandraQueries cql, CqlQueryOptions read, long bucketMillis, int shardCount)
{
    /// <summary>How far ahead of this node's clock a producer's clock may run: later buckets are not read.</summary>
    public static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(1);

    /// <summary>Partitions queried by the last reads (tests check that expired and future buckets are skipped).</summary>
    public long PartitionsRead => Interlocked.Read(ref _partitionsRead);

    private long _partitionsRead;

    /// <summary>Up to <paramref name="wanted"/> events of [<paramref name="lowerMillis"/>, <paramref name="upperMillis"/>) after <paramref name="after"/>.</summary>
    public async Task<List<TaskEvent>> ReadAsync(string queue, long lowerMillis, long upperMillis, Guid? after, int wanted, CancellationToken cancellationToken)
    {
        var events = new List<TaskEvent>(Math.Min(wanted, 1024));
        var startMillis = after is { } a ? TaskEventId.GetMillis(a) : lowerMillis;
        for (var bucket = startMillis - startMillis % bucketMillis; bucket < upperMillis && events.Count < wanted; bucket += bucketMillis)
        {
            var hi = TimeUuidMapping.MinAtMillis(Math.Min(upperMillis, bucket + bucketMillis));
            var bucketTime = DateTimeOffset.FromUnixTimeMilliseconds(bucket);
            Bound lo;
            if (after is { } cursor && bucket <= TaskEventId.GetMillis(cursor))
            {
                if (TaskEventId.GetCounter(cursor) < TimeUuidMapping.SaturatedCounter)
                {
                    lo = new Bound(TimeUuidMapping.ToTimeUuid(cursor), Inclusive: false);
                }
                else
                {
                    // The cursor may stand for a foreign row whose exact timeuuid 12 bits cannot hold: find it among
                    // the rows of its millisecond at or past tick 4 095, then go on from the next millisecond.
                    var ms = TaskEventId.GetMillis(cursor);
                    events.AddRange(await AfterSaturatedCursorAsync(queue, bucketTime, cursor, ms, hi, wanted - events.Count, cancellationToken).ConfigureAwait(false));
                    lo = new Bound(TimeUuidMapping.MinAtMillis(ms + 1), Inclusive: true);
                }
            }
            else
            {
                lo = new Bound(TimeUuidMapping.MinAtMillis(Math.Max(lowerMillis, bucket)), Inclusive: true);
            }
            if (events.Count < wanted)
                await MergeShardsAsync(queue, bucketTime, lo, hi, wanted - events.Count, events, cancellationToken).ConfigureAwait(false);
        }
        return events;
    }

    private async Task<List<TaskEvent>> AfterSaturatedCursorAsync(
        string queue, DateTimeOffset bucket, Guid cursor, long ms, Guid hi, int wanted, CancellationToken cancellationToken)
    {
        var from = new Bound(TimeUuidMapping.MinAt(ms * 10_000 + TimeUuidMapping.SaturatedCounter), Inclusive: true);
        var to = TimeUuidMapping.MinAtMillis(ms + 1);
        if (CassandraTimeUuidOrder.Instance.Compare(hi, to) < 0) to = hi;
        var rows = new List<(Guid Raw, CqlRow Row)>();
        var perShard = await Task.WhenAll(Enumerable.Range(0, shardCount).Select(async shard =>
        {
            var list = new List<(Guid, CqlRow)>();
            await foreach (var row in Query(queue, bucket, shard, from, to, int.MaxValue, cancellationToken).ConfigureAwait(false))
                list.Add(((Guid)row[0]!, row));
            return list;
        })).ConfigureAwait(false);
        foreach (var list in perShard) rows.AddRange(list);
        rows.Sort((x, y) => CassandraTimeUuidOrder.Instance.Compare(x.Raw, y.Raw));
        var at = rows.FindIndex(r => TimeUuidMapping.ToEventId(r.Raw) == cursor);
        // Not found (expired meanwhile): continue after where the cursor would be if it were exact.
        var exact = TimeUuidMapping.ToTimeUuid(cursor);
        var next = at >= 0 ? rows.Skip(at + 1) : rows.Where(r => CassandraTimeUuidOrder.Instance.Compare(r.Raw, exact) > 0);
        return [.. next.Select(r => EventRows.Read(r.Row, queue)).OfType<TaskEvent>().Take(wanted)];
    }

    /// <summary>A k-way merge of the bucket's shards: each read lazily, <paramref name="wanted"/> rows at a time.</summary>
    private async Task MergeShardsAsync(string queue, DateTimeOffset bucket, Bound lo, Guid hi, int wanted, List<TaskEvent> into, CancellationToken cancellationToken)
    {
        var shards = Enumerable.Range(0, shardCount).Select(s => new ShardStream(s, lo)).ToArray();
        await Task.WhenAll(shards.Select(s => FetchAsync(queue, bucket, s, hi, wanted, cancellationToken))).ConfigureAwait(false);
        var taken = 0;
        while (taken < wanted)
        {
            ShardStream? min = null;
            foreach (var shard in shards)
            {
                if (shard.Rows.Count == 0 && !shard.Exhausted)
                    await FetchAsync(queue, bucket, shard, hi, wanted - taken, cancellationToken).ConfigureAwait(false);
                if (shard.Rows.Count > 0 && (min is null || CassandraTimeUuidOrder.Instance.Compare(shard.HeadRaw, min.HeadRaw) < 0))
                    min = shard;
            }
            if (min is null) return;
            var row = min.Rows.Dequeue();
            if (EventRows.Read(row, queue) is { } e)
            {
                into.Add(e);
                taken++;
            }
        }
    }

    private async Task FetchAsync(string queue, DateTimeOffset bucket, ShardStream shard, Guid hi, int limit, CancellationToken cancellationToken)
    {
        var count = 0;
        await foreach (var row in Query(queue, bucket, shard.Shard, shard.Next, hi, limit, cancellationToken).ConfigureAwait(false))
        {
            shard.Rows.Enqueue(row);
            shard.Next = new Bound((Guid)row[0]!, Inclusive: false);
            count++;
        }
        shard.Exhausted = count < limit;
    }

    private IAsyncEnumerable<CqlRow> Query(string queue, DateTimeOffset bucket, int shard, Bound lo, Guid hi, int limit, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _partitionsRead);
        return session.QueryAsync(lo.Inclusive ? cql.WindowFrom : cql.WindowAfter, [queue, bucket, shard, lo.Value, hi, limit], read, cancellationToken);
    }

    private readonly record struct Bound(Guid Value, bool Inclusive);

    private sealed class ShardStream(int shard, Bound next)
    {
        public int Shard { get; } = shard;

        public Bound Next { get; set; } = next;

        public Queue<CqlRow> Rows { get; } = new();

        public bool Exhausted { get; set; }

        public Guid HeadRaw => (Guid)Rows.Peek()[0]!;
    }
}
