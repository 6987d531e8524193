using System.Collections.Concurrent;
using Confluent.Kafka;
using Konduit.Heartbeats;
using Konduit.Testing.Conformance;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit;

namespace Konduit.Kafka.Tests;

/// <summary>
/// SASL/TLS settings are passed through to librdkafka (issue 12), and the password never shows in what the library or
/// librdkafka reports. The mock cluster does not answer SaslHandshake, so a SASL client fails there: that failure is
/// the proof the settings reached librdkafka (ADR 009); TLS cannot be exercised on the mock.
/// </summary>
public sealed class KafkaSecurityTests(KafkaFixture fixture) : IClassFixture<KafkaFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string NewPassword() => "pw-" + Guid.NewGuid().ToString("N");

    private static HostApplicationBuilder Builder(IDictionary<string, string?> kafka)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        var settings = new Dictionary<string, string?> { ["Konduit:Store"] = "InMemory", ["Konduit:Heartbeats"] = "Kafka" };
        foreach (var (key, value) in kafka) settings["Konduit:KafkaHeartbeats:" + key] = value;
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddKonduit(builder.Configuration.GetSection("Konduit"));
        return builder;
    }

    [Fact]
    public void Security_settings_from_configuration_map_to_librdkafka_properties()
    {
        var password = NewPassword();
        using var host = Builder(new Dictionary<string, string?>
        {
            ["BootstrapServers"] = "broker-1:9093,broker-2:9093",
            ["SecurityProtocol"] = "SASL_SSL",
            ["SaslMechanism"] = "SCRAM-SHA-512",
            ["SaslUsername"] = "konduit-svc",
            ["SaslPassword"] = password,
            ["SslCaLocation"] = "/etc/konduit/ca.pem",
            // Pass-through settings reach librdkafka as given; the named options win over a pass-through of the same key.
            ["Settings:ssl.endpoint.identification.algorithm"] = "https",
            ["Settings:client.id"] = "konduit-heartbeats",
            ["Settings:sasl.username"] = "overridden",
            ["RunMonitor"] = "false",
        }).Build();

        var channel = Assert.IsType<KafkaHeartbeats>(host.Services.GetRequiredService<ILeaseRenewer>()).Channel;
        var config = channel.Common().ToDictionary(p => p.Key, p => p.Value);

        Assert.Equal("broker-1:9093,broker-2:9093", config["bootstrap.servers"]);
        Assert.Equal("sasl_ssl", config["security.protocol"], ignoreCase: true);
        Assert.Equal("SCRAM-SHA-512", config["sasl.mechanism"]);
        Assert.Equal("konduit-svc", config["sasl.username"]);
        Assert.Equal(password, config["sasl.password"]);
        Assert.Equal("/etc/konduit/ca.pem", config["ssl.ca.location"]);
        Assert.Equal("https", config["ssl.endpoint.identification.algorithm"]);
        Assert.Equal("konduit-heartbeats", config["client.id"]);
    }

    [Fact]
    public async Task Sasl_settings_reach_librdkafka_and_the_password_is_in_no_log_or_error()
    {
        var password = NewPassword();
        var topic = "hb-sasl-" + Guid.NewGuid().ToString("N");
        await fixture.CreateTopicAsync(topic, 1);
        var options = fixture.Options(topic);
        options.SecurityProtocol = "SASL_PLAINTEXT";
        options.SaslMechanism = "PLAIN";
        options.SaslUsername = "konduit-svc";
        options.SaslPassword = password;
        options.DeliveryTimeout = TimeSpan.FromMilliseconds(500);
        await using var channel = new KafkaHeartbeatChannel(options);

        // The channel's own producer: SASL against a broker that does not speak it, so deliveries fail.
        Assert.True(channel.TryPublish(new LeaseHeartbeat(Guid.CreateVersion7(), 1, "worker-1", DateTimeOffset.UtcNow, TimeSpan.FromMinutes(1))));
        await Await.Until(() => Task.FromResult(!channel.IsPublishing), TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(20),
            "publishing fails once librdkafka attempts the SASL handshake the mock refuses");

        // The same configuration with librdkafka's logs and errors captured (the channel routes neither anywhere).
        var said = new ConcurrentQueue<string>();
        // Every librdkafka debug context: the most it can say about a connection, its configuration and SASL (only
        // here, where the logs are captured: the channel's own producer would print them all on stderr).
        var config = new ProducerConfig(channel.Common()) { MessageTimeoutMs = 1000, Debug = "all" };
        using (var producer = new ProducerBuilder<byte[], byte[]>(config)
            .SetLogHandler((_, log) => said.Enqueue($"{log.Facility} {log.Message}"))
            .SetErrorHandler((_, error) => said.Enqueue($"{error.Code} {error.Reason}"))
            .Build())
        {
            try
            {
                await producer.ProduceAsync(topic, new Message<byte[], byte[]> { Key = [1], Value = [1] }, Ct);
                Assert.Fail("a SASL_PLAINTEXT delivery succeeded on the mock, which does not answer SaslHandshake");
            }
            catch (ProduceException<byte[], byte[]> ex)
            {
                said.Enqueue(ex.ToString());
            }
            await Await.Until(() => Task.FromResult(said.Any(s => s.Contains("SASL", StringComparison.OrdinalIgnoreCase))), TimeSpan.FromSeconds(20),
                TimeSpan.FromMilliseconds(20), "librdkafka reports the SASL failure");
        }

        // The library's own validation and start-up messages, for a configuration that fails them.
        using var invalid = Builder(new Dictionary<string, string?>
        {
            ["BootstrapServers"] = fixture.BootstrapServers,
            ["SaslPassword"] = password,
            ["LivenessTimeout"] = "00:00:00.001",
        }).Build();
        var startup = await Assert.ThrowsAnyAsync<Exception>(() => invalid.StartAsync(Ct));
        said.Enqueue(startup.ToString());

        Assert.True(said.Count > 10, $"librdkafka said only {said.Count} things with debug=all");
        Assert.DoesNotContain(said, s => s.Contains(password, StringComparison.Ordinal));
    }
}
