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
    private readonly PostgresEventLogQueries _sql;
    private readonly PostgresExecutor _db;

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
        _sql = new PostgresEventLogQueries(options.Schema);
        // The store's error mapping: transient failures become StoreUnavailableException, a missing table names MigrateAsync.
        _db = new PostgresExecutor(dataSource, Name,
            $"The task_events table does not exist in schema '{options.Schema}': run PostgresTaskEventLog.MigrateAsync() before using the log.",
            prepare: false);
    }

    /// <inheritdoc />
    public string Name => "postgres";

    /// <inheritdoc />
    public TaskEventLogCapabilities Capabilities { get; } = new() { Expiry = true };

    /// <summary>Creates the schema (if missing) and the event table and indexes. Idempotent; safe on many nodes at once.</summary>
    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        using var cmd = _dataSource.CreateCommand(_sql.Migrate);
        await _db.GuardAsync("migrate events", cmd, static (c, ct) => c.ExecuteNonQueryAsync(ct), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Deletes expired events (reads already skip them) in batches of 10,000; returns how many were deleted. The
    /// hosting runtime calls this every <c>Konduit:EventLogMaintenanceInterval</c> on every node when this log is selected.
    /// </summary>
    public async Task<long> DeleteExpiredAsync(CancellationToken cancellationToken = default)
    {
        const int BatchSize = 10_000;
        using var cmd = _dataSource.CreateCommand(_sql.DeleteExpired);
        cmd.Parameters.Add(new NpgsqlParameter { Value = BatchSize, NpgsqlDbType = NpgsqlDbType.Integer });
        long total = 0;
        while (true)
        {
            var deleted = await _db.GuardAsync("delete expired events", cmd, static (c, ct) => c.ExecuteNonQueryAsync(ct), cancellationToken).ConfigureAwait(false);
            total += deleted;
            if (deleted < BatchSize) return total;
        }
    }

    /// <inheritdoc />
    public async Task AppendAsync(IReadOnlyList<TaskEvent> events, CancellationToken cancellationToken = default)
    {
        TaskEventValidation.ValidateAppend(events);
        if (events.Count == 0) return;
        using var cmd = _dataSource.CreateCommand(_sql.Append);
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
        await _db.GuardAsync("append events", cmd, static (c, ct) => c.ExecuteNonQueryAsync(ct), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<TaskEvent>> ReadTaskHistoryAsync(Guid taskId, CancellationToken cancellationToken = default)
    {
        TaskEventValidation.ValidateTaskId(taskId);
        using var cmd = _dataSource.CreateCommand(_sql.History);
        cmd.Parameters.Add(new NpgsqlParameter { Value = taskId, NpgsqlDbType = NpgsqlDbType.Uuid });
        return await _db.GuardAsync("read task history", cmd, static (c, ct) => ReadEventsAsync(c, ct), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<TaskEventPage> ReadQueueEventsAsync(string queue, DateTimeOffset from, DateTimeOffset to, TaskEventPageRequest? page = null, CancellationToken cancellationToken = default)
    {
        page = TaskEventValidation.ValidateQueueRead(queue, from, to, page);
        var lower = TaskEventId.MinFor(from);
        using var cmd = _dataSource.CreateCommand(_sql.Window);
        cmd.Parameters.Add(new NpgsqlParameter { Value = queue, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = lower, NpgsqlDbType = NpgsqlDbType.Uuid });
        cmd.Parameters.Add(new NpgsqlParameter { Value = TaskEventId.MinFor(to), NpgsqlDbType = NpgsqlDbType.Uuid });
        // "After the cursor": for the first page, anything at or after the window's lower bound (Guid.Empty sorts first).
        cmd.Parameters.Add(new NpgsqlParameter { Value = page.After ?? Guid.Empty, NpgsqlDbType = NpgsqlDbType.Uuid });
        cmd.Parameters.Add(new NpgsqlParameter { Value = page.Limit + 1, NpgsqlDbType = NpgsqlDbType.Integer });
        var events = await _db.GuardAsync("read queue events", cmd, static (c, ct) => ReadEventsAsync(c, ct), cancellationToken).ConfigureAwait(false);
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
