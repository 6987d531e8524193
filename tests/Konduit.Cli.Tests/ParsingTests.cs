using Xunit;
using static Konduit.Cli.Tests.CliTestKit;

namespace Konduit.Cli.Tests;

/// <summary>The CLI's own input formats and the failures it reports before touching a store.</summary>
public sealed class ParsingTests
{
    [Theory]
    [InlineData("90s", 90)]
    [InlineData("24h", 86_400)]
    [InlineData("7d", 604_800)]
    [InlineData("1h30m", 5_400)]
    [InlineData("1.5m", 90)]
    [InlineData("500ms", 0.5)]
    [InlineData("01:30:00", 5_400)]
    public void Durations_take_a_number_and_a_unit(string text, double seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), CliParsing.ParseDuration("--x", text));

    [Theory]
    [InlineData("7")]
    [InlineData("d")]
    [InlineData("-1h")]
    [InlineData("0s")]
    [InlineData("1y")]
    public void Durations_without_a_unit_or_not_positive_are_usage_errors(string text)
    {
        var ex = Assert.Throws<CliException>(() => CliParsing.ParseDuration("--older-than", text));
        Assert.Equal(ExitCodes.Usage, ex.ExitCode);
        Assert.Contains("--older-than", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void States_are_case_insensitive_and_comma_separated() =>
        Assert.Equal([TaskState.Failed, TaskState.Canceled], CliParsing.ParseStates("--state", ["FAILED,canceled", "failed"])!);

    [Fact]
    public void A_number_is_not_a_state() =>
        Assert.Equal(ExitCodes.Usage, Assert.Throws<CliException>(() => CliParsing.ParseStates("--state", ["3"])).ExitCode);

    [Fact]
    public async Task An_unknown_option_is_exit_2_with_one_line_on_stderr()
    {
        var result = await RunAsync(AppDirectory("{}"), "stats", "--bogus");
        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("--bogus", result.Error, StringComparison.Ordinal);
        Assert.Equal("", result.Out);
    }

    [Fact]
    public async Task No_configured_store_is_exit_3_naming_the_key()
    {
        var result = await RunAsync(AppDirectory("{}"), "stats");
        Assert.Equal(ExitCodes.Configuration, result.ExitCode);
        Assert.Contains("Konduit:Store", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_misspelt_key_is_exit_3_naming_it()
    {
        var dir = AppDirectory("""{ "Konduit": { "Store": "InMemory", "InMemory": { "MaxPayloadByte": 10 } } }""");
        var result = await RunAsync(dir, "stats");
        Assert.Equal(ExitCodes.Configuration, result.ExitCode);
        Assert.Contains("Konduit:InMemory:MaxPayloadByte", result.Error, StringComparison.Ordinal);
        Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task Environment_variables_select_the_store_as_the_runtime_reads_them()
    {
        var env = new Dictionary<string, string> { ["Konduit__Store"] = "InMemory" };
        var result = await RunAsync(AppDirectory("{}"), env, null, "stats", "--json");
        Assert.Equal(0, result.ExitCode);
        Assert.Equal(0, result.Json().GetArrayLength());
    }

    [Fact]
    public async Task A_payload_that_is_not_json_is_refused_unless_raw()
    {
        var dir = AppDirectory("""{ "Konduit": { "Store": "InMemory" } }""");
        var refused = await RunAsync(dir, "enqueue", "q", "--payload", "{not json");
        Assert.Equal(ExitCodes.Usage, refused.ExitCode);
        Assert.Contains("--payload", refused.Error, StringComparison.Ordinal);

        var raw = await RunAsync(dir, "enqueue", "q", "--payload", "{not json", "--raw", "--json");
        Assert.Equal(0, raw.ExitCode);
        Assert.True(raw.Json().GetProperty("created").GetBoolean());
    }

    [Fact]
    public async Task Input_the_store_refuses_is_exit_2()
    {
        var dir = AppDirectory("""{ "Konduit": { "Store": "InMemory" } }""");
        var result = await RunAsync(dir, "enqueue", "bad queue name!", "--payload", "{}");
        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Contains("queue", result.Error, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task An_unreachable_store_is_exit_4()
    {
        var result = await RunAsync(AppDirectory("{}"), "tasks", "list", "--store", "Postgres", "--connection", "Host=127.0.0.1;Port=1;Username=nobody;Timeout=2");
        Assert.Equal(ExitCodes.Unavailable, result.ExitCode);
        Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
