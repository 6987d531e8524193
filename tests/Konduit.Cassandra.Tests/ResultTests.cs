using Konduit.Cassandra.Cql;
using static Konduit.Cassandra.Tests.Bytes;

namespace Konduit.Cassandra.Tests;

/// <summary>RESULT bodies (§4.2.5) fed as hand-built bytes.</summary>
public sealed class ResultTests
{
    [Fact]
    public void Void_result()
    {
        Assert.Equal(CqlResultKind.Void, CqlResponses.ParseResult(Hex("00000001"), 4).Kind);
    }

    [Fact]
    public void Rows_with_global_table_spec_and_paging_state()
    {
        var body = Hex(
            "00000002" + "00000003" + "00000002" + "00000002 0102" + Str("ks") + Str("t")
            + Str("k") + "0009" + Str("v") + "000d"
            + "00000002"
            + "00000004 00000001" + "00000001 61"
            + "00000004 00000002" + "ffffffff");
        var result = CqlResponses.ParseResult(body, 4);

        Assert.Equal(CqlResultKind.Rows, result.Kind);
        Assert.Equal([1, 2], result.PagingState);
        Assert.Equal(["k", "v"], result.Columns.Select(c => c.Name));
        Assert.All(result.Columns, c => Assert.Equal(("ks", "t"), (c.Keyspace, c.Table)));
        Assert.Equal(2, result.Rows.Count);
        Assert.Equal(1, result.Rows[0].Get<int>("k"));
        Assert.Equal("a", result.Rows[0].Get<string>("v"));
        Assert.Equal(2, result.Rows[1].Get<int>(0));
        Assert.True(result.Rows[1].IsNull("v"));
        Assert.Null(result.Rows[1].Get<string?>("v"));
    }

    [Fact]
    public void Rows_without_more_pages_have_no_paging_state()
    {
        var body = Hex("00000002" + "00000001" + "00000001" + Str("ks") + Str("t") + Str("n") + "0002" + "00000000");
        var result = CqlResponses.ParseResult(body, 3);
        Assert.Null(result.PagingState);
        Assert.Empty(result.Rows);
        Assert.Equal(CqlTypeCode.Bigint, result.Columns[0].Type.Code);
    }

    [Fact]
    public void Rows_with_per_column_specs_and_collection_types()
    {
        var body = Hex(
            "00000002" + "00000000" + "00000002"
            + Str("ks1") + Str("t1") + Str("tags") + "0020 000d"
            + Str("ks2") + Str("t2") + Str("attrs") + "0021 000d 000d"
            + "00000001"
            + "0000000e" + "00000002" + "00000001 61" + "00000001 62"
            + "00000011" + "00000001" + "00000001 6b" + "00000004 76616c31");
        var result = CqlResponses.ParseResult(body, 4);

        Assert.Equal(("ks1", "t1"), (result.Columns[0].Keyspace, result.Columns[0].Table));
        Assert.Equal("list<varchar>", result.Columns[0].Type.ToString());
        Assert.Equal(("ks2", "t2"), (result.Columns[1].Keyspace, result.Columns[1].Table));
        Assert.Equal("map<varchar, varchar>", result.Columns[1].Type.ToString());
        Assert.Equal(["a", "b"], result.Rows[0].Get<IReadOnlyList<string>>("tags"));
        Assert.Equal("val1", result.Rows[0].Get<IReadOnlyDictionary<string, string>>("attrs")["k"]);
    }

    [Fact]
    public void Rows_with_no_metadata_flag_hand_back_raw_bytes()
    {
        var body = Hex("00000002" + "00000004" + "00000001" + "00000001" + "00000002 abcd");
        var result = CqlResponses.ParseResult(body, 4);
        Assert.Equal([0xAB, 0xCD], result.Rows[0].Get<byte[]>(0));
    }

    [Fact]
    public void Udt_and_tuple_types_are_parsed_and_their_values_returned_raw()
    {
        var body = Hex(
            "00000002" + "00000001" + "00000002" + Str("ks") + Str("t")
            + Str("u") + "0030" + Str("ks") + Str("addr") + "0002" + Str("street") + "000d" + Str("no") + "0009"
            + Str("p") + "0031" + "0002" + "0009" + "000d"
            + "00000000");
        var result = CqlResponses.ParseResult(body, 4);
        Assert.Equal(CqlTypeCode.Udt, result.Columns[0].Type.Code);
        Assert.Equal("ks.addr", result.Columns[0].Type.Name);
        Assert.Equal("tuple<int, varchar>", result.Columns[1].Type.ToString());
    }

    [Fact]
    public void Set_keyspace_result()
    {
        var result = CqlResponses.ParseResult(Hex("00000003" + Str("konduit")), 4);
        Assert.Equal(CqlResultKind.SetKeyspace, result.Kind);
        Assert.Equal("konduit", result.Keyspace);
    }

    [Fact]
    public void V4_prepared_result_has_partition_key_indexes()
    {
        var body = Hex(
            "00000004" + "0002 abcd"
            + "00000001" + "00000002" + "00000001" + "0001" + Str("ks") + Str("t") + Str("k") + "0009" + Str("v") + "000d"
            + "00000001" + "00000001" + Str("ks") + Str("t") + Str("v") + "000d");
        var result = CqlResponses.ParseResult(body, 4, "SELECT v FROM t WHERE k = ? AND v = ?");

        Assert.Equal(CqlResultKind.Prepared, result.Kind);
        var prepared = Assert.IsType<CqlPreparedStatement>(result.Prepared);
        Assert.Equal([0xAB, 0xCD], prepared.Id);
        Assert.Equal(["k", "v"], prepared.Variables.Select(v => v.Name));
        Assert.Equal([1], prepared.PartitionKeyIndexes);
        Assert.Equal("v", Assert.Single(prepared.ResultColumns).Name);
        Assert.Equal("SELECT v FROM t WHERE k = ? AND v = ?", prepared.Cql);
    }

    [Fact]
    public void V3_prepared_result_metadata_is_rows_metadata_without_partition_key()
    {
        var body = Hex(
            "00000004" + "0001 09"
            + "00000001" + "00000001" + Str("ks") + Str("t") + Str("k") + "0009"
            + "00000004" + "00000000");
        var prepared = CqlResponses.ParseResult(body, 3, "q").Prepared!;
        Assert.Equal([0x09], prepared.Id);
        Assert.Equal(CqlTypeCode.Int, Assert.Single(prepared.Variables).Type.Code);
        Assert.Empty(prepared.PartitionKeyIndexes);
        Assert.Empty(prepared.ResultColumns);
    }

    [Fact]
    public void Schema_change_for_a_table()
    {
        var change = CqlResponses.ParseResult(Hex("00000005" + Str("CREATED") + Str("TABLE") + Str("ks") + Str("t")), 3).SchemaChange!;
        Assert.Equal(("CREATED", "TABLE", "ks", "t"), (change.ChangeType, change.Target, change.Keyspace, change.Name));
        Assert.Empty(change.ArgumentTypes);
    }

    [Fact]
    public void Schema_change_for_a_keyspace_has_no_name()
    {
        var change = CqlResponses.ParseResult(Hex("00000005" + Str("DROPPED") + Str("KEYSPACE") + Str("ks")), 4).SchemaChange!;
        Assert.Equal(("DROPPED", "KEYSPACE", "ks", ""), (change.ChangeType, change.Target, change.Keyspace, change.Name));
    }

    [Fact]
    public void V4_schema_change_for_a_function_lists_argument_types()
    {
        var change = CqlResponses.ParseResult(
            Hex("00000005" + Str("CREATED") + Str("FUNCTION") + Str("ks") + Str("f") + "0002" + Str("int") + Str("text")), 4).SchemaChange!;
        Assert.Equal("f", change.Name);
        Assert.Equal(["int", "text"], change.ArgumentTypes);
    }

    [Fact]
    public void Unknown_result_kind_is_malformed()
    {
        Assert.Throws<CqlMalformedFrameException>(() => CqlResponses.ParseResult(Hex("00000009"), 4));
    }

    [Fact]
    public void Truncated_rows_are_malformed()
    {
        Assert.Throws<CqlMalformedFrameException>(() =>
            CqlResponses.ParseResult(Hex("00000002" + "00000001" + "00000001" + Str("ks") + Str("t") + Str("k") + "0009" + "00000001" + "00000004 0000"), 4));
    }

    [Fact]
    public void V4_envelope_skips_tracing_id_then_reads_warnings_then_skips_custom_payload()
    {
        var body = Hex(
            "00112233445566778899aabbccddeeff"
            + "0001" + Str("Batch too large")
            + "0001" + Str("k") + "00000001 ff"
            + "00000001");
        var frame = Response(CqlOpcode.Result, body, 4, CqlFrameFlags.Tracing | CqlFrameFlags.Warning | CqlFrameFlags.CustomPayload);
        var payload = CqlResponses.Expect(frame, CqlOpcode.Result, out var warnings);

        Assert.Equal(["Batch too large"], warnings);
        Assert.Equal("00000001", ToHex(payload));
    }

    [Fact]
    public void V3_envelope_only_knows_the_tracing_flag()
    {
        var frame = Response(CqlOpcode.Result, Hex("00112233445566778899aabbccddeeff" + "00000001"), 3, CqlFrameFlags.Tracing);
        Assert.Equal("00000001", ToHex(CqlResponses.Expect(frame, CqlOpcode.Result, out var warnings)));
        Assert.Empty(warnings);
    }

    [Fact]
    public void Compressed_responses_are_refused()
    {
        var frame = Response(CqlOpcode.Result, Hex("00000001"), 4, CqlFrameFlags.Compression);
        Assert.Throws<CqlMalformedFrameException>(() => CqlResponses.Expect(frame, CqlOpcode.Result, out _));
    }

    [Fact]
    public void An_unexpected_opcode_is_malformed()
    {
        Assert.Throws<CqlMalformedFrameException>(() => CqlResponses.Expect(Response(CqlOpcode.Ready, []), CqlOpcode.Result, out _));
    }

    [Fact]
    public void Supported_is_a_string_multimap()
    {
        var supported = CqlResponses.ParseSupported(Hex("0002" + Str("CQL_VERSION") + "0001" + Str("3.2.0") + Str("COMPRESSION") + "0002" + Str("snappy") + Str("lz4")));
        Assert.Equal(["3.2.0"], supported["CQL_VERSION"]);
        Assert.Equal(["snappy", "lz4"], supported["COMPRESSION"]);
    }

    [Fact]
    public void Authenticate_names_the_authenticator_class()
    {
        Assert.Equal("org.apache.cassandra.auth.PasswordAuthenticator",
            CqlResponses.ParseAuthenticate(Hex(Str("org.apache.cassandra.auth.PasswordAuthenticator"))));
    }

    [Fact]
    public void Row_get_with_the_wrong_type_or_a_null_into_a_value_type_throws_InvalidCast()
    {
        var body = Hex("00000002" + "00000001" + "00000002" + Str("ks") + Str("t") + Str("k") + "0009" + Str("v") + "000d"
            + "00000001" + "00000004 00000001" + "ffffffff");
        var row = CqlResponses.ParseResult(body, 4).Rows[0];
        Assert.Throws<InvalidCastException>(() => row.Get<string>("k"));
        Assert.Throws<InvalidCastException>(() => row.Get<int>("v"));
        Assert.Null(row.Get<int?>("v"));
        Assert.Throws<ArgumentException>(() => row["missing"]);
    }
}
