using System.Buffers.Binary;
using System.Text;

namespace Konduit.Cassandra.Cql;

/// <summary>
/// Writes the notations of §3 ([short], [int], [string], [long string], [bytes], [value], [string map], …),
/// big-endian, into a growable buffer.
/// </summary>
internal sealed class CqlWriter
{
    private byte[] _buffer;
    private int _length;

    public CqlWriter(int capacity = 256) => _buffer = new byte[Math.Max(16, capacity)];

    public int Length => _length;

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _length);

    public byte[] ToArray() => WrittenSpan.ToArray();

    private Span<byte> Grow(int count)
    {
        if (_length + count > _buffer.Length)
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + count));
        var span = _buffer.AsSpan(_length, count);
        _length += count;
        return span;
    }

    public void WriteByte(byte value) => Grow(1)[0] = value;

    /// <summary>[short]: an unsigned 16-bit integer.</summary>
    public void WriteShort(int value)
    {
        if (value is < 0 or > ushort.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(value), value, "A [short] holds 0..65535.");
        BinaryPrimitives.WriteUInt16BigEndian(Grow(2), (ushort)value);
    }

    public void WriteInt(int value) => BinaryPrimitives.WriteInt32BigEndian(Grow(4), value);

    public void WriteLong(long value) => BinaryPrimitives.WriteInt64BigEndian(Grow(8), value);

    public void WriteRaw(ReadOnlySpan<byte> bytes) => bytes.CopyTo(Grow(bytes.Length));

    /// <summary>[string]: a [short] byte count, then UTF-8.</summary>
    public void WriteString(string value)
    {
        var count = Encoding.UTF8.GetByteCount(value);
        WriteShort(count);
        Encoding.UTF8.GetBytes(value, Grow(count));
    }

    /// <summary>[long string]: an [int] byte count, then UTF-8.</summary>
    public void WriteLongString(string value)
    {
        var count = Encoding.UTF8.GetByteCount(value);
        WriteInt(count);
        Encoding.UTF8.GetBytes(value, Grow(count));
    }

    /// <summary>[bytes]: an [int] count then the bytes; null is a count of -1.</summary>
    public void WriteBytes(byte[]? value)
    {
        if (value is null)
        {
            WriteInt(-1);
            return;
        }
        WriteInt(value.Length);
        WriteRaw(value);
    }

    /// <summary>[value]: like [bytes], plus -2 for "unset" (protocol v4 only; the caller checks the version).</summary>
    public void WriteValue(CqlValue value)
    {
        if (value.IsUnset)
            WriteInt(-2);
        else
            WriteBytes(value.Bytes);
    }

    /// <summary>[short bytes]: a [short] count then the bytes.</summary>
    public void WriteShortBytes(ReadOnlySpan<byte> value)
    {
        WriteShort(value.Length);
        WriteRaw(value);
    }

    public void WriteStringList(IReadOnlyCollection<string> values)
    {
        WriteShort(values.Count);
        foreach (var value in values)
            WriteString(value);
    }

    public void WriteStringMap(IReadOnlyCollection<KeyValuePair<string, string>> map)
    {
        WriteShort(map.Count);
        foreach (var (key, value) in map)
        {
            WriteString(key);
            WriteString(value);
        }
    }

    public void WriteConsistency(CqlConsistency consistency) => WriteShort((int)consistency);
}

/// <summary>An encoded bound value: bytes, null (no bytes) or, in v4, "unset".</summary>
internal readonly record struct CqlValue(byte[]? Bytes, bool IsUnset)
{
    public static readonly CqlValue Null = new(null, false);
    public static readonly CqlValue Unset = new(null, true);

    public static CqlValue Of(byte[]? bytes) => new(bytes, false);
}
