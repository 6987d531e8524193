using Konduit.Cassandra.Cql;
using static Konduit.Cassandra.Tests.Bytes;

namespace Konduit.Cassandra.Tests;

/// <summary>Request bodies (§4.1), byte for byte.</summary>
public sealed class RequestTests
{
    [Fact]
    public void Startup_is_a_string_map_with_CQL_VERSION_3_0_0()
    {
        Assert.Equal("0001" + Str("CQL_VERSION") + Str("3.0.0"), ToHex(CqlRequests.Startup()));
    }

    [Fact]
    public void Startup_string_map_writes_every_pair()
    {
        var body = CqlRequests.Startup([new("CQL_VERSION", "3.0.0"), new("COMPRESSION", "lz4")]);
        Assert.Equal("0002" + Str("CQL_VERSION") + Str("3.0.0") + Str("COMPRESSION") + Str("lz4"), ToHex(body));
    }

    [Fact]
    public void Auth_response_carries_the_SASL_PLAIN_token_as_bytes()
    {
        var body = CqlRequests.AuthResponse(CqlRequests.PlainSaslToken("cassandra", "secret"));
        Assert.Equal("00000011" + "00" + Ascii("cassandra") + "00" + Ascii("secret"), ToHex(body));
    }

    [Fact]
    public void Auth_response_with_a_null_token_is_length_minus_one()
    {
        Assert.Equal("ffffffff", ToHex(CqlRequests.AuthResponse(null)));
    }

    [Fact]
    public void Register_is_a_string_list()
    {
        Assert.Equal("0001" + Str("SCHEMA_CHANGE"), ToHex(CqlRequests.Register(["SCHEMA_CHANGE"])));
    }

    [Fact]
    public void Query_without_values_is_long_string_consistency_and_zero_flags()
    {
        var body = CqlRequests.Query("SELECT 1", new CqlQueryParameters(CqlConsistency.One, []), 4);
        Assert.Equal(LongStr("SELECT 1") + "0001" + "00", ToHex(body));
    }

    [Fact]
    public void Query_with_every_parameter_writes_them_in_flag_order()
    {
        var parameters = new CqlQueryParameters(
            CqlConsistency.Quorum,
            [CqlValue.Of([0, 0, 0, 1]), CqlValue.Null, CqlValue.Unset],
            PageSize: 50,
            PagingState: [0xAB],
            SerialConsistency: CqlConsistency.LocalSerial,
            DefaultTimestamp: 1);
        var body = CqlRequests.Query("q", parameters, 4);
        Assert.Equal(
            LongStr("q") + "0004" + "3d" + "0003" + "00000004" + "00000001" + "ffffffff" + "fffffffe"
            + "00000032" + "00000001ab" + "0009" + "0000000000000001",
            ToHex(body));
    }

    [Fact]
    public void Query_skip_metadata_sets_flag_0x02()
    {
        var body = CqlRequests.Query("q", new CqlQueryParameters(CqlConsistency.All, [], SkipMetadata: true), 3);
        Assert.Equal(LongStr("q") + "0005" + "02", ToHex(body));
    }

    [Fact]
    public void Unset_values_are_refused_on_v3()
    {
        var parameters = new CqlQueryParameters(CqlConsistency.One, [CqlValue.Unset]);
        Assert.Throws<ArgumentException>(() => CqlRequests.Query("q", parameters, 3));
    }

    [Fact]
    public void Prepare_is_a_long_string()
    {
        Assert.Equal(LongStr("SELECT * FROM t WHERE k = ?"), ToHex(CqlRequests.Prepare("SELECT * FROM t WHERE k = ?")));
    }

    [Fact]
    public void Prepare_counts_utf8_bytes_not_chars()
    {
        Assert.Equal("00000002" + "c3a9", ToHex(CqlRequests.Prepare("é")));
    }

    [Fact]
    public void Execute_is_short_bytes_id_then_query_parameters()
    {
        var body = CqlRequests.Execute([0x01, 0x02], new CqlQueryParameters(CqlConsistency.LocalOne, [CqlValue.Of([0x07])], PageSize: 100), 4);
        Assert.Equal("0002" + "0102" + "000a" + "05" + "0001" + "00000001" + "07" + "00000064", ToHex(body));
    }

    [Fact]
    public void Batch_mixes_unprepared_and_prepared_entries()
    {
        var body = CqlRequests.Batch(
            CqlBatchType.Unlogged,
            [
                new CqlBatchEntry("INSERT a", null, [CqlValue.Of([0, 0, 0, 7])]),
                new CqlBatchEntry(null, [0xCA, 0xFE], []),
            ],
            CqlConsistency.LocalQuorum,
            CqlConsistency.Serial,
            10,
            4);
        Assert.Equal(
            "01" + "0002"
            + "00" + LongStr("INSERT a") + "0001" + "00000004" + "00000007"
            + "01" + "0002" + "cafe" + "0000"
            + "0006" + "30" + "0008" + "000000000000000a",
            ToHex(body));
    }

    [Fact]
    public void Logged_batch_without_options_ends_with_consistency_and_zero_flags()
    {
        var body = CqlRequests.Batch(CqlBatchType.Logged, [new CqlBatchEntry("DELETE x", null, [CqlValue.Null])], CqlConsistency.One, null, null, 3);
        Assert.Equal("00" + "0001" + "00" + LongStr("DELETE x") + "0001" + "ffffffff" + "0001" + "00", ToHex(body));
    }

    [Fact]
    public void Batch_refuses_unset_values_on_v3()
    {
        Assert.Throws<ArgumentException>(() =>
            CqlRequests.Batch(CqlBatchType.Logged, [new CqlBatchEntry("x", null, [CqlValue.Unset])], CqlConsistency.One, null, null, 3));
    }

    [Fact]
    public void Batch_accepts_unset_values_on_v4()
    {
        var body = CqlRequests.Batch(CqlBatchType.Counter, [new CqlBatchEntry("x", null, [CqlValue.Unset])], CqlConsistency.One, null, null, 4);
        Assert.Equal("02" + "0001" + "00" + LongStr("x") + "0001" + "fffffffe" + "0001" + "00", ToHex(body));
    }
}
