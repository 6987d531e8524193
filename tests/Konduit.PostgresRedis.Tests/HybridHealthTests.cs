using Konduit.Hosting;
using Konduit.Testing.Conformance;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Xunit;

namespace Konduit.PostgresRedis.Tests;

/// <summary>
/// The hybrid's health (issue 17): Redis down is Degraded, not Healthy (the store then runs on PostgreSQL alone), and
/// Healthy again once Redis answers; PostgreSQL down is the failure status.
/// </summary>
public sealed class HybridHealthTests(PostgresRedisStoreFixture fixture) : IClassFixture<PostgresRedisStoreFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Redis_down_is_degraded_and_healthy_again_once_it_answers()
    {
        await using var redis = await PrivateRedisServer.StartAsync();
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Konduit:Store"] = "PostgresRedis",
            ["Konduit:PostgresRedis:ConnectionString"] = PostgresRedisStoreFixture.PostgresConnectionString,
            ["Konduit:PostgresRedis:RedisConfiguration"] = redis.Configuration + ",connectTimeout=500",
            ["Konduit:PostgresRedis:Schema"] = fixture.Schema,
            ["Konduit:PostgresRedis:KeyPrefix"] = "khh-" + Guid.NewGuid().ToString("N")[..8],
            ["Konduit:PostgresRedis:RedisTimeout"] = "00:00:00.500",
            ["Konduit:PostgresRedis:RedisProbeInterval"] = "00:00:00.200",
        });
        builder.Services.AddKonduitStore(builder.Configuration.GetSection("Konduit"));
        using var host = builder.Build();
        await host.StartAsync(Ct);
        var health = host.Services.GetRequiredService<HealthCheckService>();

        var up = await health.CheckHealthAsync(Ct);
        Assert.Equal(HealthStatus.Healthy, up.Entries["konduit-store"].Status);

        await redis.ShutdownAsync();
        var down = await health.CheckHealthAsync(Ct);
        Assert.Equal(HealthStatus.Degraded, down.Entries["konduit-store"].Status);
        Assert.Contains("Redis", down.Entries["konduit-store"].Description, StringComparison.Ordinal);
        // Degraded, not broken: the store still takes and hands out work through PostgreSQL.
        var store = host.Services.GetRequiredService<ITaskStore>();
        var id = (await store.EnqueueAsync(new EnqueueRequest("health", [1]), Ct)).TaskId;
        Assert.Equal(id, Assert.Single(await store.LeaseAsync("health", "w", 1, TimeSpan.FromSeconds(30), Ct)).TaskId);

        await redis.RestartAsync();
        await Await.Until(async () => (await health.CheckHealthAsync(Ct)).Entries["konduit-store"].Status == HealthStatus.Healthy,
            TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(100), "the store reports Healthy once Redis answers again");
        await host.StopAsync(Ct);
    }

    [Fact]
    public async Task Postgres_down_is_the_failure_status()
    {
        var options = fixture.Options();
        options.ConnectionString = "Host=127.0.0.1;Port=1;Username=nobody;Timeout=2";
        await using var store = new PostgresRedisTaskStore(options, dataSource: null, redis: fixture.Redis);
        var ex = await Assert.ThrowsAnyAsync<Exception>(() => ((ITaskStore)store).ProbeAsync(Ct));
        Assert.IsType<StoreUnavailableException>(ex);
    }
}
