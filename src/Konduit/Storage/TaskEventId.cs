using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Konduit.Storage;

/// <summary>
/// Event ids: RFC 9562 UUIDv7 stamped with the event's time. Ids made for the same millisecond by one process
/// strictly increase (the 12-bit <c>rand_a</c> field is a counter), so a task's events keep their order. Unlike
/// <see cref="TaskIdGenerator"/> an id is never moved to a later millisecond for a time in the past: the id's
/// time is the event's time. Ids compare with <see cref="Comparer"/> (RFC byte order, as PostgreSQL does).
/// </summary>
public static class TaskEventId
{
    private static readonly Lock Gate = new();
    private static long _lastMillis = -1;
    private static int _counter;

    /// <summary>Orders ids by their big-endian (RFC) bytes: time first.</summary>
    public static IComparer<Guid> Comparer { get; } = new ByteOrderComparer();

    /// <summary>A new id for <paramref name="timestamp"/> (millisecond precision).</summary>
    public static Guid NewId(DateTimeOffset timestamp)
    {
        var millis = timestamp.ToUnixTimeMilliseconds();
        if (millis < 0 || millis > 0xFFFF_FFFF_FFFF)
            throw new ArgumentOutOfRangeException(nameof(timestamp), timestamp, "Event times must lie between 1970 and year 10889.");
        int counter;
        lock (Gate)
        {
            if (millis == _lastMillis && _counter < 0xFFF)
            {
                counter = ++_counter;
            }
            else
            {
                // A new millisecond (or an exhausted one): start low but random, leaving room to count up.
                _lastMillis = millis;
                _counter = counter = RandomNumberGenerator.GetInt32(0, 0x400);
            }
        }
        return Create(millis, counter);
    }

    /// <summary>The time stamped into a UUIDv7.</summary>
    /// <exception cref="ArgumentException">The id is not a UUIDv7.</exception>
    public static DateTimeOffset GetTimestamp(Guid eventId)
    {
        if (!IsVersion7(eventId))
            throw new ArgumentException($"{eventId} is not a UUIDv7 event id.", nameof(eventId));
        return DateTimeOffset.FromUnixTimeMilliseconds(GetMillis(eventId));
    }

    /// <summary>True when <paramref name="id"/> is an RFC 9562 version-7 UUID.</summary>
    public static bool IsVersion7(Guid id)
    {
        Span<byte> bytes = stackalloc byte[16];
        id.TryWriteBytes(bytes, bigEndian: true, out _);
        return bytes[6] >> 4 == 7 && (bytes[8] & 0xC0) == 0x80;
    }

    /// <summary>The smallest possible id of millisecond <paramref name="timestamp"/>: a window's inclusive lower bound.</summary>
    public static Guid MinFor(DateTimeOffset timestamp)
    {
        Span<byte> bytes = stackalloc byte[16];
        WriteMillis(bytes, Math.Clamp(timestamp.ToUnixTimeMilliseconds(), 0, 0xFFFF_FFFF_FFFF));
        bytes[6] = 0x70;
        bytes[8] = 0x80;
        return new Guid(bytes, bigEndian: true);
    }

    /// <summary>The 12-bit counter (<c>rand_a</c>) of a UUIDv7.</summary>
    public static int GetCounter(Guid eventId)
    {
        Span<byte> bytes = stackalloc byte[16];
        eventId.TryWriteBytes(bytes, bigEndian: true, out _);
        return ((bytes[6] & 0x0F) << 8) | bytes[7];
    }

    /// <summary>The Unix time in milliseconds stamped into a UUIDv7 (not checked to be one; see <see cref="IsVersion7"/>).</summary>
    public static long GetMillis(Guid eventId)
    {
        Span<byte> bytes = stackalloc byte[16];
        eventId.TryWriteBytes(bytes, bigEndian: true, out _);
        return (long)BinaryPrimitives.ReadUInt32BigEndian(bytes) << 16 | BinaryPrimitives.ReadUInt16BigEndian(bytes[4..]);
    }

    private static Guid Create(long millis, int counter)
    {
        Span<byte> bytes = stackalloc byte[16];
        RandomNumberGenerator.Fill(bytes[8..]);
        WriteMillis(bytes, millis);
        bytes[6] = (byte)(0x70 | ((counter >> 8) & 0x0F));
        bytes[7] = (byte)counter;
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80);
        return new Guid(bytes, bigEndian: true);
    }

    private static void WriteMillis(Span<byte> bytes, long millis)
    {
        BinaryPrimitives.WriteUInt32BigEndian(bytes, (uint)(millis >> 16));
        BinaryPrimitives.WriteUInt16BigEndian(bytes[4..], (ushort)millis);
    }

    private sealed class ByteOrderComparer : IComparer<Guid>
    {
        public int Compare(Guid x, Guid y)
        {
            Span<byte> a = stackalloc byte[16];
            Span<byte> b = stackalloc byte[16];
            x.TryWriteBytes(a, bigEndian: true, out _);
            y.TryWriteBytes(b, bigEndian: true, out _);
            return a.SequenceCompareTo(b);
        }
    }
}
