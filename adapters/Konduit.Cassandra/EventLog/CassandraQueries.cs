namespace Konduit.Cassandra.EventLog;

/// <summary>
/// Every CQL statement of the event log, built once per keyspace (docs/adr/005). The keyspace, validated as a plain
/// identifier, and the TTL (an integer from validated options) are the only text interpolated; values are bound.
/// </summary>
internal sealed class CassandraQueries
{
    private const string Columns = "event_id, task_id, queue, tenant, kind, attempt, lease_token, worker, error";

    public CassandraQueries(string keyspace, string replication, int timeToLiveSeconds)
    {
        var k = keyspace;
        // Table options: default_time_to_live makes every row expire without a delete (no tombstones written by us).
        var with = $"WITH CLUSTERING ORDER BY (event_id ASC) AND default_time_to_live = {timeToLiveSeconds}";
        CreateKeyspace = $"CREATE KEYSPACE IF NOT EXISTS {k} WITH replication = {replication}";
        CreateByTask = $"""
            CREATE TABLE IF NOT EXISTS {k}.task_events_by_task (
                task_id uuid, event_id timeuuid, queue text, tenant text, kind int, attempt int, lease_token bigint, worker text, error text,
                PRIMARY KEY ((task_id), event_id)
            ) {with}
            """;
        CreateByQueue = $"""
            CREATE TABLE IF NOT EXISTS {k}.task_events_by_queue (
                queue text, bucket timestamp, event_id timeuuid, task_id uuid, tenant text, kind int, attempt int, lease_token bigint, worker text, error text,
                PRIMARY KEY ((queue, bucket), event_id)
            ) {with}
            """;
        InsertByTask = $"INSERT INTO {k}.task_events_by_task ({Columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
        InsertByQueue = $"INSERT INTO {k}.task_events_by_queue (bucket, {Columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
        History = $"SELECT {Columns} FROM {k}.task_events_by_task WHERE task_id = ?";
        // Two shapes: CQL allows one lower bound per clustering column, so "from" and "after the cursor" cannot be combined.
        WindowFrom = $"SELECT {Columns} FROM {k}.task_events_by_queue WHERE queue = ? AND bucket = ? AND event_id >= minTimeuuid(?) AND event_id < minTimeuuid(?) LIMIT ?";
        WindowAfter = $"SELECT {Columns} FROM {k}.task_events_by_queue WHERE queue = ? AND bucket = ? AND event_id > ? AND event_id < minTimeuuid(?) LIMIT ?";
    }

    public string CreateKeyspace { get; }
    public string CreateByTask { get; }
    public string CreateByQueue { get; }
    public string InsertByTask { get; }
    public string InsertByQueue { get; }
    public string History { get; }
    public string WindowFrom { get; }
    public string WindowAfter { get; }
}
