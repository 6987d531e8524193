using Konduit.InMemory;
using Konduit.Postgres;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Xunit;
using static Konduit.Hosting.Tests.TestKit;

namespace Konduit.Hosting.Tests;

/// <summary>Store selection by name and one test per start-up validation rule.</summary>
public sealed class ConfigurationTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<string> StartupFailureAsync(Dictionary<string, string?> config, Action<IKonduitBuilder>? configure = null)
    {
        using var host = BuildHost(config, store: null, configure ?? (k => k.AddHandler<DelegateHandler>("q")),
            s => s.AddSingleton(new HandlerBody((_, _) => Task.CompletedTask)));
        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));
        return ex.Message;
    }

    private static Dictionary<string, string?> InMemory(params (string, string?)[] extra)
    {
        var config = new Dictionary<string, string?> { ["Konduit:Store"] = "InMemory" };
        foreach (var (k, v) in extra) config[k] = v;
        return config;
    }

    [Fact]
    public async Task Store_named_in_configuration_is_registered_without_code()
    {
        // No AddInMemoryStore() call: AddKonduit finds the adapter through assembly Konduit.InMemory.
        using var host = BuildHost(InMemory(), store: null, k => k.AddHandler<DelegateHandler>("q"),
            s => s.AddSingleton(new HandlerBody((_, _) => Task.CompletedTask)));
        await host.StartAsync(Ct);
        Assert.IsType<InMemoryTaskStore>(host.Services.GetRequiredService<ITaskStore>());
        await host.StopAsync(Ct);
    }

    [Fact]
    public async Task Store_names_are_case_insensitive_and_explicit_registration_is_idempotent()
    {
        using var host = BuildHost(new() { ["Konduit:Store"] = "inmemory" }, store: null,
            k => k.AddInMemoryStore().AddInMemoryStore().AddHandler<DelegateHandler>("q"),
            s => s.AddSingleton(new HandlerBody((_, _) => Task.CompletedTask)));
        await host.StartAsync(Ct);
        Assert.IsType<InMemoryTaskStore>(host.Services.GetRequiredService<ITaskStore>());
        await host.StopAsync(Ct);
    }

    [Fact]
    public void Postgres_store_is_selected_by_name_without_connecting()
    {
        // Building the store must not connect: an unreachable server does not stop the container from resolving it.
        using var host = BuildHost(new()
        {
            ["Konduit:Store"] = "Postgres",
            ["Konduit:Postgres:ConnectionString"] = "Host=127.0.0.1;Port=1;Username=x;Password=y",
            ["Konduit:Postgres:Schema"] = "konduit_unused",
        }, store: null, _ => { });
        Assert.IsType<PostgresTaskStore>(host.Services.GetRequiredService<ITaskStore>());
    }

    [Fact]
    public async Task Unknown_store_name_fails_start_listing_the_registered_stores()
    {
        var message = await StartupFailureAsync(new() { ["Konduit:Store"] = "Redis" }, k => k.AddInMemoryStore().AddHandler<DelegateHandler>("q"));
        Assert.Contains("Konduit:Store = 'Redis' is not a registered store", message);
        Assert.Contains("Allowed values: InMemory", message);
    }

    [Fact]
    public async Task Missing_store_name_fails_start()
    {
        var message = await StartupFailureAsync([]);
        Assert.Contains("Konduit:Store is required", message);
    }

    [Fact]
    public async Task Missing_postgres_connection_string_fails_start()
    {
        var message = await StartupFailureAsync(new() { ["Konduit:Store"] = "Postgres" });
        Assert.Contains("Konduit:Postgres:ConnectionString is required when Konduit:Store is 'Postgres'", message);
    }

    [Fact]
    public async Task Negative_concurrency_fails_start()
    {
        var message = await StartupFailureAsync(InMemory(("Konduit:Queues:q:Concurrency", "-1")));
        Assert.Contains("Konduit:Queues:q:Concurrency must be at least 1; got -1.", message);
    }

    [Fact]
    public async Task Heartbeat_interval_not_shorter_than_the_lease_fails_start()
    {
        var message = await StartupFailureAsync(InMemory(
            ("Konduit:Queues:q:LeaseSeconds", "30"), ("Konduit:Queues:q:HeartbeatInterval", "00:00:30")));
        Assert.Contains("Konduit:Queues:q:HeartbeatInterval (00:00:30) must be shorter than the lease (Konduit:Queues:q:LeaseSeconds = 30)", message);
    }

    [Fact]
    public async Task Heartbeat_fraction_of_one_or_more_fails_start()
    {
        var message = await StartupFailureAsync(InMemory(("Konduit:Queues:q:HeartbeatFraction", "1")));
        Assert.Contains("Konduit:Queues:q:HeartbeatFraction must be between 0 and 1", message);
    }

    [Fact]
    public async Task Bad_queue_name_in_configuration_fails_start()
    {
        var message = await StartupFailureAsync(InMemory(("Konduit:Queues:bad queue!:Concurrency", "2")));
        Assert.Contains("Konduit:Queues:bad queue!: 'bad queue!' is not a valid queue name", message);
    }

    [Fact]
    public void Bad_queue_name_in_AddHandler_throws()
    {
        var services = new ServiceCollection();
        var builder = services.AddKonduit(new Microsoft.Extensions.Configuration.ConfigurationBuilder().Build());
        var ex = Assert.Throws<ArgumentException>(() => builder.AddHandler<DelegateHandler>("no spaces allowed"));
        Assert.Equal("queue", ex.ParamName);
    }

    [Fact]
    public async Task Invalid_retry_policy_fails_start()
    {
        var message = await StartupFailureAsync(InMemory(("Konduit:Queues:q:Retry:Multiplier", "0.5")));
        Assert.Contains("Konduit:Queues:q:Retry:Multiplier:", message);
    }

    [Fact]
    public async Task Non_positive_lease_fails_start()
    {
        var message = await StartupFailureAsync(InMemory(("Konduit:Queues:q:LeaseSeconds", "0")));
        Assert.Contains("Konduit:Queues:q:LeaseSeconds must be positive", message);
    }

    [Fact]
    public async Task Negative_purge_age_or_non_positive_maintenance_interval_fails_start()
    {
        var message = await StartupFailureAsync(InMemory(("Konduit:PurgeFinishedAfter", "-00:00:01"), ("Konduit:EventLogMaintenanceInterval", "00:00:00")));
        Assert.Contains("Konduit:PurgeFinishedAfter must be zero or positive", message);
        Assert.Contains("Konduit:EventLogMaintenanceInterval must be positive", message);
    }

    [Fact]
    public async Task Invalid_store_options_fail_start_naming_the_store_section()
    {
        var message = await StartupFailureAsync(InMemory(("Konduit:InMemory:MaxPayloadBytes", "0")));
        Assert.Contains("Konduit:InMemory:MaxPayloadBytes:", message);
    }

    [Fact]
    public async Task All_failures_are_reported_together()
    {
        var message = await StartupFailureAsync(new()
        {
            ["Konduit:Store"] = "Postgres",
            ["Konduit:Queues:q:Concurrency"] = "0",
            ["Konduit:Queues:q:MaxAttempts"] = "0",
        });
        Assert.Contains("Konduit:Postgres:ConnectionString", message);
        Assert.Contains("Konduit:Queues:q:Concurrency", message);
        Assert.Contains("Konduit:Queues:q:MaxAttempts", message);
    }

    [Fact]
    public void A_queue_takes_one_handler()
    {
        var builder = new ServiceCollection().AddKonduit(new Microsoft.Extensions.Configuration.ConfigurationBuilder().Build());
        builder.AddHandler<DelegateHandler>("q");
        Assert.Throws<InvalidOperationException>(() => builder.AddHandler<DelegateHandler>("q"));
    }
}
