using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xunit;
using static Konduit.Hosting.Tests.TestKit;

namespace Konduit.Hosting.Tests;

/// <summary>
/// Configuration that is wrong must stop the host with the key's name (issue 13, item 9): values that do not
/// parse, unknown keys, an unknown store, and a store that cannot be reached at start-up.
/// </summary>
public sealed class StartupChecksTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static IHost Build(Dictionary<string, string?> config, Action<IKonduitBuilder>? configure = null, LogCollector? logs = null) =>
        BuildHost(config, store: null, configure ?? (k => k.AddHandler<DelegateHandler>("q")), s =>
        {
            s.AddSingleton(new HandlerBody((_, _) => Task.CompletedTask));
            if (logs is not null) s.AddLogging(b => b.AddProvider(logs));
        });

    /// <summary>Starts the host, expecting it to fail; returns the failure's message.</summary>
    private static async Task<string> StartupFailureAsync(Dictionary<string, string?> config, Action<IKonduitBuilder>? configure = null)
    {
        using var host = Build(config, configure);
        Exception? failure = null;
        try
        {
            await host.StartAsync(Ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            failure = ex;
        }
        if (failure is null)
        {
            await host.StopAsync(Ct);
            Assert.Fail("The host started although its configuration is wrong.");
        }
        return failure.Message;
    }

    private static Dictionary<string, string?> InMemory(params (string Key, string? Value)[] extra)
    {
        var config = new Dictionary<string, string?> { ["Konduit:Store"] = "InMemory" };
        foreach (var (key, value) in extra) config[key] = value;
        return config;
    }

    [Fact]
    public async Task A_value_that_does_not_parse_inside_a_queue_section_fails_start_naming_the_key()
    {
        var message = await StartupFailureAsync(InMemory(("Konduit:Queues:q:Concurrency", "eight")));
        Assert.Contains("Konduit:Queues:q:Concurrency", message, StringComparison.Ordinal);
        Assert.Contains("eight", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_value_that_does_not_parse_in_a_retry_section_fails_start_naming_the_key()
    {
        var message = await StartupFailureAsync(InMemory(("Konduit:Queues:q:Retry:InitialDelay", "soon")));
        Assert.Contains("Konduit:Queues:q:Retry:InitialDelay", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_key_inside_a_queue_section_fails_start_naming_the_key()
    {
        var message = await StartupFailureAsync(InMemory(("Konduit:Queues:q:Concurency", "4")));
        Assert.Contains("Konduit:Queues:q:Concurency", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_top_level_key_fails_start_naming_the_key()
    {
        var message = await StartupFailureAsync(InMemory(("Konduit:SweepIntervall", "00:00:01")));
        Assert.Contains("Konduit:SweepIntervall", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_key_in_the_selected_store_section_fails_start_naming_the_key()
    {
        var message = await StartupFailureAsync(InMemory(("Konduit:InMemory:MaxPayloadByte", "1024")));
        Assert.Contains("Konduit:InMemory:MaxPayloadByte", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sections_of_the_components_the_application_references_are_not_unknown_keys()
    {
        // Konduit.Postgres is referenced (store and event log) but not selected: its sections may stay in the file.
        using var host = Build(InMemory(
            ("Konduit:Postgres:ConnectionString", "Host=127.0.0.1;Port=1"),
            ("Konduit:Postgres:MigrateOnStartup", "true"),
            ("Konduit:PostgresEventLog:Schema", "konduit_events"),
            ("Konduit:InMemory:MaxPayloadBytes", "1024"),
            ("Konduit:EventLogBuffer:Capacity", "10"),
            ("Konduit:Queues:q:Retry:Multiplier", "3")));
        await host.StartAsync(Ct);
        await host.StopAsync(Ct);
    }

    [Fact]
    public async Task An_unknown_store_lists_the_store_adapters_the_application_references()
    {
        // No explicit registration: the message must still name the adapters this test project references.
        var message = await StartupFailureAsync(new() { ["Konduit:Store"] = "Mongo" });
        Assert.Contains("Konduit:Store = 'Mongo'", message, StringComparison.Ordinal);
        Assert.Contains("InMemory", message, StringComparison.Ordinal);
        Assert.Contains("Postgres", message, StringComparison.Ordinal);
        Assert.DoesNotContain("none", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_wrong_postgres_password_fails_start_in_one_line_naming_the_connection_string_key()
    {
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(PostgresRuntimeFixture.RequireConnectionString()) { Password = "not-the-password-" + Guid.NewGuid().ToString("N")[..6] };
        var message = await StartupFailureAsync(new()
        {
            ["Konduit:Store"] = "Postgres",
            ["Konduit:Postgres:ConnectionString"] = builder.ConnectionString,
        });
        AssertOneLineNamingTheKey(message, "Konduit:Postgres:ConnectionString", builder.Password!);
    }

    [Fact]
    public async Task An_unreachable_postgres_server_fails_start_in_one_line_naming_the_connection_string_key()
    {
        // Nothing listens on port 1 of the loopback: the connection is refused at once.
        var message = await StartupFailureAsync(new()
        {
            ["Konduit:Store"] = "Postgres",
            ["Konduit:Postgres:ConnectionString"] = "Host=127.0.0.1;Port=1;Username=konduit;Password=secret-pw;Timeout=5",
        });
        AssertOneLineNamingTheKey(message, "Konduit:Postgres:ConnectionString", "secret-pw");
    }

    [Fact]
    public async Task A_malformed_postgres_connection_string_fails_start_in_one_line_naming_the_key()
    {
        var message = await StartupFailureAsync(new()
        {
            ["Konduit:Store"] = "Postgres",
            ["Konduit:Postgres:ConnectionString"] = "Host=127.0.0.1;Port=not-a-port;Password=secret-pw",
        });
        AssertOneLineNamingTheKey(message, "Konduit:Postgres:ConnectionString", "secret-pw");
    }

    [Fact]
    public async Task A_queue_configured_without_a_handler_logs_a_warning_naming_it()
    {
        var logs = new LogCollector();
        using var host = Build(InMemory(("Konduit:Queues:orphan:Concurrency", "2")), logs: logs);
        await host.StartAsync(Ct);
        await host.StopAsync(Ct);
        Assert.Contains(logs.Entries, e => e.Message.Contains("Konduit:Queues:orphan", StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Entries, e => e.Message.Contains("Konduit:Queues:q", StringComparison.Ordinal));
    }

    internal static void AssertOneLineNamingTheKey(string message, string key, string password)
    {
        Assert.Contains(key, message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', message);
        Assert.DoesNotContain(password, message, StringComparison.Ordinal);
    }
}
