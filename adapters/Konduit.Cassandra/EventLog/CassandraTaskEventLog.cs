using System.Diagnostics.Metrics;
using Konduit.Cassandra.Cql;
using Konduit.Cassandra.EventLog;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Konduit.Cassandra;

/// <summary>
/// An <see cref="ITaskEventLog"/> on Apache Cassandra (docs/adr/005): a table by task (partition = task id) and a
/// table by queue (partition = queue, time bucket and shard), both clustered by a timeuuid derived from the event id,
/// expiring by <c>default_time_to_live</c>.
/// </summary>
/// <remarks>
/// <para>Tables are created by <see cref="MigrateAsync"/>, never implicitly. Appends are upserts (no
/// read-before-write, no lightweight transactions, no deletes) that leave absent values out (no tombstones), sent as
/// UNLOGGED single-partition batches of at most <see cref="CassandraTaskEventLogOptions.MaxBatchBytes"/>, concurrently.
/// A batch the server refuses as invalid is split until the refused event is alone; that event is counted
/// (<see cref="RejectedEvents"/>, <c>konduit.events.rejected</c>), logged and skipped, so one bad event never stalls
/// the log. A re-sent event rewrites the same row.</para>
/// <para>Errors are <see cref="CassandraEventLogException"/>s: <see cref="CassandraUnavailableException"/>,
/// <see cref="CassandraTimeoutException"/> (server or client side alike), <see cref="CassandraConnectionException"/>.</para>
/// <para>The log connects lazily: constructing it never touches the server.</para>
/// </remarks>
public sealed partial class CassandraTaskEventLog : ITaskEventLog
{
    private readonly CqlSession _session;
    private readonly bool _ownsSession;
    private readonly CassandraTaskEventLogOptions _options;
    private readonly CassandraQueries _cql;
    private readonly long _bucketMillis;
    private readonly CqlQueryOptions _write;
    private readonly CqlQueryOptions _read;
    private readonly QueueWindowReader _windows;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Meter? _ownMeter;
    private readonly Counter<long> _rejectedCounter;
    private long _rejected;

    /// <summary>Creates a log. Nothing is sent to the server until the first operation.</summary>
    /// <param name="options">Settings; validated here.</param>
    /// <param name="logger">Logs refused events; none when null.</param>
    /// <param name="meterFactory">Creates the <c>Konduit</c> meter for <c>konduit.events.rejected</c>; a private meter when null.</param>
    public CassandraTaskEventLog(CassandraTaskEventLogOptions options, ILogger<CassandraTaskEventLog>? logger = null, IMeterFactory? meterFactory = null)
        : this(options, null, logger, meterFactory, null)
    {
    }

    /// <summary>A log over a session the caller owns (tests, benchmarks): not disposed with the log.</summary>
    internal CassandraTaskEventLog(CassandraTaskEventLogOptions options, CqlSession session, ILogger? logger = null, TimeProvider? time = null)
        : this(options, session ?? throw new ArgumentNullException(nameof(session)), logger, null, time)
    {
    }

    private CassandraTaskEventLog(CassandraTaskEventLogOptions options, CqlSession? session, ILogger? logger, IMeterFactory? meterFactory, TimeProvider? time)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        if (session is null)
        {
            var sessionOptions = CqlSessionOptions.FromContactPoint(options.ContactPoints);
            sessionOptions.Username = options.Username;
            sessionOptions.Password = options.Password;
            sessionOptions.UseTls = options.UseTls;
            sessionOptions.TlsCertificateAuthorityPath = options.TlsCertificateAuthorityPath;
            sessionOptions.TlsServerName = options.TlsServerName;
            sessionOptions.RequestTimeout = options.RequestTimeout;
            sessionOptions.DefaultConsistency = (CqlConsistency)options.WriteConsistency;
            sessionOptions.DiscoverPeers = true;
            session = new CqlSession(sessionOptions);
            _ownsSession = true;
        }
        _session = session;
        _cql = new CassandraQueries(options.Keyspace, options.Replication);
        _bucketMillis = (long)options.BucketSize.TotalMilliseconds;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        // Every statement of the log is an upsert or a read: safe to move to another node after a broken connection.
        _write = new CqlQueryOptions { Consistency = (CqlConsistency)options.WriteConsistency, Timeout = options.RequestTimeout, IsIdempotent = true };
        _read = new CqlQueryOptions { Consistency = (CqlConsistency)options.ReadConsistency, Timeout = options.RequestTimeout, PageSize = 1000, IsIdempotent = true };
        _windows = new QueueWindowReader(_session, _cql, _read, _bucketMillis, options.ShardCount);
        var meter = meterFactory?.Create("Konduit") ?? (_ownMeter = new Meter("Konduit"));
        _rejectedCounter = meter.CreateCounter<long>("konduit.events.rejected", "{event}", "Task events the Cassandra server refused as invalid (skipped, logged).");
    }

    /// <inheritdoc />
    public string Name => "cassandra";

    /// <inheritdoc />
    public TaskEventLogCapabilities Capabilities { get; } = new() { Expiry = true };

    /// <summary>Events the server refused as invalid on their own (each logged and skipped), since start.</summary>
    public long RejectedEvents => Interlocked.Read(ref _rejected);

    /// <summary>Queue partitions read so far (tests: expired and future buckets are never read).</summary>
    internal long PartitionsRead => _windows.PartitionsRead;

    /// <summary>
    /// Creates the keyspace (with <see cref="CassandraTaskEventLogOptions.Replication"/>) and the two tables (with the
    /// configured time to live, and the compaction strategy and gc_grace_seconds for the server's version) when
    /// missing, waits for the nodes to agree on the schema, then prepares every statement. Idempotent; it never alters
    /// existing tables (an older layout fails here, naming the keyspace).
    /// </summary>
    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        // DDL is not prepared, and gets a longer timeout: schema changes on a busy cluster take seconds.
        var ddl = new CqlQueryOptions { Prepare = false, Consistency = CqlConsistency.One, Timeout = _options.RequestTimeout * 6, IsIdempotent = true };
        try
        {
            var release = (await _session.ExecuteAsync(CassandraQueries.ReleaseVersion, null, ddl, cancellationToken).ConfigureAwait(false)).Rows[0].Get<string>(0);
            var table = TableOptions.For(TableOptions.ParseRelease(release), (int?)_options.TimeToLive?.TotalSeconds, (int)_options.BucketSize.TotalSeconds);
            foreach (var statement in new[] { _cql.CreateKeyspace, _cql.CreateByTask(table), _cql.CreateByQueue(table) })
            {
                await _session.ExecuteAsync(statement, null, ddl, cancellationToken).ConfigureAwait(false);
                await WaitForSchemaAgreementAsync(ddl, cancellationToken).ConfigureAwait(false);
            }
            foreach (var statement in _cql.Prepared)
            {
                try
                {
                    await _session.PrepareAsync(statement, cancellationToken).ConfigureAwait(false);
                }
                catch (CqlInvalidQueryException ex)
                {
                    throw new CassandraEventLogException(
                        $"Keyspace '{_options.Keyspace}' holds event tables of another layout ({ex.Message}); use a new keyspace or drop the two tables.", ex);
                }
            }
        }
        catch (CqlException ex)
        {
            throw CassandraEventLogException.From(ex);
        }
    }

    // Schema changes reach the other nodes by gossip: preparing on a node that has not seen the table yet fails.
    private async Task WaitForSchemaAgreementAsync(CqlQueryOptions ddl, CancellationToken cancellationToken)
    {
        var deadline = _time.GetUtcNow() + TimeSpan.FromSeconds(20);
        while (true)
        {
            var versions = new HashSet<Guid>();
            var peers = 0;
            await foreach (var row in _session.QueryAsync(CassandraQueries.PeerSchemaVersions, null, ddl, cancellationToken).ConfigureAwait(false))
            {
                peers++;
                if (row[1] is Guid v) versions.Add(v);
            }
            // The session spreads requests round-robin, so the peers row and the local row may come from different
            // nodes: ask for the local version once per node, so every node's own view is counted (a node that has not
            // applied the change yet reports its old version here, whatever its peers say).
            for (var i = 0; i <= peers; i++)
            {
                await foreach (var row in _session.QueryAsync(CassandraQueries.LocalSchemaVersion, null, ddl, cancellationToken).ConfigureAwait(false))
                    if (row[0] is Guid v) versions.Add(v);
            }
            if (versions.Count <= 1) return;
            if (_time.GetUtcNow() > deadline)
            {
                SchemaDisagreement(_logger, versions.Count);
                return;
            }
            await Task.Delay(TimeSpan.FromMilliseconds(200), _time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async Task AppendAsync(IReadOnlyList<TaskEvent> events, CancellationToken cancellationToken = default)
    {
        TaskEventValidation.ValidateAppend(events);
        if (events.Count == 0) return;
        var unique = events.DistinctBy(e => e.EventId).ToList();
        var writes = new List<Task>();
        foreach (var partition in unique.Select(EventRows.ByTask).GroupBy(r => r.Partition))
            foreach (var batch in EventRows.SplitBySize(partition, _options.MaxBatchBytes))
                writes.Add(WriteAsync(batch, byTask: true, cancellationToken));
        foreach (var partition in unique.Select(e => EventRows.ByQueue(e, _bucketMillis, _options.ShardCount)).GroupBy(r => r.Partition))
            foreach (var batch in EventRows.SplitBySize(partition, _options.MaxBatchBytes))
                writes.Add(WriteAsync(batch, byTask: false, cancellationToken));
        try
        {
            await Task.WhenAll(writes).ConfigureAwait(false);
        }
        catch (CqlException ex)
        {
            throw CassandraEventLogException.From(ex);
        }
    }

    /// <summary>
    /// One single-partition write: a plain EXECUTE for one row, an UNLOGGED batch for more (a partial write is
    /// repaired by the idempotent re-send; the batchlog would buy atomicity we do not need). A refusal of the values
    /// or the size (not of a PREPARE, which would mean the schema is wrong) splits the batch in halves down to the
    /// refused event.
    /// </summary>
    private async Task WriteAsync(List<EventRow> rows, bool byTask, CancellationToken cancellationToken)
    {
        try
        {
            var statements = new CqlPreparedStatement[rows.Count];
            for (var i = 0; i < rows.Count; i++)
                statements[i] = await _session.PrepareAsync(byTask ? _cql.InsertByTask(rows[i].Mask) : _cql.InsertByQueue(rows[i].Mask), cancellationToken).ConfigureAwait(false);
            if (rows.Count == 1)
            {
                await _session.ExecuteAsync(statements[0], rows[0].Values, _write, cancellationToken).ConfigureAwait(false);
                return;
            }
            var batch = new CqlBatch(CqlBatchType.Unlogged);
            for (var i = 0; i < rows.Count; i++) batch.Add(statements[i], rows[i].Values);
            await _session.ExecuteBatchAsync(batch, _write, cancellationToken).ConfigureAwait(false);
        }
        catch (CqlInvalidQueryException ex) when (ex.RequestOpcode is CqlOpcode.Batch or CqlOpcode.Execute)
        {
            if (rows.Count > 1)
            {
                var half = rows.Count / 2;
                await Task.WhenAll(WriteAsync(rows[..half], byTask, cancellationToken), WriteAsync(rows[half..], byTask, cancellationToken)).ConfigureAwait(false);
                return;
            }
            Interlocked.Increment(ref _rejected);
            _rejectedCounter.Add(1);
            var e = rows[0].Event;
            EventRefused(_logger, ex, e.EventId, e.TaskId, e.Queue, byTask ? "task_events_by_task" : "task_events_by_queue");
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<TaskEvent>> ReadTaskHistoryAsync(Guid taskId, CancellationToken cancellationToken = default)
    {
        TaskEventValidation.ValidateTaskId(taskId);
        var events = new List<TaskEvent>();
        try
        {
            await foreach (var row in _session.QueryAsync(_cql.History, [taskId], _read, cancellationToken).ConfigureAwait(false))
                if (EventRows.Read(row) is { } e) events.Add(e);
        }
        catch (CqlException ex)
        {
            throw CassandraEventLogException.From(ex);
        }
        return events;
    }

    /// <inheritdoc />
    /// <remarks>Reads only event times in [now − time to live, now + 1 min): older buckets hold nothing unexpired
    /// (an event delivered late, after an outage, leaves the window at its event time + time to live, though it stays
    /// in its task's history until its own expiry), and later ones nothing yet.</remarks>
    public async Task<TaskEventPage> ReadQueueEventsAsync(string queue, DateTimeOffset from, DateTimeOffset to, TaskEventPageRequest? page = null, CancellationToken cancellationToken = default)
    {
        page = TaskEventValidation.ValidateQueueRead(queue, from, to, page);
        var now = _time.GetUtcNow();
        var lower = from.ToUnixTimeMilliseconds();
        if (_options.TimeToLive is { } ttl)
            lower = Math.Max(lower, (now - ttl).ToUnixTimeMilliseconds());
        var upper = Math.Min(to.ToUnixTimeMilliseconds(), (now + QueueWindowReader.ClockSkew).ToUnixTimeMilliseconds());
        // A cursor before the readable range (expired meanwhile) is a position already passed.
        Guid? after = page.After is { } cursor && TaskEventId.GetMillis(cursor) >= lower ? cursor : null;
        if (lower >= upper || (after is { } a && TaskEventId.GetMillis(a) >= upper)) return new TaskEventPage([], null);
        List<TaskEvent> events;
        try
        {
            events = await _windows.ReadAsync(queue, lower, upper, after, page.Limit + 1, cancellationToken).ConfigureAwait(false);
        }
        catch (CqlException ex)
        {
            throw CassandraEventLogException.From(ex);
        }
        if (events.Count <= page.Limit) return new TaskEventPage(events, null);
        events.RemoveAt(events.Count - 1);
        return new TaskEventPage(events, events[^1].EventId);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_ownsSession) await _session.DisposeAsync().ConfigureAwait(false);
        _ownMeter?.Dispose();
    }

    [LoggerMessage(200, LogLevel.Error, "Cassandra refused event {EventId} of task {TaskId} (queue {Queue}) for {Table}; it is skipped (see konduit.events.rejected)")]
    private static partial void EventRefused(ILogger logger, Exception exception, Guid eventId, Guid taskId, string queue, string table);

    [LoggerMessage(201, LogLevel.Warning, "The Cassandra nodes did not agree on the schema within 20 s ({Versions} versions); a node that is down keeps its old version")]
    private static partial void SchemaDisagreement(ILogger logger, int versions);
}
