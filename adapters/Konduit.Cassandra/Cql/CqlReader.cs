using System.Buffers.Binary;
using System.Text;

namespace Konduit.Cassandra.Cql;

/// <summary>Reads the notations of §3 from a response body; running past the end is a malformed frame.</summary>
internal ref struct CqlReader
{
    private readonly ReadOnlySpan<byte> _data;
    private int _position;

    public CqlReader(ReadOnlySpan<byte> data)
    {
        _data = data;
        _position = 0;
    }

    public readonly int Position => _position;

    public readonly int Remaining => _data.Length - _position;

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count < 0 || count > Remaining)
            throw new CqlMalformedFrameException(
                $"Truncated response body: needed {count} bytes at offset {_position}, {Remaining} left.");
        var span = _data.Slice(_position, count);
        _position += count;
        return span;
    }

    public byte ReadByte() => Take(1)[0];

    public ushort ReadShort() => BinaryPrimitives.ReadUInt16BigEndian(Take(2));

    public int ReadInt() => BinaryPrimitives.ReadInt32BigEndian(Take(4));

    public long ReadLong() => BinaryPrimitives.ReadInt64BigEndian(Take(8));

    public string ReadString() => Encoding.UTF8.GetString(Take(ReadShort()));

    public string ReadLongString() => Encoding.UTF8.GetString(Take(ReadInt()));

    /// <summary>[bytes]: a negative count is null.</summary>
    public byte[]? ReadBytes()
    {
        var count = ReadInt();
        return count < 0 ? null : Take(count).ToArray();
    }

    /// <summary>[bytes] as a slice of the body (no copy); false for null.</summary>
    public bool TryReadBytesSpan(out ReadOnlySpan<byte> value)
    {
        var count = ReadInt();
        if (count < 0)
        {
            value = default;
            return false;
        }
        value = Take(count);
        return true;
    }

    public byte[] ReadShortBytes() => Take(ReadShort()).ToArray();

    public Guid ReadUuid() => new(Take(16), bigEndian: true);

    public CqlConsistency ReadConsistency() => (CqlConsistency)ReadShort();

    public IReadOnlyList<string> ReadStringList()
    {
        var count = ReadShort();
        var list = new string[count];
        for (var i = 0; i < count; i++)
            list[i] = ReadString();
        return list;
    }

    public IReadOnlyDictionary<string, IReadOnlyList<string>> ReadStringMultimap()
    {
        var count = ReadShort();
        var map = new Dictionary<string, IReadOnlyList<string>>(count, StringComparer.Ordinal);
        for (var i = 0; i < count; i++)
        {
            var key = ReadString();
            map[key] = ReadStringList();
        }
        return map;
    }

    public IReadOnlyDictionary<string, byte[]?> ReadBytesMap()
    {
        var count = ReadShort();
        var map = new Dictionary<string, byte[]?>(count, StringComparer.Ordinal);
        for (var i = 0; i < count; i++)
        {
            var key = ReadString();
            map[key] = ReadBytes();
        }
        return map;
    }

    /// <summary>An [option] describing a column type (§4.2.5.2), recursively for collections, UDTs and tuples.</summary>
    public CqlColumnType ReadType()
    {
        var code = (CqlTypeCode)ReadShort();
        switch (code)
        {
            case CqlTypeCode.Custom:
                return CqlColumnType.Custom(ReadString());
            case CqlTypeCode.List:
            case CqlTypeCode.Set:
                return new CqlColumnType(code, [ReadType()]);
            case CqlTypeCode.Map:
                var key = ReadType();
                return new CqlColumnType(code, [key, ReadType()]);
            case CqlTypeCode.Udt:
                var keyspace = ReadString();
                var name = ReadString();
                var fieldCount = ReadShort();
                var fields = new CqlColumnType[fieldCount];
                for (var i = 0; i < fieldCount; i++)
                {
                    ReadString();
                    fields[i] = ReadType();
                }
                return new CqlColumnType(code, fields, $"{keyspace}.{name}");
            case CqlTypeCode.Tuple:
                var arity = ReadShort();
                var items = new CqlColumnType[arity];
                for (var i = 0; i < arity; i++)
                    items[i] = ReadType();
                return new CqlColumnType(code, items);
            default:
                return CqlColumnType.Of(code);
        }
    }
}
