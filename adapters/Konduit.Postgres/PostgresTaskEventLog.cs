using Npgsql;
using NpgsqlTypes;

namespace Konduit.Postgres;

/// <summary>
/// An <see cref="ITaskEventLog"/> on PostgreSQL: one table <c>task_events</c> in the configured schema, keyed by
/// event id (UUIDv7, so its order is time order), indexed by (task, event id) and (queue, event id).
/// </summary>
/// <remarks>
/// <para>The table is created by <see cref="MigrateAsync"/> (idempotent, separate from the task store's own
/// migrations so the log may live in another database). Appends are one <c>INSERT … ON CONFLICT DO NOTHING</c>:
/// a re-sent event stays one row. With a <see cref="PostgresTaskEventLogOptions.TimeToLive"/> each row carries an
/// expiry time (server clock); reads skip expired rows and <see cref="DeleteExpiredAsync"/> removes them.</para>
/// </remarks>
public sealed class PostgresTaskEventLog : ITaskEventLog
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly bool _ownsDataSource;
    private readonly TimeSpan? _timeToLive;
    private readonly string _migrate;
    private readonly string _append;
    private readonly string _history;
    private readonly string _window;
    private readonly string _deleteExpired;

    /// <summary>Creates a log. Nothing is sent to the server until the first operation.</summary>
    /// <param name="options">Settings; validated here.</param>
    /// <param name="dataSource">The application's data source (not disposed by the log); when null one is built from the connection string.</param>
    public PostgresTaskEventLog(PostgresTaskEventLogOptions options, NpgsqlDataSource? dataSource = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (dataSource is null)
        {
            if (string.IsNullOrWhiteSpace(options.ConnectionString))
                throw new ArgumentException("PostgresTaskEventLogOptions.ConnectionString is required when no NpgsqlDataSource is given.", nameof(options));
            dataSource = NpgsqlDataSource.Create(options.ConnectionString);
            _ownsDataSource = true;
        }
        _dataSource = dataSource;
        _timeToLive = options.TimeToLive;
        // The schema was validated as a plain identifier; it is the only text interpolated.
        var t = $"\"{options.Schema}\".task_events";
        _migrate = $"""
            SELECT pg_advisory_xact_lock({0x4B4E4454}, 6);
            CREATE SCHEMA IF NOT EXISTS "{options.Schema}";
            CREATE TABLE IF NOT EXISTS {t} (
                event_id   uuid        NOT NULL,  -- UUIDv7: time-ordered, client-generated (idempotent re-sends)
                task_id    uuid        NOT NULL,
                queue      text        NOT NULL,
                tenant     text,
                kind       smallint    NOT NULL,  -- Konduit.TaskEventKind
                attempt    integer     NOT NULL,
                token      bigint      NOT NULL,
                worker     text,
                error      text,
                expires_at timestamptz,           -- null: kept until deleted
                CONSTRAINT task_events_pkey PRIMARY KEY (event_id)
            );
            CREATE INDEX IF NOT EXISTS task_events_task_idx ON {t} (task_id, event_id);
            CREATE INDEX IF NOT EXISTS task_events_queue_idx ON {t} (queue, event_id);
            CREATE INDEX IF NOT EXISTS task_events_expiry_idx ON {t} (expires_at) WHERE expires_at IS NOT NULL;
            """;
        _append = $"""
            INSERT INTO {t} (event_id, task_id, queue, tenant, kind, attempt, token, worker, error, expires_at)
            SELECT e.*, now() + $10
            FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::smallint[], $6::integer[], $7::bigint[], $8::text[], $9::text[])
                 AS e(event_id, task_id, queue, tenant, kind, attempt, token, worker, error)
            ON CONFLICT (event_id) DO NOTHING
            """;
        const string Columns = "event_id, task_id, queue, tenant, kind, attempt, token, worker, error";
        _history = $"SELECT {Columns} FROM {t} WHERE task_id = $1 AND (expires_at IS NULL OR expires_at > now()) ORDER BY event_id";
        _window = $"""
            SELECT {Columns} FROM {t}
            WHERE queue = $1 AND event_id >= $2 AND event_id < $3 AND event_id > $4 AND (expires_at IS NULL OR expires_at > now())
            ORDER BY event_id
            LIMIT $5
            """;
        // Batched (each batch its own short transaction, so no long lock or huge WAL burst) and SKIP LOCKED, so the
        // upkeep running on every node splits the work instead of queueing behind each other.
        _deleteExpired = $"""
            DELETE FROM {t} WHERE event_id IN (
                SELECT event_id FROM {t} WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)
            """;
    }

    /// <inheritdoc />
    public string Name => "postgres";

    /// <inheritdoc />
    public TaskEventLogCapabilities Capabilities { get; } = new() { Expiry = true };

    /// <summary>Creates the schema (if missing) and the event table and indexes. Idempotent; safe on many nodes at once.</summary>
    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        using var cmd = _dataSource.CreateCommand(_migrate);
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Deletes expired events (reads already skip them) in batches of 10,000; returns how many were deleted. The
    /// hosting runtime calls this every <c>Konduit:EventLogMaintenanceInterval</c> on every node when this log is selected.
    /// </summary>
    public async Task<long> DeleteExpiredAsync(CancellationToken cancellationToken = default)
    {
        const int BatchSize = 10_000;
        using var cmd = _dataSource.CreateCommand(_deleteExpired);
        cmd.Parameters.Add(new NpgsqlParameter { Value = BatchSize, NpgsqlDbType = NpgsqlDbType.Integer });
        long total = 0;
        while (true)
        {
            var deleted = await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            total += deleted;
            if (deleted < BatchSize) return total;
        }
    }

    /// <inheritdoc />
    public async Task AppendAsync(IReadOnlyList<TaskEvent> events, CancellationToken cancellationToken = default)
    {
        TaskEventValidation.ValidateAppend(events);
        if (events.Count == 0) return;
        using var cmd = _dataSource.CreateCommand(_append);
        cmd.Parameters.Add(new NpgsqlParameter { Value = events.Select(e => e.EventId).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid });
        cmd.Parameters.Add(new NpgsqlParameter { Value = events.Select(e => e.TaskId).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid });
        cmd.Parameters.Add(new NpgsqlParameter { Value = events.Select(e => e.Queue).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = events.Select(e => e.Tenant).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = events.Select(e => (short)e.Kind).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Smallint });
        cmd.Parameters.Add(new NpgsqlParameter { Value = events.Select(e => e.Attempt).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
        cmd.Parameters.Add(new NpgsqlParameter { Value = events.Select(e => e.LeaseToken).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
        cmd.Parameters.Add(new NpgsqlParameter { Value = events.Select(e => e.WorkerId).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = events.Select(e => e.Error).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = _timeToLive is { } ttl ? ttl : DBNull.Value, NpgsqlDbType = NpgsqlDbType.Interval });
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<TaskEvent>> ReadTaskHistoryAsync(Guid taskId, CancellationToken cancellationToken = default)
    {
        TaskEventValidation.ValidateTaskId(taskId);
        using var cmd = _dataSource.CreateCommand(_history);
        cmd.Parameters.Add(new NpgsqlParameter { Value = taskId, NpgsqlDbType = NpgsqlDbType.Uuid });
        return await ReadEventsAsync(cmd, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<TaskEventPage> ReadQueueEventsAsync(string queue, DateTimeOffset from, DateTimeOffset to, TaskEventPageRequest? page = null, CancellationToken cancellationToken = default)
    {
        page = TaskEventValidation.ValidateQueueRead(queue, from, to, page);
        var lower = TaskEventId.MinFor(from);
        using var cmd = _dataSource.CreateCommand(_window);
        cmd.Parameters.Add(new NpgsqlParameter { Value = queue, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = lower, NpgsqlDbType = NpgsqlDbType.Uuid });
        cmd.Parameters.Add(new NpgsqlParameter { Value = TaskEventId.MinFor(to), NpgsqlDbType = NpgsqlDbType.Uuid });
        // "After the cursor": for the first page, anything at or after the window's lower bound (Guid.Empty sorts first).
        cmd.Parameters.Add(new NpgsqlParameter { Value = page.After ?? Guid.Empty, NpgsqlDbType = NpgsqlDbType.Uuid });
        cmd.Parameters.Add(new NpgsqlParameter { Value = page.Limit + 1, NpgsqlDbType = NpgsqlDbType.Integer });
        var events = await ReadEventsAsync(cmd, cancellationToken).ConfigureAwait(false);
        if (events.Count <= page.Limit) return new TaskEventPage(events, null);
        events.RemoveAt(events.Count - 1);
        return new TaskEventPage(events, events[^1].EventId);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_ownsDataSource) await _dataSource.DisposeAsync().ConfigureAwait(false);
    }

    private static async Task<List<TaskEvent>> ReadEventsAsync(NpgsqlCommand cmd, CancellationToken cancellationToken)
    {
        var events = new List<TaskEvent>();
        var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using var _ = reader.ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            events.Add(new TaskEvent
            {
                EventId = reader.GetGuid(0),
                TaskId = reader.GetGuid(1),
                Queue = reader.GetString(2),
                Tenant = reader.IsDBNull(3) ? null : reader.GetString(3),
                Kind = (TaskEventKind)reader.GetInt16(4),
                Attempt = reader.GetInt32(5),
                LeaseToken = reader.GetInt64(6),
                WorkerId = reader.IsDBNull(7) ? null : reader.GetString(7),
                Error = reader.IsDBNull(8) ? null : reader.GetString(8),
            });
        }
        return events;
    }
}

/// <summary>Settings of a <see cref="PostgresTaskEventLog"/> (<c>Konduit:PostgresEventLog</c> in configuration).</summary>
public sealed class PostgresTaskEventLogOptions
{
    /// <summary>The Npgsql connection string; required unless a data source is passed to the log.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>The schema of the <c>task_events</c> table (default <c>konduit</c>): a plain lowercase identifier.</summary>
    public string Schema { get; set; } = "konduit";

    /// <summary>How long events are kept; null (default) keeps them until deleted.</summary>
    public TimeSpan? TimeToLive { get; set; }

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentException">A setting is invalid (the message names it).</exception>
    public void Validate()
    {
        // Same identifier rule as the store's schema.
        new PostgresTaskStoreOptions { Schema = Schema }.Validate();
        if (TimeToLive is { } ttl && ttl <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(TimeToLive), ttl, "The time to live must be positive.");
    }
}
