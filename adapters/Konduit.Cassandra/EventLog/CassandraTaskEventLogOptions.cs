using System.Text.RegularExpressions;

namespace Konduit.Cassandra;

/// <summary>Settings of a <see cref="CassandraTaskEventLog"/> (<c>Konduit:CassandraEventLog</c> in configuration).</summary>
public sealed partial class CassandraTaskEventLogOptions
{
    /// <summary>
    /// Nodes to connect to first, <c>host:port</c>, comma-separated (default <c>127.0.0.1:9042</c>). Any one is enough:
    /// the log learns the rest of the ring from <c>system.peers</c> (peers are assumed to use the same port) and spreads
    /// requests over the nodes that are up.
    /// </summary>
    public string ContactPoints { get; set; } = "127.0.0.1:9042";

    /// <summary>User name for PasswordAuthenticator, if the cluster requires one.</summary>
    public string? Username { get; set; }

    /// <summary>Password for PasswordAuthenticator.</summary>
    public string? Password { get; set; }

    /// <summary>Speak TLS to every node (the server's <c>client_encryption_options</c>). Default false.</summary>
    public bool UseTls { get; set; }

    /// <summary>
    /// With <see cref="UseTls"/>: a PEM file of the certificate authority that signs the nodes' certificates, trusted
    /// for this log's connections only. Default null: the system's trust store.
    /// </summary>
    public string? TlsCertificateAuthorityPath { get; set; }

    /// <summary>
    /// With <see cref="UseTls"/>: the name every node's certificate must carry. Default null: the address the log
    /// connects to (a contact point, or a peer's address from <c>system.peers</c>).
    /// </summary>
    public string? TlsServerName { get; set; }

    /// <summary>The keyspace holding the two event tables (default <c>konduit</c>): a plain identifier, <c>[A-Za-z0-9_]{1,48}</c>.</summary>
    public string Keyspace { get; set; } = "konduit";

    /// <summary>
    /// The replication map <see cref="CassandraTaskEventLog.MigrateAsync"/> uses when it creates the keyspace (it never
    /// alters an existing one). Default: <c>{'class': 'SimpleStrategy', 'replication_factor': 1}</c>; use
    /// NetworkTopologyStrategy with RF 3 per data centre in production.
    /// </summary>
    public string Replication { get; set; } = "{'class': 'SimpleStrategy', 'replication_factor': 1}";

    /// <summary>
    /// The tables' <c>default_time_to_live</c>, set by <see cref="CassandraTaskEventLog.MigrateAsync"/> when it creates them.
    /// Default 30 days; null keeps events forever. Whole seconds, at most 20 years (Cassandra's limit).
    /// </summary>
    public TimeSpan? TimeToLive { get; set; } = TimeSpan.FromDays(30);

    /// <summary>
    /// Time width of a queue partition (default 5 minutes): a queue's events are partitioned by (queue, time bucket,
    /// shard). Part of the data model: never change it for existing tables. Whole minutes that divide a day.
    /// Sizing rule (docs/adr/005): partition bytes ≈ events/s of the queue × bucket seconds × ~320 B ÷ <see cref="ShardCount"/>;
    /// keep it under ~100 MB. The defaults hold ~60 MB at 10,000 events/s on one queue.
    /// </summary>
    public TimeSpan BucketSize { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Partitions per queue and bucket (default 16, 1–256): each event goes to the shard its id picks, so one busy
    /// queue spreads over 16 replica sets; a window read merges the shards in order. Part of the data model: it may
    /// be raised later (readers then read the extra, empty shards of old buckets) but never lowered.
    /// </summary>
    public int ShardCount { get; set; } = 16;

    /// <summary>
    /// Largest batch sent, as the server sizes it (cell names, values, timestamps; default 4 KB): under Cassandra's
    /// 5 KB <c>batch_size_warn_threshold_in_kb</c>, far under the 50 KB fail threshold that 2.2–3.5 also apply to
    /// single-partition batches. 1–50 KB.
    /// </summary>
    public int MaxBatchBytes { get; set; } = 4 * 1024;

    /// <summary>Consistency of appends (default LOCAL_QUORUM).</summary>
    public CassandraConsistency WriteConsistency { get; set; } = CassandraConsistency.LocalQuorum;

    /// <summary>Consistency of reads (default LOCAL_QUORUM: with LOCAL_QUORUM writes, reads see every acknowledged append).</summary>
    public CassandraConsistency ReadConsistency { get; set; } = CassandraConsistency.LocalQuorum;

    /// <summary>
    /// Client-side timeout of each request (default 12 s): longer than the server's own (request_timeout_in_ms 10 s,
    /// read 5 s, write 2 s by default), so the server's timeout normally answers first. Either way the caller gets a
    /// <see cref="CassandraTimeoutException"/>.
    /// </summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(12);

    /// <summary>Hosting only: create the keyspace and tables when the host starts (in the background, retried). Default false.</summary>
    public bool MigrateOnStartup { get; set; }

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentException">A setting is invalid (the parameter name is the property).</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Keyspace) || Keyspace.Length > 48 || !Keyspace.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
            throw new ArgumentException($"Keyspace '{Keyspace}' is not a plain identifier ([A-Za-z0-9_], 1–48 characters).", nameof(Keyspace));
        if (string.IsNullOrWhiteSpace(Replication) || !ReplicationMap().IsMatch(Replication))
            throw new ArgumentException("Replication must be a CQL map literal such as {'class': 'SimpleStrategy', 'replication_factor': 1}.", nameof(Replication));
        if (TimeToLive is { } ttl && (ttl < TimeSpan.FromSeconds(1) || ttl > TimeSpan.FromDays(365 * 20) || ttl.Ticks % TimeSpan.TicksPerSecond != 0))
            throw new ArgumentOutOfRangeException(nameof(TimeToLive), ttl, "The time to live must be whole seconds between 1 s and 20 years.");
        if (BucketSize < TimeSpan.FromMinutes(1) || BucketSize.Ticks % TimeSpan.TicksPerMinute != 0 || TimeSpan.TicksPerDay % BucketSize.Ticks != 0)
            throw new ArgumentOutOfRangeException(nameof(BucketSize), BucketSize, "The bucket size must be whole minutes that divide a day (e.g. 1 h).");
        if (string.IsNullOrWhiteSpace(ContactPoints) || ContactPoints.Split(',').Any(p => string.IsNullOrWhiteSpace(p)))
            throw new ArgumentException("ContactPoints must be host[:port] entries separated by commas.", nameof(ContactPoints));
        if (ShardCount is < 1 or > 256)
            throw new ArgumentOutOfRangeException(nameof(ShardCount), ShardCount, "The shard count must be 1–256.");
        if (MaxBatchBytes is < 1024 or > 50 * 1024)
            throw new ArgumentOutOfRangeException(nameof(MaxBatchBytes), MaxBatchBytes, "The batch size limit must be 1–50 KB.");
        if (!Enum.IsDefined(WriteConsistency))
            throw new ArgumentOutOfRangeException(nameof(WriteConsistency), WriteConsistency, "Not a consistency level.");
        if (!Enum.IsDefined(ReadConsistency) || ReadConsistency == CassandraConsistency.Any)
            throw new ArgumentOutOfRangeException(nameof(ReadConsistency), ReadConsistency, "Not a read consistency level.");
        if (RequestTimeout <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(RequestTimeout), RequestTimeout, "The request timeout must be positive.");
        if (!UseTls && (TlsCertificateAuthorityPath is not null || TlsServerName is not null))
            throw new ArgumentException("TlsCertificateAuthorityPath or TlsServerName is set but UseTls is false.", nameof(UseTls));
        if (TlsCertificateAuthorityPath is { } ca && !File.Exists(ca))
            throw new ArgumentException($"TlsCertificateAuthorityPath '{ca}' does not exist.", nameof(TlsCertificateAuthorityPath));
    }

    // DDL cannot bind parameters, so the replication map is text placed into CREATE KEYSPACE: accept only a map
    // literal of quoted identifier keys and quoted-identifier or integer values (no quotes, semicolons or comments).
    [GeneratedRegex(@"^\s*\{\s*'[A-Za-z0-9_.-]+'\s*:\s*(?:'[A-Za-z0-9_.-]+'|[0-9]+)\s*(?:,\s*'[A-Za-z0-9_.-]+'\s*:\s*(?:'[A-Za-z0-9_.-]+'|[0-9]+)\s*)*\}\s*$")]
    private static partial Regex ReplicationMap();
}
