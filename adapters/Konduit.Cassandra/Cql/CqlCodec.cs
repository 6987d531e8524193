using System.Buffers.Binary;
using System.Collections;
using System.Net;
using System.Numerics;
using System.Text;

namespace Konduit.Cassandra.Cql;

/// <summary>
/// Value serialization (§6) between .NET values and the bytes of a [value]/[bytes], for v3 and v4 (both use
/// [int]-prefixed collection elements). Decoded types: text/ascii → string, int → int, bigint/counter → long,
/// boolean → bool, blob → byte[], timestamp → DateTimeOffset (UTC), uuid/timeuuid → Guid, double → double,
/// float → float, inet → IPAddress, varint → BigInteger, smallint → short, tinyint → sbyte,
/// list&lt;text&gt;/set&lt;text&gt; → List&lt;string&gt;, map&lt;text,text&gt; → Dictionary&lt;string,string&gt;, other
/// collections → List&lt;object&gt;/Dictionary&lt;object,object&gt;, anything else → the raw byte[].
/// </summary>
internal static class CqlCodec
{
    public static readonly CqlColumnType Text = CqlColumnType.Of(CqlTypeCode.Varchar);

    /// <summary>The type an unprepared QUERY binds a .NET value as (prepared statements use the server's types).</summary>
    public static CqlColumnType InferType(object value) => value switch
    {
        string => Text,
        int => CqlColumnType.Of(CqlTypeCode.Int),
        long => CqlColumnType.Of(CqlTypeCode.Bigint),
        bool => CqlColumnType.Of(CqlTypeCode.Boolean),
        byte[] or ReadOnlyMemory<byte> or Memory<byte> or ArraySegment<byte> => CqlColumnType.Of(CqlTypeCode.Blob),
        DateTimeOffset or DateTime => CqlColumnType.Of(CqlTypeCode.Timestamp),
        Guid => CqlColumnType.Of(CqlTypeCode.Uuid),
        double => CqlColumnType.Of(CqlTypeCode.Double),
        float => CqlColumnType.Of(CqlTypeCode.Float),
        short => CqlColumnType.Of(CqlTypeCode.Smallint),
        sbyte => CqlColumnType.Of(CqlTypeCode.Tinyint),
        IPAddress => CqlColumnType.Of(CqlTypeCode.Inet),
        BigInteger => CqlColumnType.Of(CqlTypeCode.Varint),
        IEnumerable<KeyValuePair<string, string>> => CqlColumnType.MapOf(Text, Text),
        IEnumerable<string> => CqlColumnType.ListOf(Text),
        _ => throw new ArgumentException(
            $"Cannot infer a CQL type for {value.GetType().Name}; prepare the statement so the server gives the types."),
    };

    /// <summary>Encodes <paramref name="value"/> for a column of <paramref name="type"/>.</summary>
    public static CqlValue Encode(CqlColumnType type, object? value) => value switch
    {
        null => CqlValue.Null,
        CqlUnset => CqlValue.Unset,
        _ => CqlValue.Of(EncodeNonNull(type, value)),
    };

    public static byte[] EncodeNonNull(CqlColumnType type, object value)
    {
        switch (type.Code)
        {
            case CqlTypeCode.Varchar when value is string text:
                return Encoding.UTF8.GetBytes(text);
            case CqlTypeCode.Ascii when value is string ascii:
                foreach (var c in ascii)
                {
                    if (c > 127)
                        throw new ArgumentException($"'{c}' is not ASCII; use a text column for non-ASCII strings.", nameof(value));
                }
                return Encoding.ASCII.GetBytes(ascii);
            case CqlTypeCode.Int when TryInt32(value, out var i32):
                var int32 = new byte[4];
                BinaryPrimitives.WriteInt32BigEndian(int32, i32);
                return int32;
            case CqlTypeCode.Bigint or CqlTypeCode.Counter when TryInt64(value, out var i64):
                return Int64(i64);
            case CqlTypeCode.Boolean when value is bool flag:
                return [flag ? (byte)1 : (byte)0];
            case CqlTypeCode.Blob when TryBlob(value, out var blob):
                return blob;
            case CqlTypeCode.Timestamp when TryTimestamp(value, out var millis):
                return Int64(millis);
            case CqlTypeCode.Uuid or CqlTypeCode.Timeuuid when value is Guid guid:
                var uuid = new byte[16];
                guid.TryWriteBytes(uuid, bigEndian: true, out _);
                return uuid;
            case CqlTypeCode.Double when TryDouble(value, out var d):
                var f64 = new byte[8];
                BinaryPrimitives.WriteDoubleBigEndian(f64, d);
                return f64;
            case CqlTypeCode.Float when value is float f:
                var f32 = new byte[4];
                BinaryPrimitives.WriteSingleBigEndian(f32, f);
                return f32;
            case CqlTypeCode.Smallint when value is short s:
                var i16 = new byte[2];
                BinaryPrimitives.WriteInt16BigEndian(i16, s);
                return i16;
            case CqlTypeCode.Tinyint when value is sbyte sb:
                return [unchecked((byte)sb)];
            case CqlTypeCode.Inet when value is IPAddress address:
                return address.GetAddressBytes();
            case CqlTypeCode.Varint when TryBigInteger(value, out var big):
                return big.ToByteArray(isUnsigned: false, isBigEndian: true);
            case CqlTypeCode.List or CqlTypeCode.Set when value is IEnumerable items && value is not string:
                return EncodeCollection(type.Arguments[0], items);
            case CqlTypeCode.Map when TryMapEntries(value, out var entries):
                return EncodeMap(type.Arguments[0], type.Arguments[1], entries);
            default:
                throw new ArgumentException($"Cannot bind a {value.GetType().Name} to a {type} column.", nameof(value));
        }
    }

    private static byte[] Int64(long value)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(bytes, value);
        return bytes;
    }

    private static bool TryInt32(object value, out int result)
    {
        switch (value)
        {
            case int i: result = i; return true;
            case short s: result = s; return true;
            case sbyte sb: result = sb; return true;
            case byte b: result = b; return true;
            default: result = 0; return false;
        }
    }

    private static bool TryInt64(object value, out long result)
    {
        if (value is long l)
        {
            result = l;
            return true;
        }
        var ok = TryInt32(value, out var i);
        result = i;
        return ok;
    }

    private static bool TryDouble(object value, out double result)
    {
        switch (value)
        {
            case double d: result = d; return true;
            case float f: result = f; return true;
            default:
                var ok = TryInt64(value, out var l);
                result = l;
                return ok;
        }
    }

    private static bool TryBigInteger(object value, out BigInteger result)
    {
        if (value is BigInteger b)
        {
            result = b;
            return true;
        }
        var ok = TryInt64(value, out var l);
        result = l;
        return ok;
    }

    private static bool TryBlob(object value, out byte[] result)
    {
        switch (value)
        {
            case byte[] bytes: result = bytes; return true;
            case ReadOnlyMemory<byte> rom: result = rom.ToArray(); return true;
            case Memory<byte> memory: result = memory.ToArray(); return true;
            case ArraySegment<byte> segment: result = segment.ToArray(); return true;
            default: result = []; return false;
        }
    }

    /// <summary>Milliseconds since the Unix epoch; a DateTime of unspecified kind is taken as UTC.</summary>
    private static bool TryTimestamp(object value, out long millis)
    {
        switch (value)
        {
            case DateTimeOffset offset:
                millis = offset.ToUnixTimeMilliseconds();
                return true;
            case DateTime dateTime:
                var utc = dateTime.Kind == DateTimeKind.Local ? dateTime.ToUniversalTime() : DateTime.SpecifyKind(dateTime, DateTimeKind.Utc);
                millis = new DateTimeOffset(utc).ToUnixTimeMilliseconds();
                return true;
            case long raw:
                millis = raw;
                return true;
            default:
                millis = 0;
                return false;
        }
    }

    private static bool TryMapEntries(object value, out List<KeyValuePair<object, object?>> entries)
    {
        entries = [];
        switch (value)
        {
            case IDictionary dictionary:
                foreach (DictionaryEntry entry in dictionary)
                    entries.Add(new KeyValuePair<object, object?>(entry.Key, entry.Value));
                return true;
            case IEnumerable<KeyValuePair<string, string>> pairs:
                foreach (var (key, item) in pairs)
                    entries.Add(new KeyValuePair<object, object?>(key, item));
                return true;
            default:
                return false;
        }
    }

    private static byte[] EncodeCollection(CqlColumnType elementType, IEnumerable items)
    {
        var writer = new CqlWriter();
        writer.WriteInt(0);
        var count = 0;
        foreach (var item in items)
        {
            writer.WriteBytes(EncodeNonNull(elementType, item ?? throw new ArgumentException("Collections cannot hold null elements.", nameof(items))));
            count++;
        }
        var bytes = writer.ToArray();
        BinaryPrimitives.WriteInt32BigEndian(bytes, count);
        return bytes;
    }

    private static byte[] EncodeMap(CqlColumnType keyType, CqlColumnType valueType, List<KeyValuePair<object, object?>> entries)
    {
        var writer = new CqlWriter();
        writer.WriteInt(entries.Count);
        foreach (var (key, item) in entries)
        {
            writer.WriteBytes(EncodeNonNull(keyType, key));
            writer.WriteBytes(EncodeNonNull(valueType, item ?? throw new ArgumentException("Map values cannot be null.", nameof(entries))));
        }
        return writer.ToArray();
    }

    /// <summary>Decodes a non-null cell. An empty cell of a fixed-size type (a legacy "empty" value) decodes as null.</summary>
    public static object? Decode(CqlColumnType type, ReadOnlySpan<byte> bytes)
    {
        switch (type.Code)
        {
            case CqlTypeCode.Varchar or CqlTypeCode.Ascii:
                return Encoding.UTF8.GetString(bytes);
            case CqlTypeCode.Blob:
                return bytes.ToArray();
            case CqlTypeCode.Custom or CqlTypeCode.Udt or CqlTypeCode.Tuple or CqlTypeCode.Decimal or CqlTypeCode.Date or CqlTypeCode.Time:
                // Not needed by the adapter: handed over raw rather than guessed at.
                return bytes.ToArray();
        }
        if (bytes.IsEmpty)
            return null;
        switch (type.Code)
        {
            case CqlTypeCode.Int:
                return BinaryPrimitives.ReadInt32BigEndian(Exact(bytes, 4, type));
            case CqlTypeCode.Bigint or CqlTypeCode.Counter:
                return BinaryPrimitives.ReadInt64BigEndian(Exact(bytes, 8, type));
            case CqlTypeCode.Boolean:
                return Exact(bytes, 1, type)[0] != 0;
            case CqlTypeCode.Timestamp:
                var millis = BinaryPrimitives.ReadInt64BigEndian(Exact(bytes, 8, type));
                if (millis < -62135596800000L || millis > 253402300799999L)
                    throw new CqlMalformedFrameException($"Timestamp {millis} ms is outside what DateTimeOffset holds.");
                return DateTimeOffset.FromUnixTimeMilliseconds(millis);
            case CqlTypeCode.Uuid or CqlTypeCode.Timeuuid:
                return new Guid(Exact(bytes, 16, type), bigEndian: true);
            case CqlTypeCode.Double:
                return BinaryPrimitives.ReadDoubleBigEndian(Exact(bytes, 8, type));
            case CqlTypeCode.Float:
                return BinaryPrimitives.ReadSingleBigEndian(Exact(bytes, 4, type));
            case CqlTypeCode.Smallint:
                return BinaryPrimitives.ReadInt16BigEndian(Exact(bytes, 2, type));
            case CqlTypeCode.Tinyint:
                return unchecked((sbyte)Exact(bytes, 1, type)[0]);
            case CqlTypeCode.Inet:
                return bytes.Length is 4 or 16 ? new IPAddress(bytes) : throw Malformed(type, bytes.Length);
            case CqlTypeCode.Varint:
                return new BigInteger(bytes, isUnsigned: false, isBigEndian: true);
            case CqlTypeCode.List or CqlTypeCode.Set:
                return DecodeCollection(type.Arguments[0], bytes);
            case CqlTypeCode.Map:
                return DecodeMap(type.Arguments[0], type.Arguments[1], bytes);
            default:
                return bytes.ToArray();
        }
    }

    private static ReadOnlySpan<byte> Exact(ReadOnlySpan<byte> bytes, int size, CqlColumnType type) =>
        bytes.Length == size ? bytes : throw Malformed(type, bytes.Length);

    private static CqlMalformedFrameException Malformed(CqlColumnType type, int length) =>
        new($"A {type} value cannot be {length} bytes long.");

    private static object DecodeCollection(CqlColumnType elementType, ReadOnlySpan<byte> bytes)
    {
        var reader = new CqlReader(bytes);
        var count = reader.ReadInt();
        if (elementType.Code is CqlTypeCode.Varchar or CqlTypeCode.Ascii)
        {
            var strings = new List<string>(count);
            for (var i = 0; i < count; i++)
                strings.Add(reader.TryReadBytesSpan(out var item) ? Encoding.UTF8.GetString(item) : throw NullElement());
            return strings;
        }
        var values = new List<object?>(count);
        for (var i = 0; i < count; i++)
            values.Add(reader.TryReadBytesSpan(out var item) ? Decode(elementType, item) : null);
        return values;
    }

    private static object DecodeMap(CqlColumnType keyType, CqlColumnType valueType, ReadOnlySpan<byte> bytes)
    {
        var reader = new CqlReader(bytes);
        var count = reader.ReadInt();
        if (keyType.Code is CqlTypeCode.Varchar or CqlTypeCode.Ascii && valueType.Code is CqlTypeCode.Varchar or CqlTypeCode.Ascii)
        {
            var strings = new Dictionary<string, string>(count, StringComparer.Ordinal);
            for (var i = 0; i < count; i++)
            {
                var key = reader.TryReadBytesSpan(out var k) ? Encoding.UTF8.GetString(k) : throw NullElement();
                strings[key] = reader.TryReadBytesSpan(out var v) ? Encoding.UTF8.GetString(v) : throw NullElement();
            }
            return strings;
        }
        var map = new Dictionary<object, object?>(count);
        for (var i = 0; i < count; i++)
        {
            var key = reader.TryReadBytesSpan(out var k) ? Decode(keyType, k) ?? throw NullElement() : throw NullElement();
            map[key] = reader.TryReadBytesSpan(out var v) ? Decode(valueType, v) : null;
        }
        return map;
    }

    private static CqlMalformedFrameException NullElement() => new("A collection element is null.");
}
