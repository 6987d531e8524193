using System.Text.RegularExpressions;
using Konduit.Cassandra.Cql;

namespace Konduit.Cassandra;

/// <summary>Settings of a <see cref="CassandraTaskEventLog"/> (<c>Konduit:CassandraEventLog</c> in configuration).</summary>
public sealed partial class CassandraTaskEventLogOptions
{
    /// <summary>The node to connect to, <c>host:port</c> (default <c>127.0.0.1:9042</c>). Ignored when a session is passed to the log.</summary>
    public string ContactPoint { get; set; } = "127.0.0.1:9042";

    /// <summary>User name for PasswordAuthenticator, if the cluster requires one.</summary>
    public string? Username { get; set; }

    /// <summary>Password for PasswordAuthenticator.</summary>
    public string? Password { get; set; }

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
    /// Width of a queue partition (default one hour): events of a queue are partitioned by (queue, time bucket).
    /// Part of the data model: never change it for existing tables. Whole minutes that divide a day.
    /// </summary>
    public TimeSpan BucketSize { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Consistency of appends (default LOCAL_QUORUM).</summary>
    public CqlConsistency WriteConsistency { get; set; } = CqlConsistency.LocalQuorum;

    /// <summary>Consistency of reads (default LOCAL_QUORUM: with LOCAL_QUORUM writes, reads see every acknowledged append).</summary>
    public CqlConsistency ReadConsistency { get; set; } = CqlConsistency.LocalQuorum;

    /// <summary>Client-side timeout of each request (default 5 s).</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(5);

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
        if (RequestTimeout <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(RequestTimeout), RequestTimeout, "The request timeout must be positive.");
    }

    // DDL cannot bind parameters, so the replication map is text placed into CREATE KEYSPACE: accept only a map
    // literal of quoted identifier keys and quoted-identifier or integer values (no quotes, semicolons or comments).
    [GeneratedRegex(@"^\s*\{\s*'[A-Za-z0-9_.-]+'\s*:\s*(?:'[A-Za-z0-9_.-]+'|[0-9]+)\s*(?:,\s*'[A-Za-z0-9_.-]+'\s*:\s*(?:'[A-Za-z0-9_.-]+'|[0-9]+)\s*)*\}\s*$")]
    private static partial Regex ReplicationMap();
}
