namespace Konduit.Chaos.Tests;

/// <summary>
/// The suite's own SQL: the server-side counters every verdict is read from. <c>{s}</c> is the store's schema,
/// <c>{fx}</c> the effects schema; both are identifiers the suite generates (chaos_[a-z0-9_]+), never user input.
/// </summary>
internal static class ChaosQueries
{
    public static string Format(string sql, string schema, string effectsSchema) =>
        sql.Replace("{s}", schema, StringComparison.Ordinal).Replace("{fx}", effectsSchema, StringComparison.Ordinal);

    // One row per handler run; a run under a token already recorded bumps runs (the worker's ON CONFLICT), so a
    // repeated fencing token shows as runs > 1 instead of a failed handler.
    public const string CreateEffects = """
        CREATE SCHEMA IF NOT EXISTS {fx};
        CREATE TABLE {fx}.effects (
            task_id     uuid        NOT NULL,
            lease_token bigint      NOT NULL,
            attempt     integer     NOT NULL,
            worker_pid  integer     NOT NULL,
            runs        integer     NOT NULL DEFAULT 1,
            recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            PRIMARY KEY (task_id, lease_token)
        );
        """;

    // The store's own history, written by the server: every state change and every new lease token of a task row
    // (an UPDATE of tasks, or its move into task_history).
    // AFTER ROW and insert-only, so it sees exactly what committed, whichever client (or sweeper) wrote it. The old
    // owner and store expiry tell who held a lease that ended, and whether it ended before its store lease ran out
    // (the Kafka lease monitor's fenced expiry) or after (a sweeper).
    public const string CreateHistory = """
        CREATE TABLE {s}.chaos_history (
            task_id        uuid        NOT NULL,
            old_state      smallint    NOT NULL,
            new_state      smallint    NOT NULL,
            old_token      bigint      NOT NULL,
            new_token      bigint      NOT NULL,
            attempts       integer     NOT NULL,
            old_owner      text,
            old_expires_at timestamptz,
            at             timestamptz NOT NULL DEFAULT clock_timestamp()
        );
        CREATE FUNCTION {s}.chaos_record() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO {s}.chaos_history (task_id, old_state, new_state, old_token, new_token, attempts, old_owner, old_expires_at)
            VALUES (NEW.id, OLD.state, NEW.state, OLD.lease_token, NEW.lease_token, NEW.attempts, OLD.lease_owner, OLD.lease_expires_at);
            RETURN NULL;
        END $$;
        CREATE TRIGGER chaos_history AFTER UPDATE ON {s}.tasks FOR EACH ROW
            WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.lease_token IS DISTINCT FROM NEW.lease_token)
            EXECUTE FUNCTION {s}.chaos_record();
        -- A task that becomes terminal leaves tasks for task_history in one statement (store migration 6). AFTER ROW
        -- triggers fire at the statement's end, when its insert into task_history is visible: the state it entered.
        CREATE FUNCTION {s}.chaos_record_moved() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO {s}.chaos_history (task_id, old_state, new_state, old_token, new_token, attempts, old_owner, old_expires_at)
            SELECT OLD.id, OLD.state, h.state, OLD.lease_token, h.lease_token, h.attempts, OLD.lease_owner, OLD.lease_expires_at
            FROM {s}.task_history h WHERE h.id = OLD.id;
            RETURN NULL;
        END $$;
        CREATE TRIGGER chaos_history_moved AFTER DELETE ON {s}.tasks FOR EACH ROW EXECUTE FUNCTION {s}.chaos_record_moved();
        -- Every task, live (tasks) or finished (task_history), for the counts below.
        CREATE VIEW {s}.chaos_tasks AS
            SELECT id, queue, state, attempts, lease_token, finished_at FROM {s}.tasks
            UNION ALL
            SELECT id, queue, state, attempts, lease_token, finished_at FROM {s}.task_history;
        """;

    // ANY($1) over the acknowledged ids: one round trip however many were acknowledged.
    public const string CountPresent = "SELECT count(*) FROM {s}.chaos_tasks WHERE id = ANY($1)";

    public const string CountByState = "SELECT state, count(*) FROM {s}.chaos_tasks WHERE queue = $1 GROUP BY state";

    // Server timestamps only: rates never depend on the test's or a worker's clock reading.
    public const string FinishedTimes = "SELECT finished_at FROM {s}.task_history WHERE queue = $1 AND state = 2";

    // A completion "accepted" is a committed transition into Succeeded; more than one per task is a double acceptance.
    public const string CountDoubleAccepted = """
        SELECT count(*) FROM (
            SELECT task_id FROM {s}.chaos_history WHERE new_state = 2 AND old_state <> 2
            GROUP BY task_id HAVING count(*) > 1) d
        """;

    // Every lease bumps the token; attempts must have been counted for each of them, reclaims included.
    public const string CountAttemptsNotCounted = """
        SELECT count(*) FROM {s}.chaos_tasks t
        LEFT JOIN (SELECT task_id, count(*) AS leases FROM {s}.chaos_history WHERE new_token <> old_token GROUP BY task_id) l
            ON l.task_id = t.id
        WHERE t.queue = $1 AND t.attempts <> coalesce(l.leases, 0)
        """;

    // Running back to Pending: an expired lease reclaimed by a sweeper, or a failed attempt scheduled for retry.
    public const string CountReturnedToPending = "SELECT count(*) FROM {s}.chaos_history WHERE old_state = 1 AND new_state = 0";

    public const string ReadEffects = "SELECT task_id, lease_token, runs FROM {fx}.effects";
}
