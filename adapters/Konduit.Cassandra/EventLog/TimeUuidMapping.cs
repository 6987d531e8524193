using System.Buffers.Binary;
using Konduit.Cassandra.Cql;

namespace Konduit.Cassandra.EventLog;

/// <summary>
/// Maps Konduit's UUIDv7 event ids to Cassandra timeuuids (version 1) and back, losslessly (docs/adr/005):
/// the v1 timestamp is the v7 millisecond times 10 000 plus the v7 12-bit counter (100-ns units, so the counter
/// keeps same-millisecond events in order), and the v1 clock-sequence/node bytes are the v7 random tail. A re-sent
/// event therefore maps to the same timeuuid, which is what makes Cassandra appends idempotent.
/// </summary>
internal static class TimeUuidMapping
{
    public static Guid ToTimeUuid(Guid eventId)
    {
        Span<byte> v7 = stackalloc byte[16];
        eventId.TryWriteBytes(v7, bigEndian: true, out _);
        var millis = TaskEventId.GetTimestamp(eventId).ToUnixTimeMilliseconds();
        var counter = TaskEventId.GetCounter(eventId);
        var time = DateTimeOffset.UnixEpoch.AddTicks(millis * TimeSpan.TicksPerMillisecond + counter);
        return CqlTimeUuid.Create(time, v7[8..]);
    }

    public static Guid ToEventId(Guid timeUuid)
    {
        Span<byte> v1 = stackalloc byte[16];
        timeUuid.TryWriteBytes(v1, bigEndian: true, out _);
        var ticks = CqlTimeUuid.GetTimestamp(timeUuid).UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        var millis = ticks / TimeSpan.TicksPerMillisecond;
        var counter = (int)(ticks % TimeSpan.TicksPerMillisecond);
        Span<byte> v7 = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32BigEndian(v7, (uint)(millis >> 16));
        BinaryPrimitives.WriteUInt16BigEndian(v7[4..], (ushort)millis);
        v7[6] = (byte)(0x70 | ((counter >> 8) & 0x0F));
        v7[7] = (byte)counter;
        v1[8..].CopyTo(v7[8..]);
        return new Guid(v7, bigEndian: true);
    }
}
