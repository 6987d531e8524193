namespace Konduit.Kafka;

/// <summary>
/// Settings of the Kafka heartbeat channel (<c>"Konduit:Heartbeats": "Kafka"</c>, section <c>Konduit:KafkaHeartbeats</c>).
/// The queue's lease length (LeaseSeconds) is the store-lease ceiling: with the channel on, set it to about ten liveness timeouts.
/// </summary>
public sealed class KafkaHeartbeatOptions
{
    /// <summary>The brokers, <c>host:port[,host:port…]</c>. Required.</summary>
    public string? BootstrapServers { get; set; }

    /// <summary>The heartbeat topic. Default <c>konduit-heartbeats</c>.</summary>
    public string Topic { get; set; } = "konduit-heartbeats";

    /// <summary>The lease monitors' consumer group. Default <c>konduit-lease-monitor</c>.</summary>
    public string ConsumerGroup { get; set; } = "konduit-lease-monitor";

    /// <summary>How often each running lease's heartbeat is published. Default 1 s.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a lease may go without a heartbeat before the monitor ends it. Default 10 s.</summary>
    public TimeSpan LivenessTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long a heartbeat may wait for delivery before publishing counts as failed and workers renew through the
    /// store (librdkafka <c>message.timeout.ms</c>). Default: a third of <see cref="LivenessTimeout"/>.
    /// </summary>
    public TimeSpan? DeliveryTimeout { get; set; }

    /// <summary>Whether this node runs a lease monitor (a member of <see cref="ConsumerGroup"/>). Default true.</summary>
    public bool RunMonitor { get; set; } = true;

    /// <summary>The consumer group session timeout: how fast a dead monitor's partitions move to another. Default 10 s.</summary>
    public TimeSpan SessionTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Whether the start-up step creates the topic when it is missing. Default false (create it with your tooling).</summary>
    public bool ProvisionTopic { get; set; }

    /// <summary>Partitions of a provisioned topic. Default 12.</summary>
    public int TopicPartitions { get; set; } = 12;

    /// <summary>Replication factor of a provisioned topic; -1 = the broker default. Default -1.</summary>
    public short TopicReplicationFactor { get; set; } = -1;

    /// <summary>librdkafka <c>security.protocol</c> (<c>plaintext</c>, <c>ssl</c>, <c>sasl_plaintext</c>, <c>sasl_ssl</c>).</summary>
    public string? SecurityProtocol { get; set; }

    /// <summary>librdkafka <c>sasl.mechanism</c> (<c>PLAIN</c>, <c>SCRAM-SHA-256</c>, …).</summary>
    public string? SaslMechanism { get; set; }

    /// <summary>librdkafka <c>sasl.username</c>.</summary>
    public string? SaslUsername { get; set; }

    /// <summary>librdkafka <c>sasl.password</c>.</summary>
    public string? SaslPassword { get; set; }

    /// <summary>librdkafka <c>ssl.ca.location</c>.</summary>
    public string? SslCaLocation { get; set; }

    /// <summary>Any other librdkafka settings, passed through to producer, consumer and admin client as given.</summary>
    public Dictionary<string, string> Settings { get; } = [];

    /// <summary>The effective delivery timeout.</summary>
    public TimeSpan EffectiveDeliveryTimeout => DeliveryTimeout ?? LivenessTimeout / 3;

    /// <summary>Checks the settings; throws <see cref="ArgumentException"/> naming the bad one.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(BootstrapServers)) throw new ArgumentException("BootstrapServers is required.", nameof(BootstrapServers));
        if (string.IsNullOrWhiteSpace(Topic) || Topic.Length > 249 || !Topic.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
            throw new ArgumentException("Topic must be 1–249 characters of ASCII letters, digits, '.', '_' and '-'.", nameof(Topic));
        if (string.IsNullOrWhiteSpace(ConsumerGroup)) throw new ArgumentException("ConsumerGroup is required.", nameof(ConsumerGroup));
        if (HeartbeatInterval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(HeartbeatInterval), HeartbeatInterval, "HeartbeatInterval must be positive.");
        if (LivenessTimeout < HeartbeatInterval * 2)
            throw new ArgumentOutOfRangeException(nameof(LivenessTimeout), LivenessTimeout, "LivenessTimeout must be at least two heartbeat intervals.");
        if (EffectiveDeliveryTimeout <= TimeSpan.Zero || EffectiveDeliveryTimeout >= LivenessTimeout - HeartbeatInterval)
            throw new ArgumentOutOfRangeException(nameof(DeliveryTimeout), EffectiveDeliveryTimeout,
                "DeliveryTimeout must be positive and shorter than LivenessTimeout minus HeartbeatInterval, so workers fall back to the store before a monitor judges them.");
        if (SessionTimeout < TimeSpan.FromSeconds(1)) throw new ArgumentOutOfRangeException(nameof(SessionTimeout), SessionTimeout, "SessionTimeout must be at least 1 s.");
        if (TopicPartitions is < 1 or > 10_000) throw new ArgumentOutOfRangeException(nameof(TopicPartitions), TopicPartitions, "TopicPartitions must be 1–10000.");
    }
}
