using Konduit.Cassandra.Cql;
using static Konduit.Cassandra.Tests.Bytes;

namespace Konduit.Cassandra.Tests;

/// <summary>Frame headers (§2): 9 bytes in v3 and v4, big-endian, signed stream id.</summary>
public sealed class FrameTests
{
    [Fact]
    public void V4_request_header_is_version_flags_stream_opcode_length()
    {
        var frame = CqlFrame.Encode(4, CqlFrameFlags.None, 5, CqlOpcode.Query, [0xAA]);
        Assert.Equal("04" + "00" + "0005" + "07" + "00000001" + "aa", ToHex(frame));
    }

    [Fact]
    public void V3_request_header_has_the_same_layout_with_version_3()
    {
        var frame = CqlFrame.Encode(3, CqlFrameFlags.Tracing, 0x1234, CqlOpcode.Prepare, []);
        Assert.Equal("03" + "02" + "1234" + "09" + "00000000", ToHex(frame));
    }

    [Fact]
    public void Options_request_is_an_empty_body_frame()
    {
        Assert.Equal("0400000005" + "00000000", ToHex(CqlFrame.Encode(4, 0, 0, CqlOpcode.Options, CqlRequests.Options())));
    }

    [Fact]
    public void Highest_stream_id_32767_is_written_big_endian()
    {
        var frame = CqlFrame.Encode(4, 0, short.MaxValue, CqlOpcode.Startup, []);
        Assert.Equal("7fff", ToHex(frame.AsSpan(2, 2)));
    }

    [Fact]
    public void Response_header_is_read_with_direction_bit_and_signed_event_stream()
    {
        var header = CqlFrameHeader.Read(Hex("83 00 ffff 0c 00000010"));
        Assert.True(header.IsResponse);
        Assert.Equal(3, header.ProtocolVersion);
        Assert.Equal(-1, header.Stream);
        Assert.Equal(CqlOpcode.Event, header.Opcode);
        Assert.Equal(16, header.Length);
    }

    [Fact]
    public void V4_response_header_carries_warning_and_custom_payload_flags()
    {
        var header = CqlFrameHeader.Read(Hex("84 0c 0007 08 00000000"));
        Assert.Equal(4, header.ProtocolVersion);
        Assert.Equal(CqlFrameFlags.Warning | CqlFrameFlags.CustomPayload, header.Flags);
        Assert.Equal(7, header.Stream);
        Assert.Equal(CqlOpcode.Result, header.Opcode);
    }

    [Fact]
    public void Header_round_trips()
    {
        var header = new CqlFrameHeader(0x84, CqlFrameFlags.Tracing, 300, CqlOpcode.Result, 1234);
        var bytes = new byte[9];
        header.WriteTo(bytes);
        Assert.Equal(header, CqlFrameHeader.Read(bytes));
    }

    [Theory]
    [InlineData("84 00 0000 08 ffffffff")]
    [InlineData("84 00 0000 08 10000001")]
    public void Body_length_outside_0_to_256MB_is_malformed(string hex)
    {
        Assert.Throws<CqlMalformedFrameException>(() => CqlFrameHeader.Read(Hex(hex)));
    }

    [Fact]
    public void Short_header_is_malformed()
    {
        Assert.Throws<CqlMalformedFrameException>(() => CqlFrameHeader.Read(Hex("84 00 0000 08")));
    }
}
