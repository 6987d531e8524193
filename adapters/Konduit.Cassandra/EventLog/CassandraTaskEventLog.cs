using Konduit.Cassandra.Cql;
using Konduit.Cassandra.EventLog;

namespace Konduit.Cassandra;

/// <summary>
/// An <see cref="ITaskEventLog"/> on Apache Cassandra through Konduit's own CQL client (docs/adr/005): a table by
/// task (partition = task id) and a table by queue and time bucket (partition = queue + hour), both clustered by a
/// timeuuid derived from the event id, expiring by <c>default_time_to_live</c>.
/// </summary>
/// <remarks>
/// <para>Tables are created by <see cref="MigrateAsync"/>, never implicitly. Appends are upserts (no
/// read-before-write, no lightweight transactions, no deletes), grouped into one UNLOGGED batch per partition and
/// sent concurrently; a re-sent event rewrites the same row. Every statement is prepared and carries the
/// configured consistency level.</para>
/// <para>The log connects lazily: constructing it never touches the server.</para>
/// </remarks>
public sealed class CassandraTaskEventLog : ITaskEventLog
{
    private readonly CqlSession _session;
    private readonly bool _ownsSession;
    private readonly CassandraQueries _cql;
    private readonly long _bucketMillis;
    private readonly CqlQueryOptions _write;
    private readonly CqlQueryOptions _read;
    private readonly TimeSpan _requestTimeout;

    /// <summary>Creates a log. Nothing is sent to the server until the first operation.</summary>
    /// <param name="options">Settings; validated here.</param>
    /// <param name="session">A session to share (not disposed by the log); when null the log opens its own to <see cref="CassandraTaskEventLogOptions.ContactPoint"/>.</param>
    public CassandraTaskEventLog(CassandraTaskEventLogOptions options, CqlSession? session = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (session is null)
        {
            var sessionOptions = CqlSessionOptions.FromContactPoint(options.ContactPoint);
            sessionOptions.Username = options.Username;
            sessionOptions.Password = options.Password;
            sessionOptions.RequestTimeout = options.RequestTimeout;
            sessionOptions.DefaultConsistency = options.WriteConsistency;
            session = new CqlSession(sessionOptions);
            _ownsSession = true;
        }
        _session = session;
        _cql = new CassandraQueries(options.Keyspace, options.Replication, (int)(options.TimeToLive?.TotalSeconds ?? 0));
        _bucketMillis = (long)options.BucketSize.TotalMilliseconds;
        _requestTimeout = options.RequestTimeout;
        _write = new CqlQueryOptions { Consistency = options.WriteConsistency, Timeout = options.RequestTimeout };
        _read = new CqlQueryOptions { Consistency = options.ReadConsistency, Timeout = options.RequestTimeout, PageSize = 1000 };
    }

    /// <inheritdoc />
    public string Name => "cassandra";

    /// <inheritdoc />
    public TaskEventLogCapabilities Capabilities { get; } = new() { Expiry = true };

    /// <summary>
    /// Creates the keyspace (with <see cref="CassandraTaskEventLogOptions.Replication"/>) and the two tables (with the
    /// configured time to live) when missing. Idempotent; it never alters existing tables. Schema changes wait for
    /// the coordinator, so run it once at deployment or start-up rather than from many nodes at once.
    /// </summary>
    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        // DDL is not prepared, and gets a longer timeout: schema changes on a busy cluster take seconds.
        var ddl = new CqlQueryOptions { Prepare = false, Consistency = CqlConsistency.One, Timeout = _requestTimeout * 6 };
        foreach (var statement in new[] { _cql.CreateKeyspace, _cql.CreateByTask, _cql.CreateByQueue })
            await _session.ExecuteAsync(statement, null, ddl, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task AppendAsync(IReadOnlyList<TaskEvent> events, CancellationToken cancellationToken = default)
    {
        TaskEventValidation.ValidateAppend(events);
        if (events.Count == 0) return;
        // One write per partition: an UNLOGGED batch only when it stays within one partition (a multi-partition
        // unlogged batch just moves coordination work to one node). Duplicates within the call are sent once.
        var unique = events.DistinctBy(e => e.EventId).ToList();
        var writes = new List<Task>();
        foreach (var group in unique.GroupBy(e => e.TaskId))
            writes.Add(WriteAsync(_cql.InsertByTask, group.Select(ByTaskValues).ToList(), cancellationToken));
        foreach (var group in unique.GroupBy(e => (e.Queue, Bucket: BucketOf(TaskEventId.GetMillis(e.EventId)))))
            writes.Add(WriteAsync(_cql.InsertByQueue, group.Select(e => ByQueueValues(e, group.Key.Bucket)).ToList(), cancellationToken));
        await Task.WhenAll(writes).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<TaskEvent>> ReadTaskHistoryAsync(Guid taskId, CancellationToken cancellationToken = default)
    {
        TaskEventValidation.ValidateTaskId(taskId);
        var events = new List<TaskEvent>();
        await foreach (var row in _session.QueryAsync(_cql.History, [taskId], _read, cancellationToken).ConfigureAwait(false))
            events.Add(ReadEvent(row));
        return events;
    }

    /// <inheritdoc />
    public async Task<TaskEventPage> ReadQueueEventsAsync(string queue, DateTimeOffset from, DateTimeOffset to, TaskEventPageRequest? page = null, CancellationToken cancellationToken = default)
    {
        page = TaskEventValidation.ValidateQueueRead(queue, from, to, page);
        var fromMillis = from.ToUnixTimeMilliseconds();
        var toMillis = to.ToUnixTimeMilliseconds();
        // Start at the cursor's bucket when the cursor lies inside the window; earlier buckets are done.
        Guid? after = page.After is { } cursor && TaskEventId.GetMillis(cursor) >= fromMillis ? cursor : null;
        var startMillis = after is { } a ? TaskEventId.GetMillis(a) : fromMillis;
        var wanted = page.Limit + 1;
        var events = new List<TaskEvent>(Math.Min(wanted, 1024));
        // Buckets are walked in time order, each read only as far as the page still needs.
        for (var bucket = BucketOf(startMillis); bucket < toMillis && events.Count < wanted; bucket += _bucketMillis)
        {
            var upper = DateTimeOffset.FromUnixTimeMilliseconds(toMillis);
            var bucketTime = DateTimeOffset.FromUnixTimeMilliseconds(bucket);
            var remaining = wanted - events.Count;
            IAsyncEnumerable<CqlRow> rows = after is { } afterId && BucketOf(TaskEventId.GetMillis(afterId)) == bucket
                ? _session.QueryAsync(_cql.WindowAfter, [queue, bucketTime, TimeUuidMapping.ToTimeUuid(afterId), upper, remaining], _read, cancellationToken)
                : _session.QueryAsync(_cql.WindowFrom, [queue, bucketTime, DateTimeOffset.FromUnixTimeMilliseconds(fromMillis), upper, remaining], _read, cancellationToken);
            await foreach (var row in rows.ConfigureAwait(false))
                events.Add(ReadEvent(row));
        }
        if (events.Count <= page.Limit) return new TaskEventPage(events, null);
        events.RemoveAt(events.Count - 1);
        return new TaskEventPage(events, events[^1].EventId);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_ownsSession) await _session.DisposeAsync().ConfigureAwait(false);
    }

    private Task WriteAsync(string cql, List<object?[]> rows, CancellationToken cancellationToken)
    {
        if (rows.Count == 1)
            return _session.ExecuteAsync(cql, rows[0], _write, cancellationToken);
        var batch = new CqlBatch(CqlBatchType.Unlogged);
        foreach (var values in rows) batch.Add(cql, values);
        return _session.ExecuteBatchAsync(batch, _write, cancellationToken);
    }

    private long BucketOf(long millis) => millis - (millis % _bucketMillis);

    private static object?[] ByTaskValues(TaskEvent e) =>
        [TimeUuidMapping.ToTimeUuid(e.EventId), e.TaskId, e.Queue, e.Tenant, (int)e.Kind, e.Attempt, e.LeaseToken, e.WorkerId, e.Error];

    private static object?[] ByQueueValues(TaskEvent e, long bucket) =>
        [DateTimeOffset.FromUnixTimeMilliseconds(bucket), TimeUuidMapping.ToTimeUuid(e.EventId), e.TaskId, e.Queue, e.Tenant, (int)e.Kind, e.Attempt, e.LeaseToken, e.WorkerId, e.Error];

    private static TaskEvent ReadEvent(CqlRow row) => new()
    {
        EventId = TimeUuidMapping.ToEventId(row.Get<Guid>(0)),
        TaskId = row.Get<Guid>(1),
        Queue = row.Get<string>(2),
        Tenant = row.IsNull(3) ? null : row.Get<string>(3),
        Kind = (TaskEventKind)row.Get<int>(4),
        Attempt = row.Get<int>(5),
        LeaseToken = row.Get<long>(6),
        WorkerId = row.IsNull(7) ? null : row.Get<string>(7),
        Error = row.IsNull(8) ? null : row.Get<string>(8),
    };
}
