using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Konduit.Heartbeats;
using Konduit.Testing.Conformance;
using Xunit;

namespace Konduit.Kafka.Tests;

/// <summary>
/// A Kafka to test against: librdkafka's mock cluster started in this process (<see cref="Brokers"/> brokers), or the
/// real broker <c>KONDUIT_TEST_KAFKA</c> names (bootstrap servers). Each channel gets its own topic and consumer group.
/// </summary>
public class KafkaFixture : HeartbeatChannelFixture
{
    private readonly List<KafkaHeartbeatChannel> _channels = [];
    private MockKafkaCluster? _mock;

    /// <summary>Brokers of the mock cluster.</summary>
    protected virtual int Brokers => 1;

    internal MockKafkaCluster? Mock => _mock;

    public string BootstrapServers { get; private set; } = "";

    public bool IsMock => _mock is not null;

    // Delivery and rebalance latencies of a consumer group: a few heartbeat intervals of slack.
    public override TimeSpan LivenessTimeout => TimeSpan.FromSeconds(2);

    public override TimeSpan HeartbeatInterval => TimeSpan.FromMilliseconds(100);

    public override TimeSpan AssignmentDeadline => TimeSpan.FromSeconds(20);

    public override async ValueTask InitializeAsync()
    {
        await base.InitializeAsync();
        var real = Environment.GetEnvironmentVariable("KONDUIT_TEST_KAFKA");
        if (!string.IsNullOrWhiteSpace(real))
        {
            BootstrapServers = real;
            return;
        }
        _mock = new MockKafkaCluster(Brokers);
        BootstrapServers = _mock.BootstrapServers;
    }

    public override async ValueTask DisposeAsync()
    {
        foreach (var channel in _channels) await channel.DisposeAsync();
        _mock?.Dispose();
        await base.DisposeAsync();
    }

    /// <summary>Creates <paramref name="topic"/>: through the mock's API (CreateTopics hangs on the mock), or the admin API on a real broker.</summary>
    public async Task CreateTopicAsync(string topic, int partitions, int replicationFactor = 1)
    {
        if (_mock is not null)
        {
            _mock.CreateTopic(topic, partitions, replicationFactor);
            return;
        }
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = BootstrapServers }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = partitions, ReplicationFactor = (short)replicationFactor }]);
    }

    public KafkaHeartbeatOptions Options(string topic, string? group = null)
    {
        var options = new KafkaHeartbeatOptions
        {
            BootstrapServers = BootstrapServers,
            Topic = topic,
            ConsumerGroup = group ?? "monitors-" + topic,
            HeartbeatInterval = HeartbeatInterval,
            LivenessTimeout = LivenessTimeout,
            DeliveryTimeout = TimeSpan.FromMilliseconds(1500),
            // The mock's rebalances wait session.timeout − 1 s (issue 12).
            SessionTimeout = TimeSpan.FromSeconds(2),
        };
        return options;
    }

    public KafkaHeartbeatChannel Track(KafkaHeartbeatChannel channel)
    {
        lock (_channels) _channels.Add(channel);
        return channel;
    }

    public override async ValueTask<IHeartbeatChannel> CreateChannelAsync()
    {
        var topic = "hb-" + Guid.NewGuid().ToString("N");
        await CreateTopicAsync(topic, 4, Math.Min(Brokers, 3));
        return Track(new KafkaHeartbeatChannel(Options(topic)));
    }
}

/// <summary>Three brokers, topics at replication factor 3 (the broker-down test).</summary>
public sealed class KafkaThreeBrokerFixture : KafkaFixture
{
    protected override int Brokers => 3;
}
