using Konduit.Heartbeats;
using Konduit.InMemory;
using Konduit.Testing.Conformance;

namespace Konduit.Tests;

/// <summary>The reference channel: in this process, four partitions.</summary>
public sealed class InMemoryHeartbeatChannelFixture : HeartbeatChannelFixture
{
    public override ValueTask<IHeartbeatChannel> CreateChannelAsync() => ValueTask.FromResult<IHeartbeatChannel>(new InMemoryHeartbeatChannel());
}

public sealed class InMemoryHeartbeatChannelConformanceTests(InMemoryHeartbeatChannelFixture f) : HeartbeatChannelConformance<InMemoryHeartbeatChannelFixture>(f);
