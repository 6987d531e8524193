using Konduit.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using Xunit;

namespace Konduit.Redis.Tests;

/// <summary>"Konduit:Store": "Redis" selects the store from configuration alone, validated at start-up.</summary>
public sealed class RedisConfigurationTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static IHost BuildHost(Dictionary<string, string?> config, Action<IServiceCollection>? services = null)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(config);
        builder.Services.AddKonduit(builder.Configuration.GetSection("Konduit"));
        services?.Invoke(builder.Services);
        return builder.Build();
    }

    [Fact]
    public void Redis_store_is_selected_by_name_without_connecting()
    {
        // No AddRedisStore() call, and nothing listens on port 1: resolving the store must not connect.
        using var host = BuildHost(new()
        {
            ["Konduit:Store"] = "Redis",
            ["Konduit:Redis:Configuration"] = "127.0.0.1:1,connectTimeout=200",
            ["Konduit:Redis:KeyPrefix"] = "app1",
        });

        var store = Assert.IsType<RedisTaskStore>(host.Services.GetRequiredService<ITaskStore>());
        Assert.Equal("app1", store.KeyPrefix);
    }

    [Fact]
    public async Task A_missing_configuration_string_fails_start_up_naming_the_key()
    {
        using var host = BuildHost(new() { ["Konduit:Store"] = "Redis" });

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));

        Assert.Contains("Konduit:Redis:Configuration", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bad_key_prefix_fails_start_up()
    {
        using var host = BuildHost(new()
        {
            ["Konduit:Store"] = "Redis",
            ["Konduit:Redis:Configuration"] = "127.0.0.1:1",
            ["Konduit:Redis:KeyPrefix"] = "has:colon",
        });

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));

        Assert.Contains("KeyPrefix", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_multiplexer_from_the_container_is_used_and_configuration_may_be_omitted()
    {
        var multiplexer = ConnectionMultiplexer.Connect("127.0.0.1:1,abortConnect=false,connectTimeout=200");
        using var host = BuildHost(new() { ["Konduit:Store"] = "Redis" }, s => s.AddSingleton<IConnectionMultiplexer>(multiplexer));

        Assert.IsType<RedisTaskStore>(host.Services.GetRequiredService<ITaskStore>());
        multiplexer.Dispose();
    }

    [Fact]
    public async Task An_unreachable_server_fails_start_up_in_one_line_naming_the_configuration_key()
    {
        // Nothing listens on port 1 of the loopback. Today's store connects lazily, so the host would report ready.
        using var host = BuildHost(new()
        {
            ["Konduit:Store"] = "Redis",
            ["Konduit:Redis:Configuration"] = "127.0.0.1:1,connectTimeout=300,password=secret-pw",
        });

        var ex = await Assert.ThrowsAsync<KonduitStartupException>(() => host.StartAsync(Ct));

        Assert.Equal("Konduit:Redis:Configuration", ex.ConfigurationKey);
        Assert.StartsWith("Konduit:Redis:Configuration: cannot reach Redis at 127.0.0.1:1", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', ex.Message);
        Assert.DoesNotContain("secret-pw", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_malformed_configuration_string_fails_start_up_naming_the_key()
    {
        using var host = BuildHost(new() { ["Konduit:Store"] = "Redis", ["Konduit:Redis:Configuration"] = "127.0.0.1:6379,connectTimeout=soon" });

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));

        Assert.Contains("Konduit:Redis:Configuration is not a valid StackExchange.Redis configuration string", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_reachable_server_passes_the_start_up_check()
    {
        var configuration = Environment.GetEnvironmentVariable("KONDUIT_TEST_REDIS") is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException("KONDUIT_TEST_REDIS is not set: run scripts/services.sh up && source .services/env");
        using var host = BuildHost(new()
        {
            ["Konduit:Store"] = "Redis",
            ["Konduit:Redis:Configuration"] = configuration,
            ["Konduit:Redis:KeyPrefix"] = "kcfg" + Guid.NewGuid().ToString("N")[..8],
        });

        await host.StartAsync(Ct);
        await host.StopAsync(Ct);
    }

    [Fact]
    public async Task A_wrong_password_for_an_acl_user_fails_start_up_although_the_default_user_needs_none()
    {
        // The shared server's default user has no password, and Redis keeps a connection whose AUTH failed logged in as
        // `default`: before the check asked the server who the connection is, this host started with the default
        // user's rights (issue 13 item 9).
        var configuration = Environment.GetEnvironmentVariable("KONDUIT_TEST_REDIS") is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException("KONDUIT_TEST_REDIS is not set: run scripts/services.sh up && source .services/env");
        var user = "kcfg-user-" + Guid.NewGuid().ToString("N")[..8];
        var password = Guid.NewGuid().ToString("N");
        var wrong = Guid.NewGuid().ToString("N");
        await using var admin = await ConnectionMultiplexer.ConnectAsync(configuration);
        var db = admin.GetDatabase();
        await db.ExecuteAsync("ACL", "SETUSER", user, "on", ">" + password, "~kcfg*", "&kcfg*", "+@all");
        try
        {
            foreach (var (attempt, ok) in new[] { (wrong, false), (password, true) })
            {
                using var host = BuildHost(new()
                {
                    ["Konduit:Store"] = "Redis",
                    ["Konduit:Redis:Configuration"] = $"{configuration},user={user},password={attempt}",
                    ["Konduit:Redis:KeyPrefix"] = "kcfg" + Guid.NewGuid().ToString("N")[..8],
                });
                if (ok)
                {
                    await host.StartAsync(Ct);
                    await host.StopAsync(Ct);
                    continue;
                }
                var ex = await Assert.ThrowsAsync<KonduitStartupException>(() => host.StartAsync(Ct));
                Assert.Equal("Konduit:Redis:Configuration", ex.ConfigurationKey);
                Assert.Contains($"did not log in user '{user}'", ex.Message, StringComparison.Ordinal);
                Assert.DoesNotContain(attempt, ex.ToString(), StringComparison.Ordinal);
            }
        }
        finally
        {
            await db.ExecuteAsync("ACL", "DELUSER", user);
        }
    }
}
