using Konduit.Testing.Conformance;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit;

namespace Konduit.Kafka.Tests;

/// <summary>"Konduit:Heartbeats": "Kafka" selects the channel by name (ADR 008): its renewer replaces the store's and the start-up step starts a monitor.</summary>
public sealed class KafkaConfigurationTests(KafkaFixture fixture) : IClassFixture<KafkaFixture>
{
    [Fact]
    public async Task Heartbeats_Kafka_selects_the_channel_and_starts_a_monitor()
    {
        var topic = "hb-config-" + Guid.NewGuid().ToString("N");
        await fixture.CreateTopicAsync(topic, 2);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Konduit:Store"] = "InMemory",
            ["Konduit:Heartbeats"] = "Kafka",
            ["Konduit:KafkaHeartbeats:BootstrapServers"] = fixture.BootstrapServers,
            ["Konduit:KafkaHeartbeats:Topic"] = topic,
            ["Konduit:KafkaHeartbeats:ConsumerGroup"] = "monitors-" + topic,
            ["Konduit:KafkaHeartbeats:HeartbeatInterval"] = "00:00:00.100",
            ["Konduit:KafkaHeartbeats:LivenessTimeout"] = "00:00:02",
            ["Konduit:KafkaHeartbeats:SessionTimeout"] = "00:00:02",
        });
        builder.Services.AddKonduit(builder.Configuration.GetSection("Konduit"));
        using var host = builder.Build();
        await host.StartAsync(TestContext.Current.CancellationToken);
        try
        {
            var renewer = Assert.IsType<KafkaHeartbeats>(host.Services.GetRequiredService<ILeaseRenewer>());
            var monitor = Assert.IsType<Konduit.Heartbeats.LeaseMonitor>(renewer.Monitor);
            await Await.Until(() => Task.FromResult(monitor.HeldPartitions == 2), fixture.AssignmentDeadline, TimeSpan.FromMilliseconds(20), "the node's monitor joins the group");
        }
        finally
        {
            await host.StopAsync(TestContext.Current.CancellationToken);
        }
    }

    // A lease is unknown to the monitors until its first heartbeat is delivered (ADR 009): a producer created at the
    // first heartbeat makes a fresh worker's first delivery wait for a connection, and the end-to-end test saw workers
    // killed in that window wait out the ceiling. The start-up step creates it, so librdkafka connects beforehand.
    [Fact]
    public async Task The_start_up_step_creates_the_producer_before_the_first_heartbeat()
    {
        var topic = "hb-connect-" + Guid.NewGuid().ToString("N");
        await fixture.CreateTopicAsync(topic, 1);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Konduit:Store"] = "InMemory",
            ["Konduit:Heartbeats"] = "Kafka",
            ["Konduit:KafkaHeartbeats:BootstrapServers"] = fixture.BootstrapServers,
            ["Konduit:KafkaHeartbeats:Topic"] = topic,
            ["Konduit:KafkaHeartbeats:RunMonitor"] = "false",
        });
        builder.Services.AddKonduit(builder.Configuration.GetSection("Konduit"));
        using var host = builder.Build();
        var renewer = Assert.IsType<KafkaHeartbeats>(host.Services.GetRequiredService<ILeaseRenewer>());
        Assert.False(renewer.Channel.IsProducerCreated);

        await host.StartAsync(TestContext.Current.CancellationToken);
        try
        {
            Assert.Equal(0, renewer.Renewer.HeartbeatsPublished);
            Assert.True(renewer.Channel.IsProducerCreated, "the producer is created by the first heartbeat, not at start-up");
        }
        finally
        {
            await host.StopAsync(TestContext.Current.CancellationToken);
        }
    }
}
