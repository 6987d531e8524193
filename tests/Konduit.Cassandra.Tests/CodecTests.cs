using System.Net;
using Konduit.Cassandra.Cql;
using static Konduit.Cassandra.Tests.Bytes;

namespace Konduit.Cassandra.Tests;

/// <summary>Value serialization (§6): exact bytes, round trips, nulls and edge values.</summary>
public sealed class CodecTests
{
    private static readonly CqlColumnType TextType = CqlColumnType.Of(CqlTypeCode.Varchar);

    private static string Encode(CqlTypeCode code, object value) => ToHex(CqlCodec.EncodeNonNull(CqlColumnType.Of(code), value));

    private static object? RoundTrip(CqlColumnType type, object value) => CqlCodec.Decode(type, CqlCodec.EncodeNonNull(type, value));

    private static object? RoundTrip(CqlTypeCode code, object value) => RoundTrip(CqlColumnType.Of(code), value);

    [Fact]
    public void Text_is_utf8()
    {
        Assert.Equal("68c3a96c6c6f", Encode(CqlTypeCode.Varchar, "héllo"));
        Assert.Equal("héllo", RoundTrip(CqlTypeCode.Varchar, "héllo"));
        Assert.Equal("日本語 🎉", RoundTrip(CqlTypeCode.Varchar, "日本語 🎉"));
    }

    [Fact]
    public void Empty_text_is_an_empty_string_not_null()
    {
        Assert.Equal("", Encode(CqlTypeCode.Varchar, ""));
        Assert.Equal("", CqlCodec.Decode(TextType, []));
    }

    [Fact]
    public void Ascii_accepts_7_bit_text_and_refuses_the_rest()
    {
        Assert.Equal("616263", Encode(CqlTypeCode.Ascii, "abc"));
        Assert.Equal("abc", RoundTrip(CqlTypeCode.Ascii, "abc"));
        Assert.Throws<ArgumentException>(() => Encode(CqlTypeCode.Ascii, "é"));
    }

    [Theory]
    [InlineData(0, "00000000")]
    [InlineData(1, "00000001")]
    [InlineData(-1, "ffffffff")]
    [InlineData(int.MaxValue, "7fffffff")]
    [InlineData(int.MinValue, "80000000")]
    public void Int_is_four_bytes_twos_complement(int value, string hex)
    {
        Assert.Equal(hex, Encode(CqlTypeCode.Int, value));
        Assert.Equal(value, RoundTrip(CqlTypeCode.Int, value));
    }

    [Theory]
    [InlineData(0L, "0000000000000000")]
    [InlineData(-2L, "fffffffffffffffe")]
    [InlineData(long.MaxValue, "7fffffffffffffff")]
    [InlineData(long.MinValue, "8000000000000000")]
    public void Bigint_and_counter_are_eight_bytes(long value, string hex)
    {
        Assert.Equal(hex, Encode(CqlTypeCode.Bigint, value));
        Assert.Equal(hex, Encode(CqlTypeCode.Counter, value));
        Assert.Equal(value, RoundTrip(CqlTypeCode.Bigint, value));
        Assert.Equal(value, RoundTrip(CqlTypeCode.Counter, value));
    }

    [Fact]
    public void Bigint_widens_an_int()
    {
        Assert.Equal("0000000000000007", Encode(CqlTypeCode.Bigint, 7));
    }

    [Fact]
    public void Int_does_not_narrow_a_long()
    {
        Assert.Throws<ArgumentException>(() => Encode(CqlTypeCode.Int, 7L));
    }

    [Fact]
    public void Boolean_is_one_byte_and_any_nonzero_is_true()
    {
        Assert.Equal("01", Encode(CqlTypeCode.Boolean, true));
        Assert.Equal("00", Encode(CqlTypeCode.Boolean, false));
        Assert.Equal(true, CqlCodec.Decode(CqlColumnType.Of(CqlTypeCode.Boolean), [0x02]));
        Assert.Equal(false, CqlCodec.Decode(CqlColumnType.Of(CqlTypeCode.Boolean), [0x00]));
    }

    [Fact]
    public void Blob_is_the_bytes_including_empty()
    {
        Assert.Equal("00ff10", Encode(CqlTypeCode.Blob, new byte[] { 0, 255, 16 }));
        Assert.Equal("0102", Encode(CqlTypeCode.Blob, new ReadOnlyMemory<byte>([1, 2])));
        Assert.Equal(Array.Empty<byte>(), RoundTrip(CqlTypeCode.Blob, Array.Empty<byte>()));
    }

    [Fact]
    public void Timestamp_is_milliseconds_since_the_unix_epoch()
    {
        var value = new DateTimeOffset(2024, 1, 2, 3, 4, 5, 678, TimeSpan.Zero);
        Assert.Equal(value.ToUnixTimeMilliseconds().ToString("x16", System.Globalization.CultureInfo.InvariantCulture), Encode(CqlTypeCode.Timestamp, value));
        Assert.Equal(value, RoundTrip(CqlTypeCode.Timestamp, value));
    }

    [Fact]
    public void Timestamp_edges_epoch_and_before_epoch()
    {
        Assert.Equal("0000000000000000", Encode(CqlTypeCode.Timestamp, DateTimeOffset.UnixEpoch));
        Assert.Equal("ffffffffffffffff", Encode(CqlTypeCode.Timestamp, DateTimeOffset.UnixEpoch.AddMilliseconds(-1)));
        Assert.Equal(DateTimeOffset.UnixEpoch.AddMilliseconds(-1), RoundTrip(CqlTypeCode.Timestamp, DateTimeOffset.UnixEpoch.AddMilliseconds(-1)));
    }

    [Fact]
    public void Timestamp_truncates_below_a_millisecond_and_normalizes_offsets_to_utc()
    {
        var value = new DateTimeOffset(2024, 6, 1, 12, 0, 0, TimeSpan.FromHours(2)).AddTicks(5_678);
        var decoded = Assert.IsType<DateTimeOffset>(RoundTrip(CqlTypeCode.Timestamp, value));
        Assert.Equal(TimeSpan.Zero, decoded.Offset);
        Assert.Equal(value.UtcDateTime.AddTicks(-5_678), decoded.UtcDateTime);
    }

    [Fact]
    public void Timestamp_accepts_utc_and_unspecified_DateTime_as_utc_and_raw_milliseconds()
    {
        var utc = new DateTime(2024, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        Assert.Equal(Encode(CqlTypeCode.Timestamp, new DateTimeOffset(utc)), Encode(CqlTypeCode.Timestamp, utc));
        Assert.Equal(Encode(CqlTypeCode.Timestamp, utc), Encode(CqlTypeCode.Timestamp, DateTime.SpecifyKind(utc, DateTimeKind.Unspecified)));
        Assert.Equal("00000000000003e8", Encode(CqlTypeCode.Timestamp, 1000L));
    }

    [Fact]
    public void Timestamp_out_of_DateTimeOffset_range_is_malformed()
    {
        Assert.Throws<CqlMalformedFrameException>(() => CqlCodec.Decode(CqlColumnType.Of(CqlTypeCode.Timestamp), Hex("7fffffffffffffff")));
    }

    [Fact]
    public void Uuid_is_sixteen_bytes_in_rfc_4122_order()
    {
        var uuid = Guid.Parse("00112233-4455-6677-8899-aabbccddeeff");
        Assert.Equal("00112233445566778899aabbccddeeff", Encode(CqlTypeCode.Uuid, uuid));
        Assert.Equal(uuid, RoundTrip(CqlTypeCode.Uuid, uuid));
        Assert.Equal(Guid.Empty, RoundTrip(CqlTypeCode.Uuid, Guid.Empty));
    }

    [Fact]
    public void Timeuuid_is_a_version_1_uuid_whose_timestamp_round_trips()
    {
        var at = new DateTimeOffset(2024, 5, 6, 7, 8, 9, 123, TimeSpan.Zero).AddTicks(4567);
        var id = CqlTimeUuid.Create(at);
        var bytes = CqlCodec.EncodeNonNull(CqlColumnType.Of(CqlTypeCode.Timeuuid), id);

        Assert.Equal(0x10, bytes[6] & 0xF0);
        Assert.Equal(0x80, bytes[8] & 0xC0);
        Assert.Equal(at, CqlTimeUuid.GetTimestamp(id));
        Assert.Equal(id, CqlCodec.Decode(CqlColumnType.Of(CqlTypeCode.Timeuuid), bytes));
    }

    [Fact]
    public void Timeuuid_layout_matches_rfc_4122_for_a_known_time()
    {
        // 1970-01-01 is 0x01B21DD213814000 100-ns intervals after 1582-10-15.
        var id = CqlTimeUuid.Create(DateTimeOffset.UnixEpoch, Hex("0000 000000000000"));
        Assert.Equal("13814000" + "1dd2" + "11b2" + "8000" + "000000000000", Encode(CqlTypeCode.Timeuuid, id));
    }

    [Fact]
    public void Timestamp_of_a_random_uuid_is_refused()
    {
        Assert.Throws<ArgumentException>(() => CqlTimeUuid.GetTimestamp(Guid.NewGuid()));
    }

    [Fact]
    public void Double_is_ieee_754_binary64()
    {
        Assert.Equal("3ff8000000000000", Encode(CqlTypeCode.Double, 1.5));
        Assert.Equal("8000000000000000", Encode(CqlTypeCode.Double, -0.0));
        Assert.Equal(double.NaN, RoundTrip(CqlTypeCode.Double, double.NaN));
        Assert.Equal(double.PositiveInfinity, RoundTrip(CqlTypeCode.Double, double.PositiveInfinity));
        Assert.Equal(double.Epsilon, RoundTrip(CqlTypeCode.Double, double.Epsilon));
    }

    [Fact]
    public void Float_smallint_tinyint_inet_and_varint()
    {
        Assert.Equal("3fc00000", Encode(CqlTypeCode.Float, 1.5f));
        Assert.Equal("8000", Encode(CqlTypeCode.Smallint, short.MinValue));
        Assert.Equal("ff", Encode(CqlTypeCode.Tinyint, (sbyte)-1));
        Assert.Equal("7f000001", Encode(CqlTypeCode.Inet, IPAddress.Loopback));
        Assert.Equal(IPAddress.IPv6Loopback, RoundTrip(CqlTypeCode.Inet, IPAddress.IPv6Loopback));
        Assert.Equal("0080", Encode(CqlTypeCode.Varint, new System.Numerics.BigInteger(128)));
        Assert.Equal("ff7f", Encode(CqlTypeCode.Varint, new System.Numerics.BigInteger(-129)));
        Assert.Equal(new System.Numerics.BigInteger(-129), RoundTrip(CqlTypeCode.Varint, new System.Numerics.BigInteger(-129)));
    }

    [Fact]
    public void List_of_text_is_an_int_count_then_int_prefixed_elements()
    {
        var type = CqlColumnType.ListOf(TextType);
        Assert.Equal("00000002" + "00000001" + "61" + "00000002" + "6263", ToHex(CqlCodec.EncodeNonNull(type, new[] { "a", "bc" })));
        Assert.Equal(["a", "bc"], Assert.IsType<List<string>>(RoundTrip(type, new List<string> { "a", "bc" })));
    }

    [Fact]
    public void Empty_list_is_a_zero_count()
    {
        var type = CqlColumnType.ListOf(TextType);
        Assert.Equal("00000000", ToHex(CqlCodec.EncodeNonNull(type, Array.Empty<string>())));
        Assert.Empty(Assert.IsType<List<string>>(RoundTrip(type, Array.Empty<string>())));
    }

    [Fact]
    public void Collections_refuse_null_elements()
    {
        Assert.Throws<ArgumentException>(() => CqlCodec.EncodeNonNull(CqlColumnType.ListOf(TextType), new string?[] { "a", null }));
        Assert.Throws<ArgumentException>(() => CqlCodec.EncodeNonNull(CqlColumnType.MapOf(TextType, TextType), new Dictionary<string, string?> { ["k"] = null }));
    }

    [Fact]
    public void Map_of_text_to_text_is_an_int_count_then_key_value_pairs()
    {
        var type = CqlColumnType.MapOf(TextType, TextType);
        Assert.Equal("00000001" + "00000001" + "6b" + "00000001" + "76", ToHex(CqlCodec.EncodeNonNull(type, new Dictionary<string, string> { ["k"] = "v" })));
        var decoded = Assert.IsType<Dictionary<string, string>>(RoundTrip(type, new Dictionary<string, string> { ["a"] = "1", ["b"] = "" }));
        Assert.Equal("1", decoded["a"]);
        Assert.Equal("", decoded["b"]);
    }

    [Fact]
    public void List_and_map_of_other_types_decode_to_object_collections()
    {
        var list = CqlColumnType.ListOf(CqlColumnType.Of(CqlTypeCode.Int));
        Assert.Equal([1, 2], Assert.IsType<List<object?>>(RoundTrip(list, new[] { 1, 2 })));
        var map = CqlColumnType.MapOf(CqlColumnType.Of(CqlTypeCode.Int), TextType);
        Assert.Equal("x", Assert.IsType<Dictionary<object, object?>>(RoundTrip(map, new Dictionary<int, string> { [5] = "x" }))[5]);
    }

    [Fact]
    public void Null_and_unset_encode_without_bytes()
    {
        Assert.Equal(CqlValue.Null, CqlCodec.Encode(TextType, null));
        Assert.Equal(CqlValue.Unset, CqlCodec.Encode(TextType, CqlUnset.Value));
        Assert.Equal("ffffffff", ToHex(Build(w => w.WriteValue(CqlValue.Null))));
        Assert.Equal("fffffffe", ToHex(Build(w => w.WriteValue(CqlValue.Unset))));
    }

    [Theory]
    [InlineData((int)CqlTypeCode.Int)]
    [InlineData((int)CqlTypeCode.Bigint)]
    [InlineData((int)CqlTypeCode.Boolean)]
    [InlineData((int)CqlTypeCode.Timestamp)]
    [InlineData((int)CqlTypeCode.Uuid)]
    [InlineData((int)CqlTypeCode.Double)]
    public void Empty_cells_of_fixed_size_types_decode_as_null(int code)
    {
        Assert.Null(CqlCodec.Decode(CqlColumnType.Of((CqlTypeCode)code), []));
    }

    [Theory]
    [InlineData((int)CqlTypeCode.Int, "000001")]
    [InlineData((int)CqlTypeCode.Bigint, "00000001")]
    [InlineData((int)CqlTypeCode.Uuid, "0011")]
    [InlineData((int)CqlTypeCode.Boolean, "0101")]
    public void Wrong_lengths_are_malformed(int code, string hex)
    {
        Assert.Throws<CqlMalformedFrameException>(() => CqlCodec.Decode(CqlColumnType.Of((CqlTypeCode)code), Hex(hex)));
    }

    [Fact]
    public void Binding_a_value_of_the_wrong_type_names_the_column_type()
    {
        var error = Assert.Throws<ArgumentException>(() => CqlCodec.EncodeNonNull(CqlColumnType.Of(CqlTypeCode.Uuid), "not a guid"));
        Assert.Contains("uuid", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unprepared_values_get_types_inferred_from_their_dotnet_types()
    {
        Assert.Equal(CqlTypeCode.Varchar, CqlCodec.InferType("x").Code);
        Assert.Equal(CqlTypeCode.Int, CqlCodec.InferType(1).Code);
        Assert.Equal(CqlTypeCode.Bigint, CqlCodec.InferType(1L).Code);
        Assert.Equal(CqlTypeCode.Boolean, CqlCodec.InferType(true).Code);
        Assert.Equal(CqlTypeCode.Blob, CqlCodec.InferType(new byte[1]).Code);
        Assert.Equal(CqlTypeCode.Timestamp, CqlCodec.InferType(DateTimeOffset.UnixEpoch).Code);
        Assert.Equal(CqlTypeCode.Uuid, CqlCodec.InferType(Guid.Empty).Code);
        Assert.Equal(CqlTypeCode.Double, CqlCodec.InferType(1.0).Code);
        Assert.Equal("list<varchar>", CqlCodec.InferType(new[] { "a" }).ToString());
        Assert.Equal("map<varchar, varchar>", CqlCodec.InferType(new Dictionary<string, string>()).ToString());
        Assert.Throws<ArgumentException>(() => CqlCodec.InferType(new object()));
    }

    [Fact]
    public void Prepared_statement_bind_checks_the_count_and_names_the_marker()
    {
        var statement = new CqlPreparedStatement("q", [1],
            [new CqlColumn("ks", "t", "id", CqlColumnType.Of(CqlTypeCode.Uuid))], [], []);
        Assert.Throws<ArgumentException>(() => statement.Bind([]));
        var error = Assert.Throws<ArgumentException>(() => statement.Bind(["nope"]));
        Assert.Contains("'id'", error.Message, StringComparison.Ordinal);
        Assert.Equal(CqlValue.Null, Assert.Single(statement.Bind([null])));
    }
}
