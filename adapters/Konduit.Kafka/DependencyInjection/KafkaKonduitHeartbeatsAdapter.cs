using Konduit.Hosting;
using Konduit.Kafka;
using Microsoft.Extensions.DependencyInjection;

// Lets "Konduit:Heartbeats": "Kafka" select this channel with no AddKafkaHeartbeats() call (see AddKonduit).
[assembly: KonduitComponent(KonduitComponentKind.HeartbeatsKey, KafkaKonduitBuilderExtensions.HeartbeatsName, typeof(KafkaKonduitHeartbeatsAdapter))]

namespace Konduit.Kafka;

/// <summary>Discovery entry point (see <see cref="KonduitComponentAttribute"/>).</summary>
internal sealed class KafkaKonduitHeartbeatsAdapter : IKonduitComponentAdapter
{
    public void Register(IKonduitBuilder builder) => builder.AddKafkaHeartbeats();
}
