using System.Security.Cryptography;

namespace Konduit.Storage;

/// <summary>
/// Time-ordered task ids (RFC 9562 UUIDv7). Unlike <see cref="Guid.CreateVersion7()"/>, ids from one process
/// are strictly increasing even within one millisecond (the 12-bit <c>rand_a</c> field is a counter), so
/// "enqueue order" is the id order. Byte order of the RFC layout sorts the same in .NET and in PostgreSQL.
/// </summary>
public static class TaskIdGenerator
{
    private static readonly Lock Gate = new();
    private static long _lastMillis;
    private static int _counter;

    /// <summary>Returns a new id, greater than every id this process returned before.</summary>
    public static Guid NewId() => NewId(DateTimeOffset.UtcNow);

    /// <summary>Returns a new id stamped with <paramref name="now"/> (or later, to stay monotonic).</summary>
    public static Guid NewId(DateTimeOffset now)
    {
        long millis;
        int counter;
        lock (Gate)
        {
            millis = now.ToUnixTimeMilliseconds();
            if (millis <= _lastMillis)
            {
                millis = _lastMillis;
                if (++_counter > 0xFFF)
                {
                    // Counter exhausted within one millisecond: borrow the next millisecond.
                    millis = ++_lastMillis;
                    _counter = 0;
                }
            }
            else
            {
                _lastMillis = millis;
                _counter = 0;
            }
            counter = _counter;
        }

        Span<byte> bytes = stackalloc byte[16];
        RandomNumberGenerator.Fill(bytes[8..]);
        bytes[0] = (byte)(millis >> 40);
        bytes[1] = (byte)(millis >> 32);
        bytes[2] = (byte)(millis >> 24);
        bytes[3] = (byte)(millis >> 16);
        bytes[4] = (byte)(millis >> 8);
        bytes[5] = (byte)millis;
        bytes[6] = (byte)(0x70 | ((counter >> 8) & 0x0F));
        bytes[7] = (byte)counter;
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80);
        return new Guid(bytes, bigEndian: true);
    }
}
