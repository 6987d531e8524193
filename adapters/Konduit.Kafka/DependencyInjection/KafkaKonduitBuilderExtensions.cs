using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Konduit;
using Konduit.Hosting;
using Konduit.Kafka;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the Kafka heartbeat channel with Konduit.</summary>
public static class KafkaKonduitBuilderExtensions
{
    /// <summary>The channel name selected by <c>"Konduit:Heartbeats": "Kafka"</c>.</summary>
    public const string HeartbeatsName = "Kafka";

    /// <summary>
    /// Registers the heartbeat channel <c>Kafka</c>, configured by <c>Konduit:KafkaHeartbeats</c>
    /// (<see cref="KafkaHeartbeatOptions"/>): workers publish their leases' heartbeats to the topic instead of writing
    /// the store, and (with <c>RunMonitor</c>) this node runs a lease monitor in the consumer group. Set the queues'
    /// lease length to the store-lease ceiling (about ten liveness timeouts). Not needed in code when the application
    /// references this package and configures <c>"Heartbeats": "Kafka"</c>. Idempotent.
    /// </summary>
    public static IKonduitBuilder AddKafkaHeartbeats(this IKonduitBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddComponent(KonduitComponentKind.Heartbeats, HeartbeatsName, new KonduitComponentDefinition<ILeaseRenewer, KafkaHeartbeatOptions>
        {
            Factory = static (services, options) =>
                new KafkaHeartbeats(services.GetRequiredService<ITaskStore>(), options, services.GetService<TimeProvider>() ?? TimeProvider.System),
            Validate = static (_, options, path) => KonduitValidation.Check(path, options.Validate),
            StartAsync = static async (context, renewer, options, cancellationToken) =>
            {
                if (options.ProvisionTopic) await ProvisionAsync(context, options, cancellationToken).ConfigureAwait(false);
                ((KafkaHeartbeats)renewer).Start();
            },
        });
    }

    // Not verified on librdkafka's mock cluster (CreateTopics hangs there, issue 12): the tests create topics through the mock API.
    private static async Task ProvisionAsync(KonduitComponentContext context, KafkaHeartbeatOptions options, CancellationToken cancellationToken)
    {
        using var admin = new AdminClientBuilder(new KafkaHeartbeatChannel(options).Common()).Build();
        try
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = options.Topic, NumPartitions = options.TopicPartitions, ReplicationFactor = options.TopicReplicationFactor }])
                .WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (CreateTopicsException ex) when (ex.Results.All(r => r.Error.Code is ErrorCode.NoError or ErrorCode.TopicAlreadyExists))
        {
        }
        catch (KafkaException ex)
        {
            throw new KonduitStartupException(context.Key("ProvisionTopic"), $"cannot create topic '{options.Topic}': {ex.Message}", ex);
        }
    }
}
