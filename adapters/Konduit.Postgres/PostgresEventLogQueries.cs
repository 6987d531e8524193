namespace Konduit.Postgres;

/// <summary>
/// Every SQL statement of <see cref="PostgresTaskEventLog"/>, built once per schema. The schema name (validated as a
/// plain identifier) is the only text interpolated; values travel as parameters.
/// </summary>
internal sealed class PostgresEventLogQueries
{
    // The read column list; PostgresTaskEventLog.ReadEventsAsync reads it by ordinal.
    private const string Columns = "event_id, task_id, queue, tenant, kind, attempt, token, worker, error";

    public PostgresEventLogQueries(string schema)
    {
        var t = $"\"{schema}\".task_events";
        // Idempotent and separate from the task store's versioned migrations (the log may live in another database);
        // serialized on the task store's own migration lock for this schema (class, hashtext(schema)), so concurrent
        // nodes, and a store and a log migrating one schema at once, never race on CREATE SCHEMA / CREATE TABLE IF NOT
        // EXISTS (the log and the store both creating a fresh schema hit a unique violation with separate locks). The
        // schema is a validated plain identifier, so it can stand as a literal in this multi-statement command.
        Migrate = $"""
            SELECT pg_advisory_xact_lock({PostgresQueries.MigrationLockClass}, hashtext('{schema}'));
            CREATE SCHEMA IF NOT EXISTS "{schema}";
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
        // One statement for a whole batch (unnest of columns); ON CONFLICT makes a re-sent event stay one row. The
        // expiry is the server clock plus the time to live ($10 null: kept until deleted).
        Append = $"""
            INSERT INTO {t} (event_id, task_id, queue, tenant, kind, attempt, token, worker, error, expires_at)
            SELECT e.*, now() + $10
            FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::smallint[], $6::integer[], $7::bigint[], $8::text[], $9::text[])
                 AS e(event_id, task_id, queue, tenant, kind, attempt, token, worker, error)
            ON CONFLICT (event_id) DO NOTHING
            """;
        // A task's history by task_events_task_idx, in event-id (= time) order; expired rows are invisible before deletion.
        History = $"SELECT {Columns} FROM {t} WHERE task_id = $1 AND (expires_at IS NULL OR expires_at > now()) ORDER BY event_id";
        // A queue's window as an event-id range ($2 ≤ id < $3, the UUIDv7 bounds of from/to), keyset-paged after $4.
        Window = $"""
            SELECT {Columns} FROM {t}
            WHERE queue = $1 AND event_id >= $2 AND event_id < $3 AND event_id > $4 AND (expires_at IS NULL OR expires_at > now())
            ORDER BY event_id
            LIMIT $5
            """;
        // Batched (each batch its own short transaction, so no long lock or huge WAL burst) and SKIP LOCKED, so the
        // upkeep running on every node splits the work instead of queueing behind each other.
        DeleteExpired = $"""
            DELETE FROM {t} WHERE event_id IN (
                SELECT event_id FROM {t} WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)
            """;
    }

    public string Migrate { get; }
    public string Append { get; }
    public string History { get; }
    public string Window { get; }
    public string DeleteExpired { get; }
}
