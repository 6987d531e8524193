using System.Threading.Channels;
using Konduit.Heartbeats;

namespace Konduit.InMemory;

/// <summary>
/// The reference <see cref="IHeartbeatChannel"/>: one process, partitions by task id, one consumer group whose members
/// split the partitions (a join or leave revokes and reassigns them all, like a Kafka rebalance). Consumers start at
/// the newest heartbeat; what is published to a partition nobody holds is dropped. For tests and single-process use;
/// the oracle the Kafka channel is compared with.
/// </summary>
public sealed class InMemoryHeartbeatChannel : IHeartbeatChannel
{
    private readonly Lock _gate = new();
    private readonly List<Member> _members = [];
    private readonly int _partitions;
    private volatile bool _failing;

    /// <summary>Creates a channel of <paramref name="partitions"/> partitions.</summary>
    public InMemoryHeartbeatChannel(int partitions = 4)
    {
        if (partitions is < 1 or > 1024) throw new ArgumentOutOfRangeException(nameof(partitions), partitions, "partitions must be 1–1024.");
        _partitions = partitions;
    }

    /// <summary>When true, publishing fails (an outage, for tests of the store fallback).</summary>
    public bool Failing
    {
        get => _failing;
        set => _failing = value;
    }

    /// <inheritdoc />
    public bool IsPublishing => !_failing;

    /// <inheritdoc />
    public bool TryPublish(LeaseHeartbeat heartbeat)
    {
        ArgumentNullException.ThrowIfNull(heartbeat);
        heartbeat.Validate();
        if (_failing) return false;
        var partition = PartitionOf(heartbeat.TaskId, _partitions);
        lock (_gate)
        {
            foreach (var member in _members)
            {
                if (member.Partitions.Contains(partition)) member.Events.Writer.TryWrite(new Event(heartbeat, partition, null, null));
            }
        }
        return true;
    }

    /// <inheritdoc />
    public async Task ConsumeAsync(IHeartbeatObserver observer, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(observer);
        var member = new Member();
        lock (_gate)
        {
            _members.Add(member);
            RebalanceLocked();
        }
        try
        {
            await foreach (var e in member.Events.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                if (e.Heartbeat is not null) observer.OnHeartbeat(e.Heartbeat, e.Partition);
                else if (e.Assigned is not null) observer.OnAssigned(e.Assigned);
                else if (e.Revoked is not null) observer.OnRevoked(e.Revoked);
            }
        }
        finally
        {
            lock (_gate)
            {
                _members.Remove(member);
                RebalanceLocked();
            }
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>The partition of a task: a stable hash of its id.</summary>
    internal static int PartitionOf(Guid taskId, int partitions) => (int)((uint)taskId.GetHashCode() % (uint)partitions);

    private void RebalanceLocked()
    {
        foreach (var member in _members)
        {
            if (member.Partitions.Count == 0) continue;
            member.Events.Writer.TryWrite(new Event(null, 0, null, [.. member.Partitions]));
            member.Partitions.Clear();
        }
        for (var p = 0; p < _partitions && _members.Count > 0; p++) _members[p % _members.Count].Partitions.Add(p);
        foreach (var member in _members)
        {
            if (member.Partitions.Count > 0) member.Events.Writer.TryWrite(new Event(null, 0, [.. member.Partitions], null));
        }
    }

    private sealed record Event(LeaseHeartbeat? Heartbeat, int Partition, int[]? Assigned, int[]? Revoked);

    private sealed class Member
    {
        public Channel<Event> Events { get; } = Channel.CreateUnbounded<Event>(new UnboundedChannelOptions { SingleReader = true });
        public HashSet<int> Partitions { get; } = [];
    }
}
