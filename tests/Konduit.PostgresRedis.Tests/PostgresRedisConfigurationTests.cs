using Konduit.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Xunit;

namespace Konduit.PostgresRedis.Tests;

/// <summary>"Konduit:Store": "PostgresRedis" selects the hybrid from configuration alone, validated at start-up.</summary>
public sealed class PostgresRedisConfigurationTests(PostgresRedisStoreFixture fixture) : IClassFixture<PostgresRedisStoreFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static IHost BuildHost(Dictionary<string, string?> config)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(config);
        builder.Services.AddKonduit(builder.Configuration.GetSection("Konduit"));
        return builder.Build();
    }

    [Fact]
    public void The_hybrid_is_selected_by_name_without_connecting()
    {
        // No AddPostgresRedisStore() call, and nothing listens on port 1: resolving the store must not connect.
        using var host = BuildHost(new()
        {
            ["Konduit:Store"] = "PostgresRedis",
            ["Konduit:PostgresRedis:ConnectionString"] = "Host=127.0.0.1;Port=1",
            ["Konduit:PostgresRedis:RedisConfiguration"] = "127.0.0.1:1,connectTimeout=200",
            ["Konduit:PostgresRedis:KeyPrefix"] = "app1",
            ["Konduit:PostgresRedis:RedisTimeout"] = "00:00:00.250",
        });

        var store = Assert.IsType<PostgresRedisTaskStore>(host.Services.GetRequiredService<ITaskStore>());
        Assert.Equal("{app1:orders}:dispatch", store.StreamKey("orders"));
    }

    [Fact]
    public async Task Missing_connection_settings_fail_start_up_naming_both_keys()
    {
        using var host = BuildHost(new() { ["Konduit:Store"] = "PostgresRedis" });

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));

        Assert.Contains("Konduit:PostgresRedis:ConnectionString", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Konduit:PostgresRedis:RedisConfiguration", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("KeyPrefix", "has:colon")]
    [InlineData("Schema", "Bad-Schema")]
    [InlineData("RedisTimeout", "00:00:00")]
    public async Task Bad_settings_fail_start_up(string key, string value)
    {
        using var host = BuildHost(new()
        {
            ["Konduit:Store"] = "PostgresRedis",
            ["Konduit:PostgresRedis:ConnectionString"] = "Host=127.0.0.1;Port=1",
            ["Konduit:PostgresRedis:RedisConfiguration"] = "127.0.0.1:1",
            ["Konduit:PostgresRedis:" + key] = value,
        });

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));

        Assert.Contains(key, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_configured_host_migrates_and_runs_a_task_end_to_end()
    {
        var schema = "konduit_hc_" + Guid.NewGuid().ToString("N")[..8];
        using var host = BuildHost(new()
        {
            ["Konduit:Store"] = "PostgresRedis",
            ["Konduit:PostgresRedis:ConnectionString"] = PostgresRedisStoreFixture.PostgresConnectionString,
            ["Konduit:PostgresRedis:RedisConfiguration"] = Environment.GetEnvironmentVariable(PostgresRedisStoreFixture.RedisVariable),
            ["Konduit:PostgresRedis:Schema"] = schema,
            ["Konduit:PostgresRedis:KeyPrefix"] = "khc-" + Guid.NewGuid().ToString("N")[..8],
            ["Konduit:PostgresRedis:MigrateOnStartup"] = "true",
        });
        try
        {
            await host.StartAsync(Ct);
            var store = host.Services.GetRequiredService<ITaskStore>();
            var enqueued = await store.EnqueueAsync(new EnqueueRequest("cfg", [1]), Ct);
            var lease = Assert.Single(await store.LeaseAsync("cfg", "w", 1, TimeSpan.FromSeconds(30), Ct));
            await store.CompleteAsync(lease, null, Ct);
            Assert.Equal(TaskState.Succeeded, (await store.GetAsync(enqueued.TaskId, Ct)).State);
            await host.StopAsync(Ct);
        }
        finally
        {
            await fixture.ScalarAsync<object>($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE; SELECT 1");
        }
    }
}
