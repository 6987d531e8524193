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
}
