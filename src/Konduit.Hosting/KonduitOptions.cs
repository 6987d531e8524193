namespace Konduit.Hosting;

/// <summary>
/// The <c>Konduit</c> configuration section: which store to use, per-queue worker settings and node-wide
/// settings. Bound by <c>AddKonduit(IConfiguration)</c> and validated when the host starts.
/// </summary>
/// <example>
/// <code>
/// { "Konduit": { "Store": "Postgres",
///                "Postgres": { "ConnectionString": "Host=127.0.0.1;Port=5432;..." },
///                "Queues": { "emails": { "Concurrency": 8, "LeaseSeconds": 30, "MaxAttempts": 10 } } } }
/// </code>
/// </example>
public sealed class KonduitOptions
{
    /// <summary>
    /// The name of the store to use (case-insensitive), e.g. <c>Postgres</c> or <c>InMemory</c>. Must name a
    /// registered store; the store's own settings live in the section of the same name (<c>Konduit:Postgres</c>).
    /// </summary>
    public string? Store { get; set; }

    /// <summary>
    /// The event log that records every transition the store accepts (issue 6), e.g. <c>Cassandra</c>, <c>Postgres</c>
    /// or <c>InMemory</c>; null (default) records nothing. Its settings live in <c>Konduit:&lt;EventLog&gt;EventLog</c>.
    /// </summary>
    public string? EventLog { get; set; }

    /// <summary>
    /// The heartbeat channel that renews workers' leases, e.g. <c>Kafka</c> once its adapter exists; null (default)
    /// renews through the store. Its settings live in <c>Konduit:&lt;Heartbeats&gt;Heartbeats</c> (ADR 008).
    /// </summary>
    public string? Heartbeats { get; set; }

    /// <summary>The event recorder's buffer settings (<c>Konduit:EventLogBuffer</c>), used when <see cref="EventLog"/> is set.</summary>
    public TaskEventRecorderOptions EventLogBuffer { get; set; } = new();

    /// <summary>
    /// How often this node runs the event log's upkeep (for the Postgres log: deleting expired events in batches).
    /// Default 5 min. Only used when <see cref="EventLog"/> is set and the log has upkeep to do.
    /// </summary>
    public TimeSpan EventLogMaintenanceInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How often this node runs the upkeep of selected components other than the event log (which has
    /// <see cref="EventLogMaintenanceInterval"/>), when they have any. Default 5 min.
    /// </summary>
    public TimeSpan MaintenanceInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Per-queue settings keyed by queue name. Queues with a handler but no entry use the defaults.</summary>
    public Dictionary<string, KonduitQueueOptions> Queues { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>How long shutdown waits for running handlers before canceling them. Default 25 s.</summary>
    public TimeSpan ShutdownGracePeriod { get; set; } = TimeSpan.FromSeconds(25);

    /// <summary>How often this node runs the sweeper (<see cref="ITaskStore.ReclaimExpiredAsync"/>). Default 5 s.</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How often this node reads the store's queue counts for the <c>konduit.queue.depth</c> and
    /// <c>konduit.queue.oldest_due_age</c> gauges (one <see cref="ITaskStore.GetStatsAsync"/> per interval). Default
    /// 30 s; null turns the gauges off (the counts cost a scan of the store's live tasks on some stores).
    /// </summary>
    public TimeSpan? QueueStatsInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// When set, the sweeper also deletes terminal tasks (succeeded, failed, canceled) that finished at least this
    /// long ago (<see cref="ITaskStore.ApplyRetentionAsync"/>); their idempotency keys become free. A store may keep a
    /// task up to its <see cref="StoreCapabilities.RetentionGranularity"/> longer (Postgres drops a day partition at a
    /// time). Null (default) keeps them until purged by hand. Runs on every node; stores make concurrent purges safe.
    /// </summary>
    public TimeSpan? PurgeFinishedAfter { get; set; }

    /// <summary>Optional worker id prefix recorded as lease owner. Default: machine name and process id.</summary>
    public string? WorkerId { get; set; }

    /// <summary>The settings for <paramref name="queue"/>: its entry in <see cref="Queues"/>, or defaults.</summary>
    public KonduitQueueOptions GetQueue(string queue) =>
        Queues.TryGetValue(queue, out var options) ? options : KonduitQueueOptions.Defaults;
}

/// <summary>Worker settings for one queue (<c>Konduit:Queues:&lt;name&gt;</c>).</summary>
public sealed class KonduitQueueOptions
{
    internal static readonly KonduitQueueOptions Defaults = new();

    /// <summary>Most handlers running at once on this node. Default 8; must be at least 1.</summary>
    public int Concurrency { get; set; } = 8;

    /// <summary>
    /// Most tasks leased in one call (capped by free concurrency). Default 100; 1–1000. At 1 (one task per fetch) a
    /// handler's success is recorded with <see cref="ITaskStore.CompleteAndLeaseAsync"/>, which leases the slot's next
    /// task in the same store call, and that task runs on the slot without waiting for the lease loop; once the worker
    /// stops, completions go alone.
    /// </summary>
    public int MaxBatchSize { get; set; } = 100;

    /// <summary>
    /// Most lease calls this node has in flight for the queue at once. Null (default): one per
    /// <see cref="MaxBatchSize"/> of <see cref="Concurrency"/>, at most 4, so a queue leasing one task per call
    /// (MaxBatchSize 1) with 24 handlers is not held to one lease round trip at a time, while a batched queue keeps a
    /// single call. 1–16 when set.
    /// </summary>
    public int? LeaseCallsInFlight { get; set; }

    /// <summary>The lease calls in flight this queue's worker runs: <see cref="LeaseCallsInFlight"/>, or its default.</summary>
    internal int EffectiveLeaseCallsInFlight =>
        LeaseCallsInFlight ?? Math.Clamp((Concurrency + Math.Max(1, MaxBatchSize) - 1) / Math.Max(1, MaxBatchSize), 1, 4);

    /// <summary>Lease length in seconds (fractions allowed). Default 30; positive, at most one day.</summary>
    public double LeaseSeconds { get; set; } = 30;

    /// <summary>Heartbeat interval as a fraction of the lease (used unless <see cref="HeartbeatInterval"/> is set). Default 1/3; between 0 and 1 (exclusive).</summary>
    public double HeartbeatFraction { get; set; } = 1.0 / 3.0;

    /// <summary>Explicit heartbeat interval; must be positive and shorter than the lease.</summary>
    public TimeSpan? HeartbeatInterval { get; set; }

    /// <summary>Max attempts given to tasks enqueued through <see cref="IKonduitClient"/>'s typed helpers without an explicit value. Null: the contract default (10).</summary>
    public int? MaxAttempts { get; set; }

    /// <summary>The queue's retry policy, passed to the store on every failure. Null: the store's default.</summary>
    public KonduitRetryOptions? Retry { get; set; }

    /// <summary>
    /// Longest a handler may run (null, the default: no limit). At the timeout the handler's token is canceled and the
    /// attempt fails at once with an <see cref="ExecutionTimeoutException"/> (the retry policy applies; the lease is no
    /// longer renewed), so a hung handler cannot hold its task forever. A handler that ignores its token keeps its
    /// concurrency slot until it returns. Must be positive when set.
    /// </summary>
    public TimeSpan? ExecutionTimeout { get; set; }

    /// <summary>First wait after an empty lease. Default 50 ms; positive.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Longest wait between polls of an empty queue (the wait doubles up to this). Default 2 s; ≥ <see cref="PollInterval"/>.</summary>
    public TimeSpan MaxPollInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The lease duration.</summary>
    public TimeSpan Lease => TimeSpan.FromSeconds(LeaseSeconds);

    /// <summary>The effective heartbeat interval.</summary>
    public TimeSpan EffectiveHeartbeatInterval => HeartbeatInterval ?? TimeSpan.FromSeconds(LeaseSeconds * HeartbeatFraction);
}

/// <summary>A queue's retry policy in configuration (<c>Konduit:Queues:&lt;name&gt;:Retry</c>); see <see cref="RetryPolicy"/>.</summary>
public sealed class KonduitRetryOptions
{
    /// <summary>Delay after the first failed attempt. Default 1 s.</summary>
    public TimeSpan InitialDelay { get; set; } = RetryPolicy.Default.InitialDelay;

    /// <summary>Upper bound on any delay. Default 10 minutes.</summary>
    public TimeSpan MaxDelay { get; set; } = RetryPolicy.Default.MaxDelay;

    /// <summary>Growth factor per attempt. Default 2.</summary>
    public double Multiplier { get; set; } = RetryPolicy.Default.Multiplier;

    /// <summary>Fraction (0–1) of the delay randomly taken off. Default 0.2.</summary>
    public double Jitter { get; set; } = RetryPolicy.Default.Jitter;

    /// <summary>The equivalent <see cref="RetryPolicy"/>.</summary>
    public RetryPolicy ToPolicy() => new()
    {
        InitialDelay = InitialDelay,
        MaxDelay = MaxDelay,
        Multiplier = Multiplier,
        Jitter = Jitter,
    };
}
