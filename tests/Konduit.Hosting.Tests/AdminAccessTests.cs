using Konduit.InMemory;
using Konduit.Postgres;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Xunit;
using static Konduit.Hosting.Tests.TestKit;

namespace Konduit.Hosting.Tests;

/// <summary>
/// AddKonduitStore: the configured store, its start-up step, migration and health check, and nothing that runs by
/// itself (issue 11 item 2: what an operator CLI builds on).
/// </summary>
public sealed class AdminAccessTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static ServiceProvider Provider(Dictionary<string, string?> config, Action<IKonduitBuilder>? configure = null)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(config).Build();
        // A bare container, as an operator tool builds it; logging as every host has it (the health checks need it).
        var services = new ServiceCollection().AddLogging();
        var builder = services.AddKonduitStore(configuration.GetSection("Konduit"));
        configure?.Invoke(builder);
        return services.BuildServiceProvider();
    }

    [Fact]
    public async Task AddKonduitStore_gives_the_configured_store_and_no_hosted_service_of_konduit()
    {
        await using var provider = Provider(new() { ["Konduit:Store"] = "InMemory" });

        var store = Assert.IsType<InMemoryTaskStore>(provider.GetRequiredService<ITaskStore>());
        var id = (await store.EnqueueAsync(new EnqueueRequest("admin", [1]), Ct)).TaskId;
        Assert.Equal(TaskState.Pending, (await store.GetAsync(id, Ct)).State);
        // No workers, sweeper, initializer or upkeep: only the framework's own health-check publisher may be there.
        Assert.DoesNotContain(provider.GetServices<IHostedService>(), s => s.GetType().Assembly == typeof(IKonduitStoreStartup).Assembly);
        Assert.Null(provider.GetService<IKonduitClient>());
    }

    [Fact]
    public void AddKonduitStore_takes_no_handlers()
    {
        var services = new ServiceCollection();
        var builder = services.AddKonduitStore(new ConfigurationBuilder().Build());
        var ex = Assert.Throws<InvalidOperationException>(() => builder.AddHandler<DelegateHandler>("q"));
        Assert.Contains("AddKonduit", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddKonduitStore_checks_the_settings_when_the_store_is_first_used()
    {
        using var provider = Provider(new() { ["Konduit:Store"] = "InMemory", ["Konduit:InMemory:MaxPayloadByte"] = "10" });
        var ex = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<ITaskStore>());
        Assert.Contains("Konduit:InMemory:MaxPayloadByte", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AddKonduitStore_migrates_the_configured_postgres_schema_and_reports_it_healthy()
    {
        var connectionString = PostgresRuntimeFixture.RequireConnectionString();
        var schema = "konduit_adm_" + Guid.NewGuid().ToString("N")[..8];
        await using var provider = Provider(new()
        {
            ["Konduit:Store"] = "Postgres",
            ["Konduit:Postgres:ConnectionString"] = connectionString,
            ["Konduit:Postgres:Schema"] = schema,
        });
        try
        {
            var startup = provider.GetRequiredService<IKonduitStoreStartup>();
            await startup.StartAsync(Ct); // connectivity only: MigrateOnStartup is off
            Assert.True(await startup.MigrateAsync(Ct));

            var store = Assert.IsType<PostgresTaskStore>(provider.GetRequiredService<ITaskStore>());
            var id = (await store.EnqueueAsync(new EnqueueRequest("admin", [1]), Ct)).TaskId;
            Assert.Equal(TaskState.Pending, (await store.GetAsync(id, Ct)).State);
            var report = await provider.GetRequiredService<HealthCheckService>().CheckHealthAsync(Ct);
            Assert.Equal(HealthStatus.Healthy, report.Entries["konduit-store"].Status);
        }
        finally
        {
            await using var dataSource = Npgsql.NpgsqlDataSource.Create(connectionString);
            await using var drop = dataSource.CreateCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            await drop.ExecuteNonQueryAsync(Ct);
        }
    }

    [Fact]
    public async Task The_in_memory_store_has_no_schema_to_migrate()
    {
        await using var provider = Provider(new() { ["Konduit:Store"] = "InMemory" });
        Assert.False(await provider.GetRequiredService<IKonduitStoreStartup>().MigrateAsync(Ct));
    }
}

/// <summary>
/// A heartbeat channel is a component kind like any other: registered, selected by <c>Konduit:Heartbeats</c>, its
/// section known and its start-up step run, with a service type the mechanism never sees.
/// </summary>
public sealed class ComponentKindTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public interface IFakeRenewer
    {
        int Started { get; }
    }

    public sealed class FakeRenewerOptions
    {
        public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(1);
    }

    private sealed class FakeRenewer(FakeRenewerOptions options) : IFakeRenewer
    {
        public int Started { get; set; }

        public FakeRenewerOptions Options { get; } = options;
    }

    private static void AddFake(IKonduitBuilder konduit) =>
        konduit.AddComponent(KonduitComponentKind.Heartbeats, "Fake", new KonduitComponentDefinition<IFakeRenewer, FakeRenewerOptions>
        {
            Factory = (_, options) => new FakeRenewer(options),
            Validate = (_, options, path) => options.Interval > TimeSpan.Zero ? [] : [$"{path}:Interval must be positive."],
            StartAsync = (_, renewer, _, _) =>
            {
                ((FakeRenewer)renewer).Started++;
                return Task.CompletedTask;
            },
        });

    [Fact]
    public async Task A_heartbeat_channel_is_selected_by_configuration_and_started_with_the_store()
    {
        using var host = BuildHost(new()
        {
            ["Konduit:Store"] = "InMemory",
            ["Konduit:Heartbeats"] = "fake",
            ["Konduit:FakeHeartbeats:Interval"] = "00:00:02",
        }, store: null, AddFake);
        await host.StartAsync(Ct);

        var renewer = Assert.IsType<FakeRenewer>(host.Services.GetRequiredService<KonduitComponentHost>().Instance<IFakeRenewer>(KonduitComponentKind.Heartbeats));
        Assert.Equal(1, renewer.Started);
        Assert.Equal(TimeSpan.FromSeconds(2), renewer.Options.Interval);
        await host.StopAsync(Ct);
    }

    [Fact]
    public async Task A_bad_or_unknown_heartbeat_channel_fails_start_naming_the_key()
    {
        using var bad = BuildHost(new()
        {
            ["Konduit:Store"] = "InMemory",
            ["Konduit:Heartbeats"] = "Fake",
            ["Konduit:FakeHeartbeats:Interval"] = "00:00:00",
            ["Konduit:FakeHeartbeats:Intervall"] = "00:00:01",
        }, store: null, AddFake);
        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => bad.StartAsync(Ct));
        Assert.Contains("Konduit:FakeHeartbeats:Intervall is not a known setting", ex.Message, StringComparison.Ordinal);

        using var unknown = BuildHost(new() { ["Konduit:Store"] = "InMemory", ["Konduit:Heartbeats"] = "Kafka" }, store: null, AddFake);
        ex = await Assert.ThrowsAsync<OptionsValidationException>(() => unknown.StartAsync(Ct));
        Assert.Contains("Konduit:Heartbeats = 'Kafka' is not a registered heartbeat channel. Allowed values: Fake.", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void No_heartbeat_channel_selected_means_none_is_created()
    {
        using var host = BuildHost(new() { ["Konduit:Store"] = "InMemory" }, store: null, AddFake);
        Assert.Null(host.Services.GetRequiredService<KonduitComponentHost>().Instance<IFakeRenewer>(KonduitComponentKind.Heartbeats));
    }
}
