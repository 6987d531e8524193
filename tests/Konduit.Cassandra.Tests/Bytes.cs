using System.Globalization;
using Konduit.Cassandra.Cql;

namespace Konduit.Cassandra.Tests;

/// <summary>Hex helpers so expected frames read like the spec's byte layouts.</summary>
internal static class Bytes
{
    /// <summary>Parses hex with optional spaces, e.g. "00 04 0a".</summary>
    public static byte[] Hex(string hex)
    {
        var clean = hex.Replace(" ", "", StringComparison.Ordinal).Replace("\n", "", StringComparison.Ordinal);
        return Convert.FromHexString(clean);
    }

    public static string ToHex(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes).ToLowerInvariant();

    /// <summary>[string] of ASCII text as hex: a [short] length then the bytes.</summary>
    public static string Str(string s) => ((ushort)s.Length).ToString("x4", CultureInfo.InvariantCulture) + Ascii(s);

    /// <summary>[long string] as hex.</summary>
    public static string LongStr(string s) => s.Length.ToString("x8", CultureInfo.InvariantCulture) + Ascii(s);

    public static string Ascii(string s) => Convert.ToHexString(System.Text.Encoding.ASCII.GetBytes(s)).ToLowerInvariant();

    /// <summary>Builds a body with the protocol writer (for frames the fake server sends).</summary>
    public static byte[] Build(Action<CqlWriter> write)
    {
        var writer = new CqlWriter();
        write(writer);
        return writer.ToArray();
    }

    public static CqlFrame Response(CqlOpcode opcode, byte[] body, int version = 4, CqlFrameFlags flags = CqlFrameFlags.None, short stream = 0) =>
        new(new CqlFrameHeader((byte)(0x80 | version), flags, stream, opcode, body.Length), body);
}
