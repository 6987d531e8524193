namespace Konduit.Sqlite;

/// <summary>
/// Every SQL statement of the store, as constants. Nothing is ever interpolated: values travel as named parameters, and
/// the only composed statements (query and bulk filters) are concatenations of the constant fragments below.
/// </summary>
/// <remarks>
/// Times are INTEGER UTC ticks (exact round trip of <see cref="DateTimeOffset"/>, integer comparisons) taken from the
/// store's <see cref="TimeProvider"/>: the processes sharing a file run on one host, so they share its clock. Ids are
/// the 16 big-endian bytes of the UUIDv7, so SQLite's BLOB order (memcmp) is <see cref="Guid.CompareTo(Guid)"/>'s order,
/// the enqueue order.
/// </remarks>
internal static class SqliteQueries
{
    /// <summary>The newest schema version <see cref="Migrations"/> creates.</summary>
    public const int LatestVersion = 1;

    /// <summary>Rows reclaimed or purged per transaction: keeps each hold of the file's write lock short.</summary>
    public const int SweepBatchSize = 500;

    // WAL: readers never block the writer nor the writer readers, across processes; persistent in the file once set.
    // Set outside any transaction (SQLite refuses to change the journal mode inside one).
    public const string EnableWal = "PRAGMA journal_mode = WAL";

    // Per connection (pooled connections keep it, but a pool may hand out a fresh one): SQLite's own busy handler waits
    // for the write lock instead of failing at once with SQLITE_BUSY. PRAGMA takes no parameters; the value is an int.
    public const string BusyTimeoutPragma = "PRAGMA busy_timeout = ";

    // Per connection as well; the value is a constant chosen by SqliteTaskStoreOptions.Synchronous, never user text.
    public const string SynchronousFull = "; PRAGMA synchronous = FULL";
    public const string SynchronousNormal = "; PRAGMA synchronous = NORMAL";

    // The version table is created inside the migration's BEGIN IMMEDIATE, so concurrent migrators serialize on the write lock.
    public const string CreateVersionTable = """
        CREATE TABLE IF NOT EXISTS schema_version (
            version    INTEGER NOT NULL PRIMARY KEY,
            applied_at INTEGER NOT NULL
        ) STRICT
        """;

    public const string CurrentVersion = "SELECT coalesce(max(version), 0) FROM schema_version";

    public const string RecordVersion = "INSERT INTO schema_version (version, applied_at) VALUES (@version, @now)";

    public static readonly IReadOnlyList<(int Version, string Sql)> Migrations =
    [
        (1, """
            -- A rowid table (not WITHOUT ROWID): payloads reach 1 MiB, and SQLite keeps large rows best outside the key's b-tree.
            -- STRICT: a value of the wrong type is an error, not a silent conversion.
            CREATE TABLE tasks (
                id                  BLOB    NOT NULL PRIMARY KEY,  -- UUIDv7, big-endian bytes
                queue               TEXT    NOT NULL,
                state               INTEGER NOT NULL,              -- Konduit.TaskState: 0 pending, 1 running, 2 succeeded, 3 failed, 4 canceled
                priority            INTEGER NOT NULL,
                run_at              INTEGER NOT NULL,
                attempts            INTEGER NOT NULL DEFAULT 0,
                max_attempts        INTEGER NOT NULL,
                lease_token         INTEGER NOT NULL DEFAULT 0,    -- fencing token, bumped on every lease, never reset
                lease_owner         TEXT,
                lease_expires_at    INTEGER,
                tenant              TEXT,
                idempotency_key     TEXT,
                headers             TEXT,                          -- JSON object, null when there are none
                retry_initial_delay INTEGER,                       -- the task's own retry policy (ticks), null when it has none
                retry_max_delay     INTEGER,
                retry_multiplier    REAL,
                retry_jitter        REAL,
                payload             BLOB    NOT NULL,
                result              BLOB,
                errors              TEXT    NOT NULL DEFAULT '[]', -- JSON array of {attempt, message, at}
                created_at          INTEGER NOT NULL,
                updated_at          INTEGER NOT NULL,
                started_at          INTEGER,
                finished_at         INTEGER
            ) STRICT;
            -- Idempotency: one task per (queue, key) while its row exists; purging the row frees the key.
            CREATE UNIQUE INDEX tasks_key_idx ON tasks (queue, idempotency_key) WHERE idempotency_key IS NOT NULL;
            -- The lease scan: only pending rows, in exactly the ORDER BY of Lease.
            CREATE INDEX tasks_pending_idx ON tasks (queue, priority DESC, run_at, id) WHERE state = 0;
            -- The sweeper: running rows by expiry.
            CREATE INDEX tasks_running_idx ON tasks (lease_expires_at) WHERE state = 1;
            -- Queries by queue (and state), newest first by id.
            CREATE INDEX tasks_queue_state_id_idx ON tasks (queue, state, id);
            -- Queries by tenant, newest first; most tasks have none.
            CREATE INDEX tasks_tenant_id_idx ON tasks (tenant, id) WHERE tenant IS NOT NULL;
            -- Purge and finish-time queries: terminal rows by finish time.
            CREATE INDEX tasks_finished_idx ON tasks (finished_at) WHERE finished_at IS NOT NULL;
            -- Paused queues live in the file, so every process's lease sees a pause at once.
            CREATE TABLE paused_queues (
                queue     TEXT    NOT NULL PRIMARY KEY,
                paused_at INTEGER NOT NULL
            ) STRICT, WITHOUT ROWID;
            """),
    ];

    // ------------------------------------------------------------------------------------------------ enqueue

    // Read inside the enqueue's write transaction, so no other writer can take the key between this and the insert.
    public const string FindByKey = "SELECT id FROM tasks WHERE queue = @queue AND idempotency_key = @key";

    public const string InsertTask = """
        INSERT INTO tasks (id, queue, state, priority, run_at, max_attempts, tenant, idempotency_key, headers,
                           retry_initial_delay, retry_max_delay, retry_multiplier, retry_jitter, payload, created_at, updated_at)
        VALUES (@id, @queue, 0, @priority, @run_at, @max_attempts, @tenant, @key, @headers,
                @retry_initial_delay, @retry_max_delay, @retry_multiplier, @retry_jitter, @payload, @now, @now)
        """;

    // ------------------------------------------------------------------------------------------------ leases

    // What SqliteRows.ReadLease reads, by ordinal.
    private const string LeaseColumns =
        "id, queue, lease_owner, lease_token, attempts, max_attempts, lease_expires_at, payload, priority, tenant, headers, " +
        "retry_initial_delay, retry_max_delay, retry_multiplier, retry_jitter, created_at, run_at";

    // One statement under the write lock: the subquery picks the first due pending rows in lease order (the partial
    // index's order), the UPDATE bumps attempt and fencing token. A paused queue's subquery is empty. RETURNING has no
    // order, so the caller sorts.
    public const string Lease = """
        UPDATE tasks
        SET state = 1, attempts = attempts + 1, lease_token = lease_token + 1, lease_owner = @worker,
            lease_expires_at = @expires_at, started_at = coalesce(started_at, @now), updated_at = @now
        WHERE id IN (
            SELECT id FROM tasks
            WHERE queue = @queue AND state = 0 AND run_at <= @now
              AND NOT EXISTS (SELECT 1 FROM paused_queues WHERE queue = @queue)
            ORDER BY priority DESC, run_at, id
            LIMIT @limit)
        RETURNING
        """ + " " + LeaseColumns;

    // A lease is valid while Running with the same fencing token and not expired by the store clock.
    private const string ValidLease = " WHERE id = @id AND lease_token = @token AND state = 1 AND lease_expires_at > @now";

    public const string Heartbeat = "UPDATE tasks SET lease_expires_at = @expires_at" + ValidLease;

    // Leaving Running clears lease_expires_at (snapshots show it only while running); lease_owner is kept.
    public const string Complete =
        "UPDATE tasks SET state = 2, result = @result, lease_expires_at = NULL, finished_at = @now, updated_at = @now" + ValidLease;

    // Fail reads the row's own attempts and retry policy under the write lock, then decides in code (FailOptions.ResolveDelay).
    public const string FailRead =
        "SELECT attempts, max_attempts, retry_initial_delay, retry_max_delay, retry_multiplier, retry_jitter FROM tasks" + ValidLease;

    // The error entry is appended by SQLite's JSON functions: the message travels as a parameter, never as JSON text.
    private const string AppendError = "errors = json_insert(errors, '$[#]', json_object('attempt', attempts, 'message', @message, 'at', @now))";

    public const string FailWrite =
        "UPDATE tasks SET state = @state, run_at = coalesce(@run_at, run_at), finished_at = @finished_at, lease_expires_at = NULL, " +
        AppendError + ", updated_at = @now WHERE id = @id";

    // The cold path after a refused heartbeat, complete or fail: why (no row = the task is gone).
    public const string StateOf = "SELECT state FROM tasks WHERE id = @id";

    // The one transition of an ended lease, shared by the sweeper and ExpireLease so both report alike: an error
    // entry, then Pending due now, or Failed when the attempt counted at lease time was the last.
    private const string ExpireSet = """
        UPDATE tasks
        SET state = CASE WHEN attempts >= max_attempts THEN 3 ELSE 0 END,
            run_at = CASE WHEN attempts >= max_attempts THEN run_at ELSE @now END,
            finished_at = CASE WHEN attempts >= max_attempts THEN @now END,
            lease_expires_at = NULL,
            errors = json_insert(errors, '$[#]', json_object('attempt', attempts, 'message', 'lease expired', 'at', @now)),
            updated_at = @now
        """;

    private const string ExpireReturning = " RETURNING id, queue, tenant, attempts, lease_token, lease_owner, state";

    // One batch of the sweeper; the write lock makes each expiry reclaimed by exactly one caller, in any process.
    public const string ReclaimExpired = ExpireSet + """

        WHERE id IN (SELECT id FROM tasks WHERE state = 1 AND lease_expires_at <= @now ORDER BY lease_expires_at LIMIT @limit)
        """ + ExpireReturning;

    // Fenced by (id, token, Running), not by expiry time: the caller (a lease monitor) decided this very lease is dead.
    public const string ExpireLease = ExpireSet + " WHERE id = @id AND lease_token = @token AND state = 1" + ExpireReturning;

    // ------------------------------------------------------------------------------------------------ admin

    private const string CancelSet = "UPDATE tasks SET state = 4, lease_expires_at = NULL, finished_at = @now, updated_at = @now";

    // Redrive: attempts reset, errors and fencing token kept (tokens never go back), due now.
    private const string RedriveSet =
        "UPDATE tasks SET state = 0, attempts = 0, run_at = @now, finished_at = NULL, lease_expires_at = NULL, updated_at = @now";

    public const string Cancel = CancelSet + " WHERE id = @id AND state IN (0, 1)";

    public const string Redrive = RedriveSet + " WHERE id = @id AND state IN (3, 4)";

    // Bulk cancel and redrive = prefix + the filter fragments below + BulkSuffix; @states always names the eligible
    // states. The write lock makes the pick and the update one step, so no row changes in between.
    public const string CancelManyPrefix = CancelSet + " WHERE id IN (SELECT id FROM tasks WHERE " + ByStates;

    public const string RedriveManyPrefix = RedriveSet + " WHERE id IN (SELECT id FROM tasks WHERE " + ByStates;

    public const string BulkSuffix = " ORDER BY id DESC LIMIT @limit) RETURNING id, queue";

    // Pause is idempotent: a second pause keeps the first one's time.
    public const string PauseQueue = "INSERT INTO paused_queues (queue, paused_at) VALUES (@queue, @now) ON CONFLICT DO NOTHING";

    public const string ResumeQueue = "DELETE FROM paused_queues WHERE queue = @queue";

    // BINARY collation compares bytes: for the ASCII queue alphabet, .NET's ordinal order.
    public const string PausedQueues = "SELECT queue FROM paused_queues ORDER BY queue";

    // What SqliteRows.ReadSnapshot reads, by ordinal.
    private const string SnapshotColumns =
        "id, queue, state, priority, attempts, max_attempts, lease_token, run_at, created_at, updated_at, started_at, " +
        "finished_at, lease_owner, lease_expires_at, idempotency_key, tenant, headers, payload, result, errors";

    public const string Get = "SELECT " + SnapshotColumns + " FROM tasks WHERE id = @id";

    // Query = prefix + one fragment per filter present + suffix (see SqliteAdmin.AddFilter).
    public const string QueryPrefix = "SELECT " + SnapshotColumns + " FROM tasks WHERE 1 = 1";

    // A set of states travels as one JSON array parameter: SQLite has no array parameters, and json_each keeps it one.
    public const string ByStates = "state IN (SELECT value FROM json_each(@states))";
    public const string QueryByStates = " AND " + ByStates;
    public const string QueryByQueue = " AND queue = @queue";
    public const string QueryByTenant = " AND tenant = @tenant";
    public const string QueryCreatedFrom = " AND created_at >= @created_from";
    public const string QueryCreatedTo = " AND created_at < @created_to";
    // finished_at is null until a task is terminal, so a bound excludes unfinished tasks by itself (SQL null compare).
    public const string QueryFinishedFrom = " AND finished_at >= @finished_from";
    public const string QueryFinishedTo = " AND finished_at < @finished_to";
    public const string QueryAfter = " AND id < @after";
    // Newest first by the time-ordered id; one extra row tells whether there is a next page.
    public const string QuerySuffix = " ORDER BY id DESC LIMIT @limit";

    // One pass with one @now for due vs scheduled and the oldest due run-at; sum() of a comparison counts its true rows.
    public const string Stats = """
        SELECT queue, sum(state = 0), sum(state = 1), sum(state = 2), sum(state = 3), sum(state = 4),
               sum(state = 0 AND run_at <= @now), min(CASE WHEN state = 0 AND run_at <= @now THEN run_at END)
        FROM tasks
        GROUP BY queue
        ORDER BY queue
        """;

    // One batch: the key goes with the row (a unique index on the row), so it becomes free. @queue null = every queue.
    public const string Purge = """
        DELETE FROM tasks
        WHERE id IN (
            SELECT id FROM tasks
            WHERE state IN (SELECT value FROM json_each(@states)) AND finished_at <= @cutoff AND (@queue IS NULL OR queue = @queue)
            LIMIT @limit)
        RETURNING id, queue, tenant, state
        """;

    // The health probe and the start-up check: one round trip that proves the file opens and the tables exist.
    public const string Probe = "SELECT count(*) FROM paused_queues";
}
