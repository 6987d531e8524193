using System.Buffers.Binary;
using Konduit.Cassandra.Cql;

namespace Konduit.Cassandra.EventLog;

/// <summary>
/// Maps Konduit's UUIDv7 event ids to Cassandra timeuuids (version 1) and back (docs/adr/005): the v1 timestamp is
/// the v7 millisecond times 10 000 plus the v7 12-bit counter (100-ns units, so the counter keeps same-millisecond
/// events in order), and the v1 clock-sequence/node bytes are the v7 random tail. A re-sent event therefore maps to
/// the same timeuuid, which is what makes Cassandra appends idempotent.
/// </summary>
/// <remarks>
/// Other writers' timeuuids use the whole 100-ns range of a millisecond (0–9 999), which 12 bits cannot hold: the
/// reverse mapping keeps their millisecond and tail and saturates their sub-millisecond part at 4 095
/// (<see cref="SaturatedCounter"/>). Such ids are not exact, so a cursor with that counter is resolved by
/// <see cref="QueueWindowReader"/> by looking the row up, not by mapping it back.
/// </remarks>
internal static class TimeUuidMapping
{
    /// <summary>The counter every foreign timeuuid with 4 095 or more 100-ns ticks into its millisecond maps to.</summary>
    public const int SaturatedCounter = 0xFFF;

    private const long TicksPerMillisecond = 10_000;

    public static Guid ToTimeUuid(Guid eventId)
    {
        Span<byte> v7 = stackalloc byte[16];
        eventId.TryWriteBytes(v7, bigEndian: true, out _);
        return FromTicks(TaskEventId.GetMillis(eventId) * TicksPerMillisecond + TaskEventId.GetCounter(eventId), v7[8..]);
    }

    public static Guid ToEventId(Guid timeUuid)
    {
        Span<byte> v1 = stackalloc byte[16];
        timeUuid.TryWriteBytes(v1, bigEndian: true, out _);
        var ticks = UnixTicks(timeUuid);
        var millis = Math.Clamp(Math.DivRem(ticks, TicksPerMillisecond, out var within), 0, 0xFFFF_FFFF_FFFF);
        var counter = (int)Math.Min(within, SaturatedCounter);
        Span<byte> v7 = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32BigEndian(v7, (uint)(millis >> 16));
        BinaryPrimitives.WriteUInt16BigEndian(v7[4..], (ushort)millis);
        v7[6] = (byte)(0x70 | ((counter >> 8) & 0x0F));
        v7[7] = (byte)counter;
        v1[8..].CopyTo(v7[8..]);
        v7[8] = (byte)((v7[8] & 0x3F) | 0x80);
        return new Guid(v7, bigEndian: true);
    }

    /// <summary>100-ns ticks since the Unix epoch of a v1 UUID.</summary>
    public static long UnixTicks(Guid timeUuid) => CqlTimeUuid.GetTimestamp(timeUuid).UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;

    /// <summary>
    /// The smallest timeuuid of a 100-ns instant in Cassandra's order: the tail bytes 0x80 (−128, as Cassandra
    /// compares them signed), like <c>minTimeuuid()</c>. A bound, never a stored id.
    /// </summary>
    public static Guid MinAt(long unixTicks) => FromTicks(unixTicks, [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80]);

    /// <summary>The smallest timeuuid of millisecond <paramref name="millis"/>.</summary>
    public static Guid MinAtMillis(long millis) => MinAt(millis * TicksPerMillisecond);

    private static Guid FromTicks(long unixTicks, ReadOnlySpan<byte> tail) => CqlTimeUuid.Create(DateTimeOffset.UnixEpoch.AddTicks(unixTicks), tail);
}

/// <summary>
/// Cassandra's timeuuid order, so rows merged from several shards keep the order each shard returns them in
/// (docs/adr/005): the 60-bit timestamp first, then the clock-sequence and node bytes compared as <em>signed</em>
/// bytes (2.1's <c>TimeUUIDType.compare</c> falls back to <c>ByteBuffer.compareTo</c>; later versions keep "a signed
/// per-byte comparison for compatibility"). An unsigned comparison would disagree whenever a tail byte has its high bit set.
/// </summary>
internal sealed class CassandraTimeUuidOrder : IComparer<Guid>
{
    public static readonly CassandraTimeUuidOrder Instance = new();

    public int Compare(Guid x, Guid y)
    {
        var byTime = TimeUuidMapping.UnixTicks(x).CompareTo(TimeUuidMapping.UnixTicks(y));
        if (byTime != 0) return byTime;
        Span<byte> a = stackalloc byte[16];
        Span<byte> b = stackalloc byte[16];
        x.TryWriteBytes(a, bigEndian: true, out _);
        y.TryWriteBytes(b, bigEndian: true, out _);
        for (var i = 8; i < 16; i++)
        {
            var c = ((sbyte)a[i]).CompareTo((sbyte)b[i]);
            if (c != 0) return c;
        }
        return 0;
    }
}
