using Konduit.Cassandra.Cql;
using static Konduit.Cassandra.Tests.Bytes;

namespace Konduit.Cassandra.Tests;

/// <summary>ERROR bodies (§9) mapped to typed exceptions with their per-code details.</summary>
public sealed class ErrorTests
{
    private static CqlServerException Parse(string codeHex, string message, string detailsHex = "") =>
        CqlResponses.ParseError(Hex(codeHex + Str(message) + detailsHex));

    [Theory]
    [InlineData("00000000", typeof(CqlServerErrorException), (int)CqlErrorCode.ServerError)]
    [InlineData("0000000a", typeof(CqlProtocolErrorException), (int)CqlErrorCode.ProtocolError)]
    [InlineData("00000100", typeof(CqlAuthenticationException), (int)CqlErrorCode.AuthenticationError)]
    [InlineData("00001001", typeof(CqlOverloadedException), (int)CqlErrorCode.Overloaded)]
    [InlineData("00001002", typeof(CqlIsBootstrappingException), (int)CqlErrorCode.IsBootstrapping)]
    [InlineData("00001003", typeof(CqlTruncateException), (int)CqlErrorCode.TruncateError)]
    [InlineData("00002000", typeof(CqlSyntaxException), (int)CqlErrorCode.SyntaxError)]
    [InlineData("00002100", typeof(CqlUnauthorizedException), (int)CqlErrorCode.Unauthorized)]
    [InlineData("00002200", typeof(CqlInvalidQueryException), (int)CqlErrorCode.Invalid)]
    [InlineData("00002300", typeof(CqlConfigException), (int)CqlErrorCode.ConfigError)]
    public void Codes_without_details_map_to_their_type(string code, Type type, int expected)
    {
        var error = Parse(code, "boom");
        Assert.IsType(type, error);
        Assert.Equal((CqlErrorCode)expected, error.Code);
        Assert.Equal("boom", error.Message);
    }

    [Fact]
    public void Unavailable_carries_consistency_required_and_alive()
    {
        var error = Assert.IsType<CqlUnavailableException>(Parse("00001000", "Cannot achieve consistency", "0004" + "00000002" + "00000001"));
        Assert.Equal((CqlConsistency.Quorum, 2, 1), (error.Consistency, error.Required, error.Alive));
    }

    [Fact]
    public void Write_timeout_carries_received_blockfor_and_write_type()
    {
        var error = Assert.IsType<CqlWriteTimeoutException>(Parse("00001100", "timeout", "0006" + "00000001" + "00000002" + Str("BATCH_LOG")));
        Assert.Equal((CqlConsistency.LocalQuorum, 1, 2, "BATCH_LOG"), (error.Consistency, error.Received, error.BlockFor, error.WriteType));
    }

    [Fact]
    public void Read_timeout_carries_data_present()
    {
        var error = Assert.IsType<CqlReadTimeoutException>(Parse("00001200", "timeout", "0001" + "00000000" + "00000001" + "00"));
        Assert.Equal((CqlConsistency.One, 0, 1, false), (error.Consistency, error.Received, error.BlockFor, error.DataPresent));
    }

    [Fact]
    public void V4_read_failure_carries_the_failure_count()
    {
        var error = Assert.IsType<CqlReadFailureException>(Parse("00001300", "failed", "0005" + "00000001" + "00000003" + "00000002" + "01"));
        Assert.Equal((CqlConsistency.All, 1, 3, 2, true), (error.Consistency, error.Received, error.BlockFor, error.Failures, error.DataPresent));
    }

    [Fact]
    public void V4_function_failure_names_the_function()
    {
        var error = Assert.IsType<CqlFunctionFailureException>(Parse("00001400", "udf", Str("ks") + Str("f") + "0002" + Str("int") + Str("text")));
        Assert.Equal(("ks", "f"), (error.Keyspace, error.Function));
        Assert.Equal(["int", "text"], error.ArgumentTypes);
    }

    [Fact]
    public void V4_write_failure_carries_failures_and_write_type()
    {
        var error = Assert.IsType<CqlWriteFailureException>(Parse("00001500", "failed", "0001" + "00000000" + "00000001" + "00000001" + Str("SIMPLE")));
        Assert.Equal((CqlConsistency.One, 0, 1, 1, "SIMPLE"), (error.Consistency, error.Received, error.BlockFor, error.Failures, error.WriteType));
    }

    [Fact]
    public void Already_exists_names_keyspace_and_table()
    {
        var error = Assert.IsType<CqlAlreadyExistsException>(Parse("00002400", "exists", Str("ks") + Str("t")));
        Assert.Equal(("ks", "t"), (error.Keyspace, error.Table));
    }

    [Fact]
    public void Already_exists_for_a_keyspace_has_an_empty_table()
    {
        var error = Assert.IsType<CqlAlreadyExistsException>(Parse("00002400", "exists", Str("ks") + Str("")));
        Assert.Equal("", error.Table);
    }

    [Fact]
    public void Unprepared_carries_the_unknown_id()
    {
        var error = Assert.IsType<CqlUnpreparedException>(Parse("00002500", "unknown id", "0003 0a0b0c"));
        Assert.Equal([0x0A, 0x0B, 0x0C], error.PreparedId);
    }

    [Fact]
    public void Unknown_codes_keep_the_code_on_the_base_type()
    {
        var error = Parse("00003000", "future");
        Assert.Equal(typeof(CqlServerException), error.GetType());
        Assert.Equal((CqlErrorCode)0x3000, error.Code);
    }

    [Fact]
    public void An_error_frame_is_thrown_by_expect()
    {
        var frame = Response(CqlOpcode.Error, Hex("00002000" + Str("line 1:0 no viable alternative")));
        var error = Assert.Throws<CqlSyntaxException>(() => CqlResponses.Expect(frame, CqlOpcode.Result, out _));
        Assert.Contains("no viable alternative", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Truncated_details_are_malformed()
    {
        Assert.Throws<CqlMalformedFrameException>(() => Parse("00001000", "x", "0004 0000"));
    }
}
