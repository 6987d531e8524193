using System.Globalization;

namespace Konduit.Cassandra.EventLog;

/// <summary>
/// Every CQL statement of the event log, built once per keyspace (docs/adr/005). The keyspace (a validated plain
/// identifier) and numbers from validated options are the only text interpolated; values are always bound.
/// </summary>
internal sealed class CassandraQueries
{
    /// <summary>Columns left out of an INSERT when the event has no value for them, indexed by bit of the mask.</summary>
    public static readonly string[] OptionalColumns = ["tenant", "worker", "error"];

    // Read back by position in EventRows.Read: keep the order.
    private const string Columns = "event_id, task_id, queue, tenant, kind, attempt, lease_token, worker, error";

    private readonly string _k;
    private readonly string[] _insertByTask = new string[1 << 3];
    private readonly string[] _insertByQueue = new string[1 << 3];

    public CassandraQueries(string keyspace, string replication)
    {
        // The only text spliced into CQL: the keyspace (validated as a plain identifier by the options) and the fixed
        // column names above; every value is a bound marker.
        _k = keyspace;
        CreateKeyspace = $"CREATE KEYSPACE IF NOT EXISTS {_k} WITH replication = {replication}";
        for (var mask = 0; mask < _insertByTask.Length; mask++)
        {
            // A NULL bound on protocol v3 writes a cell tombstone (v3 has no UNSET): an absent value is an absent column
            // (issue 14: 3,000 tombstoned cells per 1,000 tenant-less events before).
            var optional = OptionalColumns.Where((_, bit) => (mask & (1 << bit)) != 0).ToArray();
            var names = string.Concat(optional.Select(c => ", " + c));
            var markers = string.Concat(optional.Select(_ => ", ?"));
            _insertByTask[mask] = $"INSERT INTO {_k}.task_events_by_task (task_id, event_id, queue, kind, attempt, lease_token{names}) VALUES (?, ?, ?, ?, ?, ?{markers})";
            _insertByQueue[mask] = $"INSERT INTO {_k}.task_events_by_queue (queue, bucket, shard, event_id, task_id, kind, attempt, lease_token{names}) VALUES (?, ?, ?, ?, ?, ?, ?, ?{markers})";
        }
        History = $"SELECT {Columns} FROM {_k}.task_events_by_task WHERE task_id = ?";
        // Bounds are timeuuids made by the client (TimeUuidMapping.MinAt): CQL allows one lower bound per clustering
        // column, so "from" (inclusive) and "after the cursor" (exclusive) are two statements.
        WindowFrom = $"SELECT {Columns} FROM {_k}.task_events_by_queue WHERE queue = ? AND bucket = ? AND shard = ? AND event_id >= ? AND event_id < ? LIMIT ?";
        WindowAfter = $"SELECT {Columns} FROM {_k}.task_events_by_queue WHERE queue = ? AND bucket = ? AND shard = ? AND event_id > ? AND event_id < ? LIMIT ?";
    }

    /// <summary>The server's version, to pick table options it knows.</summary>
    public const string ReleaseVersion = "SELECT release_version FROM system.local";

    /// <summary>Schema versions as this node sees them: agreement means every node can prepare the new tables.</summary>
    public const string LocalSchemaVersion = "SELECT schema_version FROM system.local";

    /// <summary>The peers' schema versions as this node learned them by gossip.</summary>
    public const string PeerSchemaVersions = "SELECT peer, schema_version FROM system.peers";

    public string CreateKeyspace { get; }

    public string History { get; }

    public string WindowFrom { get; }

    public string WindowAfter { get; }

    /// <summary>The by-task INSERT writing the optional columns set in <paramref name="mask"/> (bit i = <see cref="OptionalColumns"/>[i]).</summary>
    public string InsertByTask(int mask) => _insertByTask[mask];

    /// <summary>The by-queue INSERT writing the optional columns set in <paramref name="mask"/>.</summary>
    public string InsertByQueue(int mask) => _insertByQueue[mask];

    /// <summary>Every statement the log prepares (MigrateAsync prepares them all, so a wrong layout fails there).</summary>
    public IEnumerable<string> Prepared => _insertByTask.Concat(_insertByQueue).Append(History).Append(WindowFrom).Append(WindowAfter);

    /// <summary>The by-task table: one partition per task.</summary>
    public string CreateByTask(TableOptions options) => $"""
        CREATE TABLE IF NOT EXISTS {_k}.task_events_by_task (
            task_id uuid, event_id timeuuid, queue text, tenant text, kind int, attempt int, lease_token bigint, worker text, error text,
            PRIMARY KEY ((task_id), event_id)
        ) {options.With}
        """;

    /// <summary>The by-queue table: one partition per (queue, time bucket, shard) (issue 14: bounded partitions, spread over replicas).</summary>
    public string CreateByQueue(TableOptions options) => $"""
        CREATE TABLE IF NOT EXISTS {_k}.task_events_by_queue (
            queue text, bucket timestamp, shard int, event_id timeuuid, task_id uuid, tenant text, kind int, attempt int, lease_token bigint, worker text, error text,
            PRIMARY KEY ((queue, bucket, shard), event_id)
        ) {options.With}
        """;
}

/// <summary>
/// Table options for a server version (docs/adr/005): a compaction strategy that drops whole expired SSTables where the
/// server has one (DateTieredCompactionStrategy from 2.1.1, TimeWindowCompactionStrategy from 3.0.8 and 3.8), and a
/// gc_grace_seconds as long as the default hint window: the tables never delete, so grace only has to let hints land.
/// </summary>
internal sealed record TableOptions(string Compaction, int TimeToLiveSeconds, int GcGraceSeconds)
{
    /// <summary>Cassandra's default max_hint_window_in_ms (3 h).</summary>
    public const int DefaultGcGraceSeconds = 3 * 3600;

    public string With => string.Create(CultureInfo.InvariantCulture,
        $"WITH CLUSTERING ORDER BY (event_id ASC) AND default_time_to_live = {TimeToLiveSeconds} AND gc_grace_seconds = {GcGraceSeconds} AND compaction = {Compaction}");

    /// <summary>The strategy's class name as the server reports it, for the tests and the ADR.</summary>
    public string StrategyName => Compaction.Split('\'')[3];

    public static TableOptions For(Version server, int? timeToLiveSeconds, int bucketSeconds)
    {
        var ttl = timeToLiveSeconds ?? 0;
        if (timeToLiveSeconds is null)
            return new TableOptions("{'class': 'SizeTieredCompactionStrategy'}", ttl, DefaultGcGraceSeconds);
        if (HasTimeWindow(server))
        {
            // About 24–30 windows over the time to live, never narrower than a bucket (the usual TWCS guidance).
            var minutes = Math.Max(bucketSeconds / 60, (int)Math.Ceiling(ttl / 24.0 / 60));
            var (unit, size) = minutes % 60 == 0 ? ("HOURS", minutes / 60) : ("MINUTES", minutes);
            return new TableOptions(string.Create(CultureInfo.InvariantCulture,
                $"{{'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': '{unit}', 'compaction_window_size': '{size}'}}"), ttl, DefaultGcGraceSeconds);
        }
        if (server >= new Version(2, 1, 1))
        {
            // SSTables older than the time to live hold only expired data: stop compacting them (they drop whole).
            var maxAgeDays = Math.Max(1, (int)Math.Ceiling(ttl / 86400.0));
            return new TableOptions(string.Create(CultureInfo.InvariantCulture,
                $"{{'class': 'DateTieredCompactionStrategy', 'base_time_seconds': '{bucketSeconds}', 'max_sstable_age_days': '{maxAgeDays}'}}"), ttl, DefaultGcGraceSeconds);
        }
        // 2.1.0 has neither: size-tiered, with single-SSTable tombstone compactions allowed early and unchecked.
        var interval = Math.Max(3600, bucketSeconds);
        return new TableOptions(string.Create(CultureInfo.InvariantCulture,
            $"{{'class': 'SizeTieredCompactionStrategy', 'unchecked_tombstone_compaction': 'true', 'tombstone_compaction_interval': '{interval}'}}"), ttl, DefaultGcGraceSeconds);
    }

    private static bool HasTimeWindow(Version v) =>
        v.Major >= 4 || (v.Major == 3 && (v.Minor >= 8 || (v.Minor == 0 && v.Build >= 8)));

    /// <summary>Parses a release_version such as "2.1.0", "3.11.4" or "4.0-beta1".</summary>
    public static Version ParseRelease(string release)
    {
        var digits = new string(release.TakeWhile(c => char.IsAsciiDigit(c) || c == '.').ToArray()).Trim('.');
        var parts = digits.Split('.', StringSplitOptions.RemoveEmptyEntries).Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToList();
        while (parts.Count < 3) parts.Add(0);
        return new Version(parts[0], parts[1], parts[2]);
    }
}
