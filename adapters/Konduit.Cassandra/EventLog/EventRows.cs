using System.Buffers.Binary;
using System.Text;
using Konduit.Cassandra.Cql;

namespace Konduit.Cassandra.EventLog;

/// <summary>One row to write: its partition, the statement shape (which optional columns it has) and the bound values.</summary>
internal sealed record EventRow(TaskEvent Event, object Partition, int Mask, object?[] Values, int EstimatedBytes);

/// <summary>How events become rows and rows become events (docs/adr/005).</summary>
internal static class EventRows
{
    // Per written cell, as Cassandra 2.1 sizes a batch (ColumnFamily.dataSize): clustering (16-byte timeuuid) and
    // column name, value, timestamp (8), and for an expiring cell its TTL and expiry time (8). Plus the row marker.
    private const int ClusteringBytes = 16;
    private const int CellOverhead = ClusteringBytes + 8 + 8;

    public static int Mask(TaskEvent e) => (e.Tenant is null ? 0 : 1) | (e.WorkerId is null ? 0 : 2) | (e.Error is null ? 0 : 4);

    /// <summary>The shard of an event: from its random tail, so a re-sent event lands in the same partition.</summary>
    public static int Shard(Guid eventId, int shardCount)
    {
        Span<byte> bytes = stackalloc byte[16];
        eventId.TryWriteBytes(bytes, bigEndian: true, out _);
        return (int)(BinaryPrimitives.ReadUInt32BigEndian(bytes[12..]) % (uint)shardCount);
    }

    public static EventRow ByTask(TaskEvent e)
    {
        var mask = Mask(e);
        var values = new List<object?> { e.TaskId, TimeUuidMapping.ToTimeUuid(e.EventId), e.Queue, (int)e.Kind, e.Attempt, e.LeaseToken };
        AddOptional(values, e, mask);
        return new EventRow(e, e.TaskId, mask, [.. values], Estimate(e, mask, queueCell: true));
    }

    public static EventRow ByQueue(TaskEvent e, long bucketMillis, int shardCount)
    {
        var mask = Mask(e);
        var bucket = TaskEventId.GetMillis(e.EventId);
        bucket -= bucket % bucketMillis;
        var shard = Shard(e.EventId, shardCount);
        var values = new List<object?>
        {
            e.Queue, DateTimeOffset.FromUnixTimeMilliseconds(bucket), shard, TimeUuidMapping.ToTimeUuid(e.EventId), e.TaskId, (int)e.Kind, e.Attempt, e.LeaseToken,
        };
        AddOptional(values, e, mask);
        return new EventRow(e, (e.Queue, bucket, shard), mask, [.. values], Estimate(e, mask, queueCell: false));
    }

    private static void AddOptional(List<object?> values, TaskEvent e, int mask)
    {
        if ((mask & 1) != 0) values.Add(e.Tenant);
        if ((mask & 2) != 0) values.Add(e.WorkerId);
        if ((mask & 4) != 0) values.Add(e.Error);
    }

    /// <summary>The row's size as the server counts it toward batch_size_warn_threshold_in_kb (an upper estimate).</summary>
    private static int Estimate(TaskEvent e, int mask, bool queueCell)
    {
        var bytes = CellOverhead; // row marker
        bytes += CellOverhead + "task_id".Length + 16;
        bytes += CellOverhead + "kind".Length + 4;
        bytes += CellOverhead + "attempt".Length + 4;
        bytes += CellOverhead + "lease_token".Length + 8;
        if (queueCell) bytes += CellOverhead + "queue".Length + Encoding.UTF8.GetByteCount(e.Queue);
        if ((mask & 1) != 0) bytes += CellOverhead + "tenant".Length + Encoding.UTF8.GetByteCount(e.Tenant!);
        if ((mask & 2) != 0) bytes += CellOverhead + "worker".Length + Encoding.UTF8.GetByteCount(e.WorkerId!);
        if ((mask & 4) != 0) bytes += CellOverhead + "error".Length + Encoding.UTF8.GetByteCount(e.Error!);
        return bytes;
    }

    /// <summary>
    /// Splits one partition's rows into batches of at most <paramref name="maxBytes"/> (estimated); a row larger than
    /// that goes alone.
    /// </summary>
    public static IEnumerable<List<EventRow>> SplitBySize(IEnumerable<EventRow> rows, int maxBytes)
    {
        var batch = new List<EventRow>();
        var size = 0;
        foreach (var row in rows)
        {
            if (batch.Count > 0 && size + row.EstimatedBytes > maxBytes)
            {
                yield return batch;
                batch = [];
                size = 0;
            }
            batch.Add(row);
            size += row.EstimatedBytes;
        }
        if (batch.Count > 0) yield return batch;
    }

    /// <summary>
    /// Reads a row of either table (columns in <see cref="CassandraQueries"/> order), including rows other clients
    /// wrote: NULL attempt or lease token read as 0, an unknown kind is passed through as its number, and a row
    /// without a task id, kind or queue is not an event (null: skipped). Foreign timeuuids map as
    /// <see cref="TimeUuidMapping.ToEventId"/> says.
    /// </summary>
    public static TaskEvent? Read(CqlRow row, string? queue = null)
    {
        if (row[0] is not Guid timeUuid || row[1] is not Guid taskId || row[4] is not int kind) return null;
        var rowQueue = row[2] as string ?? queue;
        if (string.IsNullOrEmpty(rowQueue)) return null;
        return new TaskEvent
        {
            EventId = TimeUuidMapping.ToEventId(timeUuid),
            TaskId = taskId,
            Queue = rowQueue,
            Tenant = row[3] as string,
            Kind = (TaskEventKind)kind,
            Attempt = row[5] as int? ?? 0,
            LeaseToken = row[6] as long? ?? 0,
            WorkerId = row[7] as string,
            Error = row[8] as string,
        };
    }
}
