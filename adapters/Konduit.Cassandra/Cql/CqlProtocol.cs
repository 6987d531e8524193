using System.Buffers.Binary;

namespace Konduit.Cassandra.Cql;

/// <summary>Message opcodes (native protocol v3/v4 §2.4).</summary>
internal enum CqlOpcode : byte
{
    Error = 0x00,
    Startup = 0x01,
    Ready = 0x02,
    Authenticate = 0x03,
    Options = 0x05,
    Supported = 0x06,
    Query = 0x07,
    Result = 0x08,
    Prepare = 0x09,
    Execute = 0x0A,
    Register = 0x0B,
    Event = 0x0C,
    Batch = 0x0D,
    AuthChallenge = 0x0E,
    AuthResponse = 0x0F,
    AuthSuccess = 0x10,
}

/// <summary>Frame header flags (§2.2). Custom payload and warning are v4 only.</summary>
[Flags]
internal enum CqlFrameFlags : byte
{
    None = 0,
    Compression = 0x01,
    Tracing = 0x02,
    CustomPayload = 0x04,
    Warning = 0x08,
}

/// <summary>
/// The 9-byte frame header shared by protocol v3 and v4 (§2): version, flags, a signed 16-bit stream id,
/// opcode and a 32-bit body length, big-endian. The most significant bit of the version marks a response.
/// </summary>
internal readonly record struct CqlFrameHeader(byte Version, CqlFrameFlags Flags, short Stream, CqlOpcode Opcode, int Length)
{
    public const int Size = 9;

    /// <summary>The spec caps a frame body at 256 MB.</summary>
    public const int MaxBodyLength = 256 * 1024 * 1024;

    public const byte ResponseBit = 0x80;

    public bool IsResponse => (Version & ResponseBit) != 0;

    public int ProtocolVersion => Version & 0x7F;

    public void WriteTo(Span<byte> destination)
    {
        destination[0] = Version;
        destination[1] = (byte)Flags;
        BinaryPrimitives.WriteInt16BigEndian(destination[2..], Stream);
        destination[4] = (byte)Opcode;
        BinaryPrimitives.WriteInt32BigEndian(destination[5..], Length);
    }

    public static CqlFrameHeader Read(ReadOnlySpan<byte> source)
    {
        if (source.Length < Size)
            throw new CqlMalformedFrameException($"A frame header is {Size} bytes; got {source.Length}.");
        var length = BinaryPrimitives.ReadInt32BigEndian(source[5..]);
        if (length < 0 || length > MaxBodyLength)
            throw new CqlMalformedFrameException($"Frame body length {length} is outside 0..{MaxBodyLength}.");
        return new CqlFrameHeader(source[0], (CqlFrameFlags)source[1], BinaryPrimitives.ReadInt16BigEndian(source[2..]),
            (CqlOpcode)source[4], length);
    }
}

/// <summary>One whole frame as read from the wire (the body still holds any tracing id, warnings or payload).</summary>
internal sealed record CqlFrame(CqlFrameHeader Header, byte[] Body)
{
    /// <summary>Encodes a request frame: header followed by the body.</summary>
    public static byte[] Encode(byte version, CqlFrameFlags flags, short stream, CqlOpcode opcode, ReadOnlySpan<byte> body)
    {
        var frame = new byte[CqlFrameHeader.Size + body.Length];
        new CqlFrameHeader(version, flags, stream, opcode, body.Length).WriteTo(frame);
        body.CopyTo(frame.AsSpan(CqlFrameHeader.Size));
        return frame;
    }
}
