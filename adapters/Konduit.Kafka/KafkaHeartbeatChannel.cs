using Confluent.Kafka;
using Konduit.Heartbeats;

namespace Konduit.Kafka;

/// <summary>
/// The Kafka <see cref="IHeartbeatChannel"/> (issue 12, ADR 009): heartbeats are produced to one topic keyed by task
/// id (batched by librdkafka: <c>linger.ms</c> 20, never waiting in <see cref="TryPublish"/>), and lease monitors
/// consume it in one consumer group, from the newest offset. Nothing connects when the channel is built: the producer is
/// created by the start-up step of <c>"Heartbeats": "Kafka"</c> (or by the first heartbeat) and connects in the background.
/// </summary>
public sealed class KafkaHeartbeatChannel : IHeartbeatChannel
{
    private readonly KafkaHeartbeatOptions _options;
    private readonly Lazy<IProducer<byte[], byte[]>> _producer;
    private readonly Action<DeliveryReport<byte[], byte[]>> _delivered;
    private volatile bool _failing;
    private long _deliveredOk;
    private long _deliveryFailures;
    private long _malformed;

    /// <summary>Creates the channel; <paramref name="options"/> are validated here.</summary>
    public KafkaHeartbeatChannel(KafkaHeartbeatOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _delivered = OnDelivered;
        _producer = new Lazy<IProducer<byte[], byte[]>>(CreateProducer, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The topic.</summary>
    public string Topic => _options.Topic;

    /// <summary>Heartbeats the brokers acknowledged.</summary>
    public long Delivered => Interlocked.Read(ref _deliveredOk);

    /// <summary>Heartbeats whose delivery failed (timed out or refused).</summary>
    public long DeliveryFailures => Interlocked.Read(ref _deliveryFailures);

    /// <summary>Messages on the topic that were not valid heartbeats (skipped by consumers).</summary>
    public long Malformed => Interlocked.Read(ref _malformed);

    /// <inheritdoc />
    public bool IsPublishing => !_failing;

    /// <inheritdoc />
    public bool TryPublish(LeaseHeartbeat heartbeat)
    {
        ArgumentNullException.ThrowIfNull(heartbeat);
        heartbeat.Validate();
        try
        {
            // Produce only queues the message (librdkafka batches and sends it); a full local queue throws at once.
            _producer.Value.Produce(_options.Topic,
                new Message<byte[], byte[]> { Key = KafkaHeartbeatFormat.Key(heartbeat.TaskId), Value = KafkaHeartbeatFormat.Encode(heartbeat) },
                _delivered);
            return true;
        }
        catch (ProduceException<byte[], byte[]>)
        {
            _failing = true;
            return false;
        }
        catch (KafkaException)
        {
            _failing = true;
            return false;
        }
    }

    /// <summary>
    /// Creates the producer now, so that librdkafka connects before the first heartbeat: a lease is unknown to the
    /// monitors until its first heartbeat is delivered (ADR 009). Never waits; unreachable brokers are not an error here.
    /// </summary>
    internal void Connect() => _ = _producer.Value;

    /// <summary>Whether the producer exists (it connects to the brokers in the background from then on).</summary>
    internal bool IsProducerCreated => _producer.IsValueCreated;

    /// <summary>Waits up to <paramref name="timeout"/> for queued heartbeats to be delivered (tests, shutdown).</summary>
    public void Flush(TimeSpan timeout)
    {
        if (_producer.IsValueCreated) _producer.Value.Flush(timeout);
    }

    /// <inheritdoc />
    public Task ConsumeAsync(IHeartbeatObserver observer, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(observer);
        // librdkafka's consumer is a blocking API: it gets a thread of its own.
        return Task.Factory.StartNew(() => Consume(observer, cancellationToken), cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        if (_producer.IsValueCreated)
        {
            _producer.Value.Flush(TimeSpan.FromSeconds(1));
            _producer.Value.Dispose();
        }
        return ValueTask.CompletedTask;
    }

    private void Consume(IHeartbeatObserver observer, CancellationToken cancellationToken)
    {
        var config = new ConsumerConfig(Common())
        {
            GroupId = _options.ConsumerGroup,
            AutoOffsetReset = AutoOffsetReset.Latest,
            EnableAutoCommit = true,
            AutoCommitIntervalMs = 1000,
            SessionTimeoutMs = (int)_options.SessionTimeout.TotalMilliseconds,
            HeartbeatIntervalMs = Math.Max(100, (int)(_options.SessionTimeout.TotalMilliseconds / 6)),
            EnablePartitionEof = false,
        };
        using var consumer = new ConsumerBuilder<byte[], byte[]>(config)
            .SetPartitionsAssignedHandler((_, assigned) => observer.OnAssigned([.. assigned.Select(p => p.Partition.Value)]))
            .SetPartitionsRevokedHandler((_, revoked) => observer.OnRevoked([.. revoked.Select(p => p.Partition.Value)]))
            .SetPartitionsLostHandler((_, lost) => observer.OnRevoked([.. lost.Select(p => p.Partition.Value)]))
            .Build();
        consumer.Subscribe(_options.Topic);
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                ConsumeResult<byte[], byte[]>? result;
                try
                {
                    result = consumer.Consume(TimeSpan.FromMilliseconds(100));
                }
                catch (ConsumeException ex) when (!ex.Error.IsFatal)
                {
                    continue; // e.g. the topic does not exist yet: librdkafka keeps retrying
                }
                if (result?.Message is null) continue;
                var heartbeat = KafkaHeartbeatFormat.Decode(result.Message.Value);
                if (heartbeat is null)
                {
                    Interlocked.Increment(ref _malformed);
                    continue;
                }
                observer.OnHeartbeat(heartbeat, result.Partition.Value);
            }
        }
        finally
        {
            // Leave the group now, so the partitions move to another monitor without waiting out the session.
            try
            {
                consumer.Close();
            }
            catch (KafkaException)
            {
            }
        }
        cancellationToken.ThrowIfCancellationRequested();
    }

    private IProducer<byte[], byte[]> CreateProducer()
    {
        var config = new ProducerConfig(Common())
        {
            LingerMs = 20,
            Acks = Acks.All,
            MessageTimeoutMs = (int)_options.EffectiveDeliveryTimeout.TotalMilliseconds,
            QueueBufferingMaxMessages = 100_000,
            // Heartbeats are superseded by the next one: no idempotence, so a broker outage fails fast instead of retrying in order.
            EnableIdempotence = false,
        };
        return new ProducerBuilder<byte[], byte[]>(config)
            .SetErrorHandler((_, error) =>
            {
                if (error.Code == ErrorCode.Local_AllBrokersDown) _failing = true;
            })
            .Build();
    }

    private void OnDelivered(DeliveryReport<byte[], byte[]> report)
    {
        if (report.Error.IsError)
        {
            Interlocked.Increment(ref _deliveryFailures);
            _failing = true;
        }
        else
        {
            Interlocked.Increment(ref _deliveredOk);
            _failing = false;
        }
    }

    /// <summary>Settings shared by producer, consumer and admin client: servers, security, pass-through.</summary>
    internal ClientConfig Common()
    {
        var config = new ClientConfig(new Dictionary<string, string>(_options.Settings)) { BootstrapServers = _options.BootstrapServers };
        if (_options.SecurityProtocol is { } protocol) config.Set("security.protocol", protocol);
        if (_options.SaslMechanism is { } mechanism) config.Set("sasl.mechanism", mechanism);
        if (_options.SaslUsername is { } user) config.Set("sasl.username", user);
        if (_options.SaslPassword is { } password) config.Set("sasl.password", password);
        if (_options.SslCaLocation is { } ca) config.Set("ssl.ca.location", ca);
        return config;
    }
}
