using Konduit.Testing.Conformance;

namespace Konduit.Kafka.Tests;

// The heartbeat channel suite against the Kafka channel on the in-process mock cluster (or KONDUIT_TEST_KAFKA).
public sealed class KafkaHeartbeatChannelConformanceTests(KafkaFixture f) : HeartbeatChannelConformance<KafkaFixture>(f);
