using Konduit.InMemory;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Xunit;

namespace Konduit.Hosting.Tests;

/// <summary>The <c>konduit-event-log</c> health check (issue 17): Degraded while the buffer passes its threshold or drops events.</summary>
public sealed class EventLogHealthTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static ServiceProvider Build(SwitchableEventLog? log)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Konduit:Store"] = "InMemory",
            ["Konduit:EventLogBuffer:DegradedBacklog"] = "3",
            ["Konduit:EventLogBuffer:Capacity"] = "5",
        };
        if (log is not null) settings["Konduit:EventLog"] = "Switchable";
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection().AddLogging(); // the health check service logs
        var konduit = services.AddKonduit(configuration.GetSection("Konduit"));
        if (log is not null)
            konduit.AddComponent(KonduitComponentKind.EventLog, "Switchable", new KonduitComponentDefinition<ITaskEventLog, object> { Factory = (_, _) => log });
        return services.BuildServiceProvider();
    }

    private static async Task<HealthReportEntry> CheckAsync(IServiceProvider provider) =>
        (await provider.GetRequiredService<HealthCheckService>().CheckHealthAsync(Ct)).Entries["konduit-event-log"];

    [Fact]
    public async Task A_log_that_falls_behind_is_degraded_then_healthy_once_it_catches_up()
    {
        var log = new SwitchableEventLog();
        await using var provider = Build(log);
        var store = provider.GetRequiredService<ITaskStore>();
        var recorder = provider.GetRequiredService<TaskEventRecorder>();
        Assert.Equal(HealthStatus.Healthy, (await CheckAsync(provider)).Status);

        log.Down = true;
        for (var i = 0; i < 3; i++) await store.EnqueueAsync(new EnqueueRequest("q", [1]), Ct); // 3 Enqueued events waiting
        var behind = await CheckAsync(provider);
        Assert.Equal(HealthStatus.Degraded, behind.Status);
        Assert.Contains("3 events waiting", behind.Description, StringComparison.Ordinal);

        for (var i = 0; i < 4; i++) await store.EnqueueAsync(new EnqueueRequest("q", [1]), Ct); // 2 fit, 2 dropped
        var dropping = await CheckAsync(provider);
        Assert.Equal(HealthStatus.Degraded, dropping.Status);
        Assert.Contains("2 event(s) dropped", dropping.Description, StringComparison.Ordinal);

        log.Down = false;
        await recorder.FlushAsync(Ct);
        var caughtUp = await CheckAsync(provider);
        Assert.Equal(HealthStatus.Healthy, caughtUp.Status); // the drops were reported once, by the previous check
        Assert.Equal(2L, caughtUp.Data["dropped"]);
    }

    [Fact]
    public async Task Without_an_event_log_the_check_is_healthy()
    {
        await using var provider = Build(null);
        var entry = await CheckAsync(provider);
        Assert.Equal(HealthStatus.Healthy, entry.Status);
        Assert.Contains("No event log", entry.Description, StringComparison.Ordinal);
    }
}
