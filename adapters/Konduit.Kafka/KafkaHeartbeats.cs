using Konduit.Heartbeats;

namespace Konduit.Kafka;

/// <summary>
/// What <c>"Heartbeats": "Kafka"</c> gives the runtime: the lease renewer on the Kafka channel, and this node's lease
/// monitor (started by the component's start-up step when <see cref="KafkaHeartbeatOptions.RunMonitor"/>).
/// </summary>
internal sealed class KafkaHeartbeats : ILeaseRenewer, IAsyncDisposable
{
    private readonly ITaskStore _store;
    private readonly KafkaHeartbeatOptions _options;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private LeaseMonitor? _monitor;

    public KafkaHeartbeats(ITaskStore store, KafkaHeartbeatOptions options, TimeProvider time)
    {
        _store = store;
        _options = options;
        _time = time;
        Channel = new KafkaHeartbeatChannel(options);
        Renewer = new HeartbeatChannelLeaseRenewer(store, Channel, options.HeartbeatInterval, time);
    }

    public KafkaHeartbeatChannel Channel { get; }

    public HeartbeatChannelLeaseRenewer Renewer { get; }

    public LeaseMonitor? Monitor
    {
        get
        {
            lock (_gate) return _monitor;
        }
    }

    public void Track(TrackedLease lease) => Renewer.Track(lease);

    public void Release(TrackedLease lease) => Renewer.Release(lease);

    public void Start()
    {
        Channel.Connect();
        if (!_options.RunMonitor) return;
        lock (_gate)
        {
            if (_monitor is not null) return;
            _monitor = new LeaseMonitor(Channel, _store, new LeaseMonitorOptions { LivenessTimeout = _options.LivenessTimeout }, _time);
            _monitor.Start();
        }
    }

    public async ValueTask DisposeAsync()
    {
        LeaseMonitor? monitor;
        lock (_gate) monitor = _monitor;
        if (monitor is not null) await monitor.DisposeAsync().ConfigureAwait(false);
        await Renewer.DisposeAsync().ConfigureAwait(false);
        await Channel.DisposeAsync().ConfigureAwait(false);
    }
}
