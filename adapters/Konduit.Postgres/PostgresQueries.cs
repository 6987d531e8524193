namespace Konduit.Postgres;

/// <summary>
/// Every SQL statement of the store, built once per schema. The schema name is the only thing interpolated: it
/// was validated as a plain identifier and is quoted here once. Everything else travels as parameters.
/// </summary>
internal sealed class PostgresQueries
{
    /// <summary>The newest schema version <see cref="Migrations"/> creates.</summary>
    public const int LatestVersion = 8;

    /// <summary>The first version whose server-clock columns have defaults (the COPY path omits them).</summary>
    public const int CopyVersion = 2;

    /// <summary>How often (at most) a store's sweep folds idle task_counts rows into slot 0.</summary>
    public static readonly TimeSpan FoldCountsInterval = TimeSpan.FromMinutes(1);

    /// <summary>A task_counts row no statement has touched for this long is folded into slot 0 (its connection is idle or gone).</summary>
    public static readonly TimeSpan FoldCountsIdle = TimeSpan.FromMinutes(10);

    /// <summary>First key of the two-int advisory lock that serializes migrations ('KNDT').</summary>
    public const int MigrationLockClass = 0x4B4E4454;

    /// <summary>The first version with the history table (terminal tasks leave <c>tasks</c>).</summary>
    public const int HistoryVersion = 6;

    /// <summary>How many UTC days of history partitions the upkeep keeps made ahead of today.</summary>
    public const int HistoryDaysAhead = 7;

    /// <summary>Rows reclaimed or purged per statement: keeps each transaction and its lock set short.</summary>
    public const int SweepBatchSize = 500;

    // The snapshot column list; read by ordinal (see PostgresRows.ReadSnapshot).
    private const string SnapshotColumns =
        "id, queue, state, priority, attempts, max_attempts, lease_token, run_at, created_at, updated_at, " +
        "started_at, finished_at, lease_owner, lease_expires_at, idempotency_key, tenant, headers, payload, result, errors";

    // The columns of tasks and task_history at schema version 6, in table order (task_history is created LIKE tasks);
    // migration 6 moves rows by this list, so it stays as it was when that migration shipped.
    private const string TaskColumnsV6 =
        "id, queue, state, priority, run_at, attempts, max_attempts, lease_token, lease_owner, lease_expires_at, tenant, " +
        "idempotency_key, headers, retry_policy, payload, result, errors, created_at, updated_at, started_at, finished_at";

    // Every column of tasks and task_history today, in table order: migration 7 appended `scheduled` to both.
    private const string TaskColumns = TaskColumnsV6 + ", scheduled";

    public PostgresQueries(string schema)
    {
        Schema = schema;
        QuotedSchema = "\"" + schema + "\"";
        // LISTEN takes an identifier (max 63 bytes). Long schema names are cut: schemas sharing a 58-character
        // prefix then share a channel, which only costs spurious wake-ups (a signal means "may be available").
        var channel = schema + ".wake";
        Channel = channel.Length <= 63 ? channel : channel[..63];
        var s = QuotedSchema;
        // The task_counts upsert of one statement (migration 5): `deltas` is a query of (queue, state, delta) rows for
        // the terminal states the statement entered (+1) or left (-1), added to this connection's own rows. Grouped,
        // so each counter row is hit once per statement, and sorted, so a fold and a writer lock rows in one order.
        // A data-modifying CTE runs whether or not the final SELECT reads it.
        string Counted(string deltas) => $"""
            counted AS (
                INSERT INTO {s}.task_counts AS c (queue, state, slot, tasks)
                SELECT queue, state, pg_backend_pid(), sum(delta) FROM ({deltas}) AS d(queue, state, delta)
                GROUP BY queue, state
                ORDER BY queue, state
                ON CONFLICT (queue, state, slot) DO UPDATE SET tasks = c.tasks + excluded.tasks, touched_at = now()
            )
            """;
        // A task becomes terminal by moving (migration 6): the statement DELETEs it from tasks RETURNING every column
        // (the CTE `from`) and this inserts it into task_history as `state`, finished and with no lease. `result` and
        // `errors` are expressions over the deleted row `d`. A data-modifying CTE runs whether or not anything reads it.
        string Retire(string name, string from, string state, string result = "d.result", string errors = "d.errors") => $"""
            {name} AS (
                INSERT INTO {s}.task_history ({TaskColumns})
                SELECT d.id, d.queue, {state}, d.priority, d.run_at, d.attempts, d.max_attempts, d.lease_token, d.lease_owner,
                       NULL, d.tenant, d.idempotency_key, d.headers, d.retry_policy, d.payload, {result}, {errors},
                       d.created_at, now(), d.started_at, now(), false
                FROM {from} d
            )
            """;
        // Redrive moves the other way: the row deleted from task_history (`from`) goes back to tasks pending and due now,
        // attempts reset, errors and the fencing token kept (tokens never go back).
        string Revive(string name, string from) => $"""
            {name} AS (
                INSERT INTO {s}.tasks ({TaskColumns})
                SELECT d.id, d.queue, 0, d.priority, now(), 0, d.max_attempts, d.lease_token, d.lease_owner,
                       NULL, d.tenant, d.idempotency_key, d.headers, d.retry_policy, d.payload, d.result, d.errors,
                       d.created_at, now(), d.started_at, NULL, false
                FROM {from} d
            )
            """;
        // The error entry a statement appends for the attempt that just ended (jsonb: attempt, message, server time).
        static string AppendError(string row, string message) =>
            $"{row}.errors || jsonb_build_array(jsonb_build_object('attempt', {row}.attempts, 'message', {message}, 'at', now()))";

        Migrations =
        [
            (1, $"""
                -- Tasks. PK on id only (client-side UUIDv7, time-prefixed), so the table can later be range-partitioned
                -- on id without a unique constraint that would have to include the partition key.
                CREATE TABLE {s}.tasks (
                    id               uuid        NOT NULL,
                    queue            text        NOT NULL,
                    state            smallint    NOT NULL,  -- Konduit.TaskState: 0 pending, 1 running, 2 succeeded, 3 failed, 4 canceled
                    priority         integer     NOT NULL DEFAULT 0,
                    run_at           timestamptz NOT NULL,
                    attempts         integer     NOT NULL DEFAULT 0,
                    max_attempts     integer     NOT NULL,
                    lease_token      bigint      NOT NULL DEFAULT 0,  -- fencing token, bumped on every lease, never reset
                    lease_owner      text,
                    lease_expires_at timestamptz,
                    tenant           text,
                    idempotency_key  text,
                    headers          jsonb,
                    retry_policy     jsonb,
                    payload          bytea       NOT NULL,
                    result           bytea,
                    errors           jsonb       NOT NULL DEFAULT '[]'::jsonb,
                    created_at       timestamptz NOT NULL,
                    updated_at       timestamptz NOT NULL,
                    started_at       timestamptz,
                    finished_at      timestamptz,
                    CONSTRAINT tasks_pkey PRIMARY KEY (id)
                ) WITH (fillfactor = 85);  -- every task is updated 2+ times: room on the page keeps new row versions local
                -- Idempotency keys live in their own small table so that tasks carries no unique constraint besides its
                -- PK (partitioning-ready); the key row is inserted first and decides the race between enqueuers.
                CREATE TABLE {s}.task_keys (
                    queue           text NOT NULL,
                    idempotency_key text NOT NULL,
                    task_id         uuid NOT NULL,
                    CONSTRAINT task_keys_pkey PRIMARY KEY (queue, idempotency_key)
                );
                -- The lease scan: only pending rows, in exactly the ORDER BY of the lease statement.
                CREATE INDEX tasks_pending_idx ON {s}.tasks (queue, priority DESC, run_at, id) WHERE state = 0;
                -- The sweeper: running rows by expiry.
                CREATE INDEX tasks_running_expiry_idx ON {s}.tasks (lease_expires_at) WHERE state = 1;
                -- Queries: by queue (and state), newest first by id.
                CREATE INDEX tasks_queue_state_id_idx ON {s}.tasks (queue, state, id);
                -- Queries by tenant, newest first by id; most tasks have no tenant.
                CREATE INDEX tasks_tenant_id_idx ON {s}.tasks (tenant, id) WHERE tenant IS NOT NULL;
                -- Purge: terminal rows by finish time.
                CREATE INDEX tasks_finished_idx ON {s}.tasks (finished_at) WHERE state IN (2, 3, 4);
                """),
            (2, $"""
                -- Bloat control (ADR 001). Lease (0→1) and complete (1→2) change `state`, which the partial indexes
                -- depend on, so they can never be HOT; heartbeats change only lease_expires_at, and become HOT
                -- (a new row version on the same page, no index entries) once no index covers that column. The
                -- sweeper finds running rows through a partial index on id and filters their expiry: running rows
                -- are bounded by the workers' concurrency, so that scan stays small.
                CREATE INDEX tasks_running_idx ON {s}.tasks (id) WHERE state = 1;
                DROP INDEX {s}.tasks_running_expiry_idx;
                -- Room on each page for the row versions its updates write (HOT needs it; non-HOT versions stay
                -- local too), and autovacuum per table: vacuum after ~1 % dead rows instead of 20 % (dead entries in
                -- tasks_pending_idx are what the lease scan steps over), analyze often (the planner then sees
                -- running and finished rows as they are), and a larger cost budget so vacuum keeps up under churn.
                ALTER TABLE {s}.tasks SET (
                    fillfactor = 80,
                    autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
                    autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_vacuum_insert_threshold = 1000,
                    autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 1000,
                    autovacuum_vacuum_cost_limit = 1000, autovacuum_vacuum_cost_delay = 1);
                ALTER TABLE {s}.task_keys SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);
                -- Bulk enqueue by COPY omits the server-clock columns; they take now() like the INSERT path's now().
                ALTER TABLE {s}.tasks ALTER COLUMN run_at SET DEFAULT now(), ALTER COLUMN created_at SET DEFAULT now(),
                    ALTER COLUMN updated_at SET DEFAULT now();
                """),
            (3, $"""
                -- Queries by finish time (TaskQuery.FinishedFrom/FinishedTo), the operator's "failed tasks for tenant X
                -- in the last 24 h" (issue 15 item 1: a scan of every finished task without it). Partial on both
                -- columns: `tenant = $x` and `finished_at >= $y` prove the predicate even in a generic plan, and the
                -- many tasks without a tenant add no entry, so a completion pays one more index insert only when it
                -- has a tenant. Without a tenant, a finish-time query of terminal states reads tasks_finished_idx.
                CREATE INDEX tasks_tenant_finished_idx ON {s}.tasks (tenant, finished_at)
                    WHERE tenant IS NOT NULL AND finished_at IS NOT NULL;
                """),
            (4, $"""
                -- Paused queues (PauseQueueAsync): in the database, so every node's lease sees a pause at once. A row per
                -- paused queue, probed by primary key once per lease statement.
                CREATE TABLE {s}.paused_queues (
                    queue     text        NOT NULL PRIMARY KEY,
                    paused_at timestamptz NOT NULL DEFAULT now()
                );
                """),
            (5, $"""
                -- Terminal counts for GetStatsAsync (issue 15 item 4: counting them scanned every finished task, 459 ms
                -- at 1.5M rows). Every statement that moves a task into or out of a terminal state adds its delta to the
                -- row (queue, state, slot = its backend's pid): one upsert per statement, and no two live connections
                -- share a row, so completers never wait on each other's counter (a store-wide or per-queue row would
                -- serialize their commits). The sweep folds rows idle for FoldCountsIdle into slot 0 (FoldCounts), so
                -- a stats read sums about one row per recently writing connection per queue and state. Only `tasks` changes,
                -- which no index covers, so the upserts are HOT updates on pages kept half empty for them.
                CREATE TABLE {s}.task_counts (
                    queue text     NOT NULL,
                    state smallint NOT NULL,  -- 2 succeeded, 3 failed, 4 canceled
                    slot  integer  NOT NULL,  -- the writer's pg_backend_pid(); 0 = folded
                    tasks bigint   NOT NULL,  -- a slot's own sum may go negative (a purge in another slot); the queue's sum cannot
                    touched_at timestamptz NOT NULL DEFAULT now(),  -- the last statement that added to the row
                    CONSTRAINT task_counts_pkey PRIMARY KEY (queue, state, slot)
                ) WITH (fillfactor = 50, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
                        autovacuum_analyze_scale_factor = 0.2);
                -- The backfill must see every terminal task no statement of this version counts: SHARE blocks writers
                -- (of any version) from here to the migration's commit, so none finishes a task in between.
                LOCK TABLE {s}.tasks IN SHARE MODE;
                INSERT INTO {s}.task_counts (queue, state, slot, tasks)
                SELECT queue, state, 0, count(*) FROM {s}.tasks WHERE state IN (2, 3, 4) GROUP BY queue, state;
                """),
            (6, $"""
                -- History (issue 15, ADR 010): terminal tasks leave the hot table in the statement that finishes them,
                -- into task_history, range-partitioned by finish time in UTC days, so retention drops a partition
                -- instead of deleting rows one by one, and tasks keeps only pending and running rows. LIKE copies the
                -- columns in tasks' order (statements move rows by the one column list); the partition key must be in
                -- the primary key. Rows are written once and never updated (a redrive moves the row back), so the
                -- partitions keep the default fillfactor; a partitioned table takes no storage parameters anyway.
                CREATE TABLE {s}.task_history (LIKE {s}.tasks INCLUDING DEFAULTS) PARTITION BY RANGE (finished_at);
                ALTER TABLE {s}.task_history ALTER COLUMN finished_at SET NOT NULL,
                    ADD CONSTRAINT task_history_pkey PRIMARY KEY (id, finished_at);
                -- Queries and bulk redrive by queue (and state), newest first by id.
                CREATE INDEX task_history_queue_state_id_idx ON {s}.task_history (queue, state, id);
                -- Queries by tenant, newest first; and "failed tasks of tenant X in the last 24 h" (issue 15 item 1).
                CREATE INDEX task_history_tenant_id_idx ON {s}.task_history (tenant, id) WHERE tenant IS NOT NULL;
                CREATE INDEX task_history_tenant_finished_idx ON {s}.task_history (tenant, finished_at) WHERE tenant IS NOT NULL;
                -- Purge by age, and finish-time queries without a tenant.
                CREATE INDEX task_history_finished_idx ON {s}.task_history (finished_at);
                -- Rows whose day has no partition (upkeep stopped for longer than HistoryDaysAhead, or older rows moved
                -- here below) land in the default partition; add_history_partitions moves them out before it attaches
                -- their day, and retention deletes old ones row by row.
                CREATE TABLE {s}.task_history_default PARTITION OF {s}.task_history DEFAULT;

                -- Partition upkeep runs as the schema owner (SECURITY DEFINER), so a runtime role without DDL rights can
                -- make tomorrow's partition and drop expired ones; it may EXECUTE these two functions only. The schema
                -- name is fixed in the function text (a validated identifier, as everywhere in this file) and every
                -- other name is built with format('%I'); search_path is pinned so no object of the caller's can stand in.
                CREATE FUNCTION {s}.add_history_partitions(first_day date, last_day date) RETURNS integer
                LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
                DECLARE
                    sch constant text := {SqlLiteral(schema)};
                    day date;
                    part text;
                    lo timestamptz;
                    hi timestamptz;
                    made integer := 0;
                BEGIN
                    -- One maker per schema at a time: two sweepers would race on the same CREATE TABLE.
                    PERFORM pg_advisory_xact_lock({MigrationLockClass}, hashtext(sch || '.history'));
                    FOR day IN SELECT generate_series(first_day, last_day, interval '1 day')::date LOOP
                        part := 'task_history_p' || to_char(day, 'YYYYMMDD');
                        CONTINUE WHEN to_regclass(format('%I.%I', sch, part)) IS NOT NULL;
                        lo := day::timestamp AT TIME ZONE 'UTC';
                        hi := (day + 1)::timestamp AT TIME ZONE 'UTC';
                        EXECUTE format('CREATE TABLE %I.%I (LIKE %I.task_history INCLUDING DEFAULTS)', sch, part, sch);
                        -- ATTACH refuses a default partition that holds rows of the new range: move them first.
                        EXECUTE format('WITH moved AS (DELETE FROM %I.task_history_default WHERE finished_at >= $1 AND finished_at < $2 RETURNING *) '
                                       'INSERT INTO %I.%I SELECT * FROM moved', sch, sch, part) USING lo, hi;
                        -- ATTACH takes SHARE UPDATE EXCLUSIVE on the parent: completions go on meanwhile. It builds the
                        -- partition's indexes from the parent's.
                        EXECUTE format('ALTER TABLE %I.task_history ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)', sch, sch, part, lo, hi);
                        made := made + 1;
                    END LOOP;
                    RETURN made;
                END
                $fn$;

                -- Retention: drops every day partition that ended at or before `cutoff`, and returns what it held. Before
                -- a drop, in the same transaction, the partition's counts leave task_counts and its idempotency keys are
                -- freed, so a drop orphans nothing (issue 15: detaching a hand-made partition orphaned its keys). Only
                -- task_history's own partitions exist to be dropped: pending and running tasks are never in one.
                CREATE FUNCTION {s}.drop_history_partitions(cutoff timestamptz)
                RETURNS TABLE (id uuid, queue text, tenant text, state smallint)
                LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
                DECLARE
                    sch constant text := {SqlLiteral(schema)};
                    part text;
                BEGIN
                    -- One dropper per schema; a second sweeper leaves at once (the next sweep retries).
                    IF NOT pg_try_advisory_xact_lock({MigrationLockClass}, hashtext(sch || '.history')) THEN RETURN; END IF;
                    -- DROP needs ACCESS EXCLUSIVE on task_history, which waits for every running completion and holds the
                    -- next ones: give up after a short wait and let the next sweep try, rather than stall the queue.
                    PERFORM set_config('lock_timeout', '2s', true);
                    FOR part IN
                        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                        WHERE i.inhparent = format('%I.task_history', sch)::regclass
                          AND length(c.relname) = 22 AND c.relname ~ '^task_history_p[0-9]+$'
                          AND to_date(substr(c.relname, 15), 'YYYYMMDD') + 1 <= (cutoff AT TIME ZONE 'UTC')::date
                        ORDER BY c.relname
                    LOOP
                        -- Parent first, as every writer locks it before the partition: no lock-order cycle.
                        EXECUTE format('LOCK TABLE %I.task_history IN ACCESS EXCLUSIVE MODE', sch);
                        RETURN QUERY EXECUTE format(
                            'WITH gone AS (SELECT h.id, h.queue, h.tenant, h.state, h.idempotency_key FROM %I.%I h), '
                            'freed AS (DELETE FROM %I.task_keys k USING gone g '
                            '          WHERE g.idempotency_key IS NOT NULL AND k.queue = g.queue AND k.idempotency_key = g.idempotency_key AND k.task_id = g.id), '
                            'uncounted AS (INSERT INTO %I.task_counts AS c (queue, state, slot, tasks) '
                            '              SELECT g.queue, g.state, 0, -count(*) FROM gone g GROUP BY g.queue, g.state '
                            '              ON CONFLICT (queue, state, slot) DO UPDATE SET tasks = c.tasks + excluded.tasks) '
                            'SELECT g.id, g.queue, g.tenant, g.state FROM gone g', sch, part, sch, sch);
                        EXECUTE format('DROP TABLE %I.%I', sch, part);
                    END LOOP;
                END
                $fn$;
                REVOKE ALL ON FUNCTION {s}.add_history_partitions(date, date) FROM PUBLIC;
                REVOKE ALL ON FUNCTION {s}.drop_history_partitions(timestamptz) FROM PUBLIC;
                SELECT {s}.add_history_partitions(((now() AT TIME ZONE 'UTC')::date) - 1, ((now() AT TIME ZONE 'UTC')::date) + {HistoryDaysAhead});

                -- Existing terminal rows move now. SHARE ROW EXCLUSIVE keeps writers of any version out until commit,
                -- so no task finishes in tasks meanwhile; older rows land in the default partition.
                LOCK TABLE {s}.tasks IN SHARE ROW EXCLUSIVE MODE;
                WITH moved AS (DELETE FROM {s}.tasks WHERE state IN (2, 3, 4) RETURNING *)
                INSERT INTO {s}.task_history ({TaskColumnsV6})
                SELECT id, queue, state, priority, run_at, attempts, max_attempts, lease_token, lease_owner, NULL, tenant,
                       idempotency_key, headers, retry_policy, payload, result, errors, created_at, updated_at, started_at,
                       coalesce(finished_at, updated_at)
                FROM moved;
                -- tasks now holds live rows only, which have no finish time. tasks_finished_idx stays (empty) for the
                -- upkeep's MoveStrayFinished: rows an older version of the store finishes in place during a rolling upgrade.
                DROP INDEX {s}.tasks_tenant_finished_idx;
                """),
            (7, $"""
                -- Scheduled tasks leave the lease index (issue 15 item 2, ADR 010). The lease scan is ordered by
                -- priority first, so pending tasks not yet due but of higher priority sat in front of every due one: a
                -- lease stepped over all of them (200,000 due tomorrow: 2,535 buffers instead of ~100). `scheduled` is set
                -- by the statement that makes a task pending with a future run-at, and cleared by the sweep once the
                -- run-at has passed (PromoteDue) or by the lease that takes the task. It is only a hint about which index
                -- holds the row: every lease still checks run_at <= now(), so a wrong guess (an older node's enqueue, a
                -- client clock behind the server's) costs index steps, never a wrong lease. Fast default: no rewrite.
                ALTER TABLE {s}.tasks ADD COLUMN scheduled boolean NOT NULL DEFAULT false;
                ALTER TABLE {s}.task_history ADD COLUMN scheduled boolean NOT NULL DEFAULT false;
                UPDATE {s}.tasks SET scheduled = true WHERE state = 0 AND run_at > now();
                DROP INDEX {s}.tasks_pending_idx;
                -- The lease order, for tasks that were due when they became pending.
                CREATE INDEX tasks_pending_idx ON {s}.tasks (queue, priority DESC, run_at, id) WHERE state = 0 AND NOT scheduled;
                -- Scheduled tasks by run-at: a lease reads only the ones of its queue that came due since the last sweep.
                CREATE INDEX tasks_scheduled_idx ON {s}.tasks (queue, run_at, id) WHERE state = 0 AND scheduled;
                """),
            (8, $"""
                -- One index fewer for a lease to write (issue 15, ADR 010 part 7). A lease is never HOT (it changes `state`),
                -- so it adds an entry to every index whose predicate the running row meets: the primary key,
                -- tasks_running_idx and, until now, tasks_queue_state_id_idx. Since migration 6 that index held only
                -- pending and running rows, and it could not even serve its query: `state = ANY(...)` gives no id order
                -- on (queue, state, id), so "pending tasks of queue X, newest first" walked the primary key. Pending rows
                -- get a (queue, id) index of their own, which a lease leaves (the row no longer meets its predicate) and
                -- which reads that page in order; running rows of a queue are found through tasks_running_idx (id), bounded
                -- by the workers' concurrency. The batched lease-and-complete cycle took 23 % less server CPU per task.
                CREATE INDEX tasks_pending_id_idx ON {s}.tasks (queue, id) WHERE state = 0;
                DROP INDEX {s}.tasks_queue_state_id_idx;
                """),
        ];

        // Serializes concurrent migrators (many nodes at start-up) on a lock keyed by schema name; released at commit.
        // Taken before CREATE SCHEMA because concurrent CREATE SCHEMA IF NOT EXISTS can still fail on a unique index.
        MigrationLock = "SELECT pg_advisory_xact_lock($1, hashtext($2))";
        MigrationPrepare = $"""
            CREATE SCHEMA IF NOT EXISTS {s};
            CREATE TABLE IF NOT EXISTS {s}.schema_version (
                version    integer     NOT NULL PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """;
        // Whether the version table exists, read without DDL so a runtime role without CREATE rights can ask (to_regclass
        // takes the quoted name as a value: nothing is interpolated here).
        VersionTableExists = "SELECT to_regclass($1) IS NOT NULL";
        VersionTableName = s + ".schema_version";
        // The applied version; 0 on a fresh schema.
        CurrentVersion = $"SELECT coalesce(max(version), 0) FROM {s}.schema_version";
        RecordVersion = $"INSERT INTO {s}.schema_version (version) VALUES ($1)";

        // One statement for single and batch enqueue: the key insert decides races (ON CONFLICT DO NOTHING waits
        // for a concurrent inserter and then yields), and tasks are inserted only for rows without a key or whose
        // key row this statement inserted.
        var enqueueCore = $"""
            WITH input AS (
                SELECT * FROM unnest($1::uuid[], $2::text[], $3::integer[], $4::timestamptz[], $5::integer[], $6::text[],
                                     $7::text[], $8::jsonb[], $9::jsonb[], $10::bytea[])
                    AS i(id, queue, priority, run_at, max_attempts, tenant, idempotency_key, headers, retry_policy, payload)
            ),
            keys AS (
                INSERT INTO {s}.task_keys (queue, idempotency_key, task_id)
                SELECT queue, idempotency_key, id FROM input WHERE idempotency_key IS NOT NULL
                ON CONFLICT DO NOTHING
                RETURNING task_id
            ),
            inserted AS (
                INSERT INTO {s}.tasks (id, queue, state, priority, run_at, max_attempts, tenant, idempotency_key, headers,
                                       retry_policy, payload, created_at, updated_at, scheduled)
                SELECT id, queue, 0, priority, coalesce(run_at, now()), max_attempts, tenant, idempotency_key, headers,
                       retry_policy, payload, now(), now(), coalesce(run_at, now()) > now()
                FROM input
                WHERE idempotency_key IS NULL OR id IN (SELECT task_id FROM keys)
                RETURNING id, queue
            )
            """;
        // A single enqueue outside a caller's transaction: the same rules as enqueueCore for one row, with scalar
        // parameters (no arrays to build, bind and unnest). $7 = idempotency key: the key row is inserted first and
        // the task only if this statement won the key; no row back = the key belongs to another task.
        EnqueueOne = $"""
            WITH keys AS (
                INSERT INTO {s}.task_keys (queue, idempotency_key, task_id)
                SELECT $2, $7, $1 WHERE $7::text IS NOT NULL
                ON CONFLICT DO NOTHING
                RETURNING task_id
            )
            INSERT INTO {s}.tasks (id, queue, state, priority, run_at, max_attempts, tenant, idempotency_key, headers,
                                   retry_policy, payload, created_at, updated_at, scheduled)
            SELECT $1, $2, 0, $3, coalesce($4, now()), $5, $6, $7, $8, $9, $10, now(), now(), coalesce($4, now()) > now()
            WHERE $7::text IS NULL OR EXISTS (SELECT FROM keys)
            RETURNING id
            """;
        // The winner of a key race lost by EnqueueOne (none: the key is free again). A key whose task row is gone
        // by a route other than PurgeAsync (a manual DELETE, a dropped partition) is deleted here and reads as free,
        // so the enqueue goes round once more (issue 13 item 7). Only the taken-key path runs this: the common path
        // (no key, fresh key) pays nothing, and this one pays a primary-key probe inside its existing round trip.
        // The outer SELECT reads the snapshot from before the CTE's DELETE, hence the NOT EXISTS on `stale`.
        ExistingKey = $"""
            WITH stale AS (
                DELETE FROM {s}.task_keys k
                WHERE k.queue = $1 AND k.idempotency_key = $2 AND NOT EXISTS (SELECT FROM {s}.tasks t WHERE t.id = k.task_id)
                  AND NOT EXISTS (SELECT FROM {s}.task_history h WHERE h.id = k.task_id)
                RETURNING k.task_id
            )
            SELECT k.task_id FROM {s}.task_keys k
            WHERE k.queue = $1 AND k.idempotency_key = $2 AND NOT EXISTS (SELECT FROM stale)
            """;
        // Bulk enqueue: binary COPY straight into tasks (keyless requests only: COPY cannot skip a taken key).
        // run_at is listed only when every row has one; omitted columns take their defaults (now(), 0, '[]', false).
        // COPY cannot compute `scheduled` from run_at, so the client sends it by its own clock: it is only a hint (see
        // migration 7), and a clock off by a little costs a few index steps, never a wrong lease.
        CopyTasks = $"COPY {s}.tasks (id, queue, state, priority, max_attempts, tenant, headers, retry_policy, payload) FROM STDIN (FORMAT BINARY)";
        CopyTasksWithRunAt = $"COPY {s}.tasks (id, queue, state, priority, max_attempts, tenant, headers, retry_policy, payload, run_at, scheduled) FROM STDIN (FORMAT BINARY)";
        // The store's own enqueues: no NOTIFY here. A notifying transaction holds a database-wide lock through its
        // commit (and fsync), which serializes concurrent enqueues; PostgresNotifier wakes workers after commit.
        EnqueueQuiet = enqueueCore + "SELECT id FROM inserted";
        // Enqueue inside the caller's transaction: NOTIFY in the statement, because only a transactional NOTIFY
        // fires exactly when (and if) the caller commits. The final SELECT references the notify CTE so that it
        // runs (unreferenced SELECT CTEs are skipped).
        EnqueueInTransaction = enqueueCore + """
            , woke AS (
                SELECT count(pg_notify($11, q.queue)) AS n FROM (SELECT DISTINCT queue FROM inserted) q
            )
            SELECT inserted.id FROM inserted, woke
            """;
        // The out-of-band wake-up: one statement per coalesced set of queues. Notifications are not durable anyway,
        // so this transaction need not wait for its commit record to reach disk.
        Notify = """
            SELECT count(pg_notify($1, q))
            FROM (SELECT set_config('synchronous_commit', 'off', true)) AS c, unnest($2::text[]) AS q
            """;
        // The losers of key races: read the winner's id in a new statement (READ COMMITTED sees the committed winner).
        // As in ExistingKey, keys whose task row is gone are deleted and left out (free again: issue 13 item 7).
        ExistingKeys = $"""
            WITH wanted AS (
                SELECT * FROM unnest($1::text[], $2::text[]) AS i(queue, idempotency_key)
            ),
            stale AS (
                DELETE FROM {s}.task_keys k USING wanted w
                WHERE k.queue = w.queue AND k.idempotency_key = w.idempotency_key
                  AND NOT EXISTS (SELECT FROM {s}.tasks t WHERE t.id = k.task_id)
                  AND NOT EXISTS (SELECT FROM {s}.task_history h WHERE h.id = k.task_id)
                RETURNING k.queue, k.idempotency_key
            )
            SELECT k.queue, k.idempotency_key, k.task_id
            FROM {s}.task_keys k
            JOIN wanted w ON k.queue = w.queue AND k.idempotency_key = w.idempotency_key
            WHERE NOT EXISTS (SELECT FROM stale d WHERE d.queue = k.queue AND d.idempotency_key = k.idempotency_key)
            """;

        // The lease update for the rows a `picked` CTE ($3 worker, $4 duration) selected, read back by
        // PostgresRows.ReadLease; shared by Lease (the queue's head) and LeaseByIds (ids a dispatcher names).
        // `id = ANY(ARRAY(picked))`, not a join with picked (issue 15 item 3): a generic plan guesses `LIMIT $2` at 10 %
        // of the pending rows and then joined them by hashing a seq scan of the whole table; an array of ids can only
        // be probed on the primary key. The rows are the ones picked locked, so the update re-finds each of them.
        var leasePicked = $"""
            UPDATE {s}.tasks t
            SET state = 1, scheduled = false, attempts = t.attempts + 1, lease_token = t.lease_token + 1, lease_owner = $3,
                lease_expires_at = now() + $4, started_at = coalesce(t.started_at, now()), updated_at = now()
            WHERE t.id = ANY(ARRAY(SELECT id FROM picked))
            RETURNING t.id, t.lease_token, t.attempts, t.max_attempts, t.lease_expires_at, t.payload, t.priority,
                      t.tenant, t.headers, t.retry_policy, t.created_at, t.run_at
            """;
        // One statement: SKIP LOCKED lets concurrent leasers take disjoint rows without waiting; a row changed by a
        // committed concurrent leaser is re-checked under FOR UPDATE and dropped. RETURNING order is unspecified,
        // so the store re-sorts the leases.
        // The paused-queue probe references only $1, so PostgreSQL runs it once per statement (a one-time filter on the
        // scan: a primary-key probe of a tiny table), not per row; a paused queue's scan never starts.
        // Two heads, merged (migration 7): `due` walks tasks_pending_idx in lease order, which holds no task that was
        // scheduled for later, and `came_due` reads tasks_scheduled_idx for this queue's scheduled tasks whose run-at
        // has passed (the few since the last sweep promoted them; one index probe when there are none). Each head
        // takes up to $2, so the merged first $2 are exactly the first $2 due tasks in lease order. Locked rows of
        // `came_due` that lose the merge stay locked only until this statement commits.
        var leaseHeads = $"""
            due AS (
                SELECT id, priority, run_at FROM {s}.tasks
                WHERE queue = $1 AND state = 0 AND NOT scheduled AND run_at <= now()
                  AND NOT EXISTS (SELECT FROM {s}.paused_queues p WHERE p.queue = $1)
                ORDER BY priority DESC, run_at, id
                LIMIT $2
                FOR UPDATE SKIP LOCKED
            ),
            came_due AS (
                SELECT id, priority, run_at FROM {s}.tasks
                WHERE queue = $1 AND state = 0 AND scheduled AND run_at <= now()
                  AND NOT EXISTS (SELECT FROM {s}.paused_queues p WHERE p.queue = $1)
                ORDER BY priority DESC, run_at, id
                LIMIT $2
                FOR UPDATE SKIP LOCKED
            ),
            picked AS (
                SELECT id FROM (SELECT * FROM due UNION ALL SELECT * FROM came_due) c
                ORDER BY priority DESC, run_at, id
                LIMIT $2
            )
            """;
        Lease = $"""
            WITH {leaseHeads}
            {leasePicked}
            """;
        // The dispatcher seam (PostgresTaskStore.LeaseByIdsAsync): the same fenced lease update over named ids ($1)
        // instead of the queue's head. Only rows still pending and due in the queue are taken (claimed, terminal or
        // not-yet-due ids fall out here); SKIP LOCKED + the FOR UPDATE re-check keep two claimers of one id from both
        // winning.
        LeaseByIds = $"""
            WITH picked AS (
                SELECT id FROM {s}.tasks
                WHERE id = ANY($1) AND queue = $2 AND state = 0 AND run_at <= now()
                  AND NOT EXISTS (SELECT FROM {s}.paused_queues p WHERE p.queue = $2)
                ORDER BY priority DESC, run_at, id
                FOR UPDATE SKIP LOCKED
            )
            {leasePicked}
            """;
        // The dispatcher seam (PostgresTaskStore.ReadDueIdsAsync): the queue's pending, due ids in lease order, for a
        // dispatcher rebuilding its hints; the lease's two heads (tasks_pending_idx in this order, and the scheduled
        // tasks that came due), merged.
        DueIds = $"""
            SELECT id FROM (
                (SELECT id, priority, run_at FROM {s}.tasks
                 WHERE queue = $1 AND state = 0 AND NOT scheduled AND run_at <= now()
                 ORDER BY priority DESC, run_at, id LIMIT $2)
                UNION ALL
                (SELECT id, priority, run_at FROM {s}.tasks
                 WHERE queue = $1 AND state = 0 AND scheduled AND run_at <= now()
                 ORDER BY priority DESC, run_at, id LIMIT $2)
            ) c
            ORDER BY priority DESC, run_at, id
            LIMIT $2
            """;

        // The lease-validity predicate ($1 id, $2 token) shared by heartbeat, complete and fail: running, same
        // fencing token, not expired by the server clock. Zero rows means the lease is lost.
        // `state + 0 = 1`, not `state = 1`: the plain form proves the sweeper's partial index (WHERE state = 1), and
        // with statistics gathered while the rows were pending (autovacuum analyzes right after a bulk enqueue) the
        // planner then costs "running rows with lease_expires_at > now()" at one row and scans that index instead of
        // the primary key, i.e. every running row per statement (per unnest row in CompleteMany: 256 × 30k
        // comparisons, ~2 s). The expression keeps the same meaning and leaves the primary key the only access path.
        const string runningFilter = "state + 0 = 1";
        const string validLease = "id = $1 AND lease_token = $2 AND " + runningFilter + " AND lease_expires_at > now()";

        // A heartbeat is not a state change, so updated_at stays.
        Heartbeat = $"""
            UPDATE {s}.tasks SET lease_expires_at = now() + $3
            WHERE {validLease}
            RETURNING lease_expires_at
            """;
        // Batch heartbeat: one statement for all of a worker's leases (issue 11 item 3). unnest pairs each id with its
        // token and the join applies the heartbeat's validity test per row (fenced like CompleteMany); like the
        // single heartbeat it sets only lease_expires_at, which no index covers, so every row update stays HOT.
        // RETURNING the token lets the store tell a renewed lease from a stale copy of the same id.
        HeartbeatMany = $"""
            UPDATE {s}.tasks t SET lease_expires_at = now() + $3
            FROM unnest($1::uuid[], $2::bigint[]) AS h(id, token)
            WHERE t.id = h.id AND t.lease_token = h.token AND t.{runningFilter} AND t.lease_expires_at > now()
            RETURNING t.id, t.lease_token, t.lease_expires_at
            """;
        // Leaving Running clears lease_expires_at (snapshots show it only while running); lease_owner is kept. The
        // count of rows (0 = lease lost) comes back as the only value.
        Complete = $"""
            WITH done AS (
                DELETE FROM {s}.tasks WHERE {validLease} RETURNING *
            ),
            {Retire("moved", "done", "2", result: "$3::bytea")},
            {Counted("SELECT queue, 2, 1 FROM done")}
            SELECT count(*) FROM done
            """;
        // Batch complete: unnest pairs each (id, token) with its result; the join applies the same validity test
        // per row. The store dedupes (id, token) pairs first so a lease repeated in the batch is accepted once.
        CompleteMany = $"""
            WITH done AS (
                DELETE FROM {s}.tasks t
                USING unnest($1::uuid[], $2::bigint[], $3::bytea[]) AS c(id, token, result)
                WHERE t.id = c.id AND t.lease_token = c.token AND t.{runningFilter} AND t.lease_expires_at > now()
                RETURNING t.*, c.result AS new_result
            ),
            {Retire("moved", "done", "2", result: "d.new_result")},
            {Counted("SELECT queue, 2, 1 FROM done")}
            SELECT id FROM done
            """;
        // Complete-and-lease (issue 15: one round trip per task on the unbatched path): Complete's fenced move to history
        // ($5 id, $6 token, $7 result) and Lease's two heads ($1 queue, $2 count, $3 worker, $4 duration) in one
        // statement, so one round trip and one commit. Both halves read one snapshot: the completed row is running, so
        // the lease heads never see it, and a stale token only makes `done` empty. The LEFT JOIN returns one row even
        // when nothing was leased, carrying the completion count (0 = lease lost) after the lease columns.
        CompleteAndLease = $"""
            WITH done AS (
                DELETE FROM {s}.tasks
                WHERE id = $5 AND lease_token = $6 AND {runningFilter} AND lease_expires_at > now()
                RETURNING *
            ),
            {Retire("moved", "done", "2", result: "$7::bytea")},
            {Counted("SELECT queue, 2, 1 FROM done")},
            {leaseHeads},
            leased AS (
                {leasePicked}
            )
            SELECT l.*, d.n FROM (SELECT count(*) AS n FROM done) d LEFT JOIN leased l ON true
            """;
        // The retry decision is made here, against the row's own attempts/max_attempts ($3 retryable, $4 delay);
        // the error is appended with the attempt it belongs to and the server time. SET expressions read the old row.
        // A retried task stays in tasks (UPDATE); a dead one moves to task_history (DELETE + insert). The two
        // predicates are complementary, so exactly one of the CTEs takes the row.
        Fail = $"""
            WITH retried AS (
                UPDATE {s}.tasks t
                SET state = 0, run_at = now() + $4, scheduled = $4 > interval '0', lease_expires_at = NULL,
                    errors = {AppendError("t", "$5::text")}, updated_at = now()
                WHERE {validLease} AND $3 AND attempts < max_attempts
                RETURNING t.queue, t.state, t.run_at
            ),
            dead AS (
                DELETE FROM {s}.tasks WHERE {validLease} AND NOT ($3 AND attempts < max_attempts) RETURNING *
            ),
            {Retire("buried", "dead", "3", errors: AppendError("d", "$5::text"))},
            failed AS (
                SELECT queue, state, run_at FROM retried UNION ALL SELECT queue, 3::smallint, run_at FROM dead
            ),
            woke AS (
                SELECT count(pg_notify($6, queue)) AS n FROM retried WHERE run_at <= now()
            ),
            {Counted("SELECT queue, 3, 1 FROM dead")}
            SELECT failed.state, failed.run_at FROM failed, woke
            """;
        // The cold path after a refused heartbeat/complete/fail: why was it refused (null row = gone). A task is in
        // exactly one of the two tables in any one snapshot (it moves in one statement).
        StateOf = $"""
            SELECT state FROM {s}.tasks WHERE id = $1
            UNION ALL
            SELECT state FROM {s}.task_history WHERE id = $1
            LIMIT 1
            """;

        // The sweeper, one batch: SKIP LOCKED keeps concurrent sweepers (and workers) from waiting on each other, and
        // FOR UPDATE re-checks the row so each expiry is reclaimed exactly once. Exhausted tasks are dead-lettered.
        // The update finds the locked rows by `id = ANY(ARRAY(expired))`, as the lease does: a generic plan's 10 % guess
        // for `LIMIT $1` cannot turn into a hash join over the whole table when many leases are running.
        ReclaimExpired = $"""
            WITH expired AS (
                SELECT id FROM {s}.tasks
                WHERE state = 1 AND lease_expires_at <= now()
                ORDER BY lease_expires_at
                LIMIT $1
                FOR UPDATE SKIP LOCKED
            ),
            requeued AS (
                UPDATE {s}.tasks t
                SET state = 0, run_at = now(), lease_expires_at = NULL, errors = {AppendError("t", "'lease expired'")},
                    updated_at = now()
                WHERE t.id = ANY(ARRAY(SELECT id FROM expired)) AND t.attempts < t.max_attempts
                RETURNING t.id, t.queue, t.tenant, t.attempts, t.lease_token, t.lease_owner, t.state
            ),
            dead AS (
                DELETE FROM {s}.tasks t
                WHERE t.id = ANY(ARRAY(SELECT id FROM expired)) AND t.attempts >= t.max_attempts
                RETURNING t.*
            ),
            {Retire("buried", "dead", "3", errors: AppendError("d", "'lease expired'"))},
            woke AS (
                SELECT count(pg_notify($2, q.queue)) AS n FROM (SELECT DISTINCT queue FROM requeued) q
            ),
            {Counted("SELECT queue, 3, 1 FROM dead")}
            -- One row per reclaimed task (so every node can record the transition); joining the one-row woke
            -- makes PostgreSQL evaluate it, since a plain SELECT CTE nobody reads never runs.
            SELECT r.id, r.queue, r.tenant, r.attempts, r.lease_token, r.lease_owner, r.state
            FROM (SELECT * FROM requeued
                  UNION ALL
                  SELECT id, queue, tenant, attempts, lease_token, lease_owner, 3::smallint FROM dead) r
            CROSS JOIN woke
            """;

        // The sweeper's transition for one named lease: fenced by (id, token, Running) rather than by expiry time,
        // since the caller (a lease monitor) decided the lease is dead; a re-leased task carries a newer token.
        ExpireLease = $"""
            WITH requeued AS (
                UPDATE {s}.tasks t
                SET state = 0, run_at = now(), lease_expires_at = NULL, errors = {AppendError("t", "'lease expired'")},
                    updated_at = now()
                WHERE t.id = $1 AND t.lease_token = $2 AND t.state = 1 AND t.attempts < t.max_attempts
                RETURNING t.id, t.queue, t.tenant, t.attempts, t.lease_token, t.lease_owner, t.state
            ),
            dead AS (
                DELETE FROM {s}.tasks t
                WHERE t.id = $1 AND t.lease_token = $2 AND t.state = 1 AND t.attempts >= t.max_attempts
                RETURNING t.*
            ),
            {Retire("buried", "dead", "3", errors: AppendError("d", "'lease expired'"))},
            woke AS (
                SELECT count(pg_notify($3, queue)) AS n FROM requeued
            ),
            {Counted("SELECT queue, 3, 1 FROM dead")}
            SELECT e.id, e.queue, e.tenant, e.attempts, e.lease_token, e.lease_owner, e.state
            FROM (SELECT * FROM requeued
                  UNION ALL
                  SELECT id, queue, tenant, attempts, lease_token, lease_owner, 3::smallint FROM dead) e
            CROSS JOIN woke
            """;

        // Cancel plus the pre-update state in one round trip: the outer SELECT sees the snapshot from before the
        // CTE's update, so (0 rows, null) = unknown id and (0 rows, terminal) = nothing to do.
        Cancel = $"""
            WITH canceled AS (
                DELETE FROM {s}.tasks WHERE id = $1 AND state IN (0, 1) RETURNING *
            ),
            {Retire("moved", "canceled", "4")},
            {Counted("SELECT queue, 4, 1 FROM canceled")}
            SELECT (SELECT count(*) FROM canceled), coalesce((SELECT state FROM {s}.tasks WHERE id = $1), (SELECT state FROM {s}.task_history WHERE id = $1 LIMIT 1))
            """;
        // Redrive moves the task back from history: attempts reset, errors and the fencing token kept (tokens never go
        // back), due now, wake a worker. The DELETE locks the row, so of two concurrent redrives one finds it gone and
        // reads its new state in the outer SELECT of its next try.
        Retry = $"""
            WITH revived AS (
                DELETE FROM {s}.task_history WHERE id = $1 AND state IN (3, 4) RETURNING *
            ),
            {Revive("back", "revived")},
            woke AS (
                SELECT count(pg_notify($2, queue)) AS n FROM revived
            ),
            {Counted("SELECT queue, state, -1 FROM revived")}
            SELECT (SELECT count(*) FROM revived), coalesce((SELECT state FROM {s}.tasks WHERE id = $1), (SELECT state FROM {s}.task_history WHERE id = $1 LIMIT 1)), (SELECT n FROM woke)
            """;

        // Bulk cancel and redrive = prefix + the query's filter fragments (PostgresAdmin.BuildBulk; @states always
        // names the eligible states) + suffix. One statement: the newest matching rows, locked with SKIP LOCKED (a row
        // another call is changing at that instant is left for the next call, never waited on, so no lock cycle with
        // batch completes), re-checked by the UPDATE's own state test, and reported by id. Redrive wakes each queue it
        // touched, like the single redrive; cancel wakes nobody, like the single cancel.
        CancelManyPrefix = $"""
            WITH picked AS (
                SELECT id FROM {s}.tasks WHERE true
            """;
        CancelManySuffix = $"""

                ORDER BY id DESC
                LIMIT @limit
                FOR UPDATE SKIP LOCKED
            ),
            canceled AS (
                DELETE FROM {s}.tasks t
                WHERE t.id = ANY(ARRAY(SELECT id FROM picked)) AND t.state IN (0, 1)
                RETURNING t.*
            ),
            {Retire("moved", "canceled", "4")},
            {Counted("SELECT queue, 4, 1 FROM canceled")}
            SELECT id FROM canceled
            """;
        // Redrive picks from history (only Failed and Canceled are eligible, and they live there).
        RedriveManyPrefix = $"""
            WITH picked AS (
                SELECT id FROM {s}.task_history WHERE true
            """;
        RedriveManySuffix = $"""

                ORDER BY id DESC
                LIMIT @limit
                FOR UPDATE SKIP LOCKED
            ),
            revived AS (
                DELETE FROM {s}.task_history h
                WHERE h.id = ANY(ARRAY(SELECT id FROM picked)) AND h.state IN (3, 4)
                RETURNING h.*
            ),
            {Revive("back", "revived")},
            woke AS (
                SELECT count(pg_notify(@channel, q.queue)) AS n FROM (SELECT DISTINCT queue FROM revived) q
            ),
            {Counted("SELECT queue, state, -1 FROM revived")}
            -- Joining the one-row woke makes PostgreSQL evaluate it (a SELECT CTE nobody reads never runs).
            SELECT r.id FROM revived r CROSS JOIN woke
            """;

        // Pause is idempotent: a second pause keeps the first one's time.
        PauseQueue = $"INSERT INTO {s}.paused_queues (queue) VALUES ($1) ON CONFLICT DO NOTHING";
        // Resume wakes the queue's workers only when it was paused; the final SELECT makes the notify CTE run.
        ResumeQueue = $"""
            WITH resumed AS (
                DELETE FROM {s}.paused_queues WHERE queue = $1 RETURNING queue
            )
            SELECT count(pg_notify($2, queue)) FROM resumed
            """;
        PausedQueues = $"""SELECT queue FROM {s}.paused_queues ORDER BY queue COLLATE "C" """;

        // Live rows in tasks, terminal ones in task_history: one snapshot sees the task in exactly one of them.
        Get = $"""
            SELECT {SnapshotColumns} FROM {s}.tasks WHERE id = $1
            UNION ALL
            SELECT {SnapshotColumns} FROM {s}.task_history WHERE id = $1
            LIMIT 1
            """;

        // Query = prefix + one constant fragment per filter present + suffix, per table the states can be in; with both
        // tables, each half is limited and ordered and the union merged by id (see PostgresAdmin.BuildQuery).
        QueryLivePrefix = $"SELECT {SnapshotColumns} FROM {s}.tasks WHERE true";
        QueryHistoryPrefix = $"SELECT {SnapshotColumns} FROM {s}.task_history WHERE true";

        // Ordinal order by queue name: COLLATE "C" compares bytes, which for the ASCII queue alphabet is .NET's ordinal.
        // Cost independent of the retained history (issue 15 item 4): pending and running rows are counted through
        // the partial indexes that hold only them (tasks_pending_idx and tasks_scheduled_idx, which between them hold
        // every pending row, carry run_at for due vs not yet due and the oldest due run-at; one now() for the whole
        // statement), terminal ones are task_counts' slot rows (migration 5).
        Stats = $"""
            WITH pending AS (
                SELECT queue, count(*) AS pending, count(*) FILTER (WHERE run_at <= now()) AS due,
                       min(run_at) FILTER (WHERE run_at <= now()) AS oldest_due
                FROM (SELECT queue, run_at FROM {s}.tasks WHERE state = 0 AND NOT scheduled
                      UNION ALL
                      SELECT queue, run_at FROM {s}.tasks WHERE state = 0 AND scheduled) p
                GROUP BY queue
            ),
            running AS (
                SELECT queue, count(*) AS running FROM {s}.tasks WHERE state = 1 GROUP BY queue
            ),
            finished AS (
                SELECT queue, sum(tasks) FILTER (WHERE state = 2) AS succeeded, sum(tasks) FILTER (WHERE state = 3) AS failed,
                       sum(tasks) FILTER (WHERE state = 4) AS canceled
                FROM {s}.task_counts GROUP BY queue
            ),
            queues AS (
                SELECT queue, coalesce(p.pending, 0) AS pending, coalesce(r.running, 0) AS running,
                       coalesce(f.succeeded, 0)::bigint AS succeeded, coalesce(f.failed, 0)::bigint AS failed,
                       coalesce(f.canceled, 0)::bigint AS canceled, coalesce(p.due, 0) AS due, p.oldest_due
                FROM pending p FULL JOIN running r USING (queue) FULL JOIN finished f USING (queue)
            )
            SELECT queue, pending, running, succeeded, failed, canceled, due, oldest_due
            FROM queues
            WHERE pending + running + succeeded + failed + canceled > 0
            ORDER BY queue COLLATE "C"
            """;

        // The sweep's upkeep of task_counts ($1 = FoldCountsIdle): rows no statement touched for that long (their
        // connection is idle or gone) move into slot 0, so the rows a stats read sums follow the connections that write
        // now, not every connection there ever was. Moving is exact whenever it runs (delete and add in one
        // transaction); a connection that writes again later just starts a new row.
        FoldCounts = $"""
            WITH gone AS (
                DELETE FROM {s}.task_counts c
                WHERE c.slot <> 0 AND c.touched_at < now() - $1
                RETURNING c.queue, c.state, c.tasks
            )
            INSERT INTO {s}.task_counts AS c (queue, state, slot, tasks)
            SELECT queue, state, 0, sum(tasks) FROM gone
            GROUP BY queue, state
            ORDER BY queue, state
            ON CONFLICT (queue, state, slot) DO UPDATE SET tasks = c.tasks + excluded.tasks
            """;

        // Purge, one batch: rows and their key rows go together, so the keys become free. SKIP LOCKED leaves rows a
        // concurrent redrive is moving alone; FOR UPDATE re-checks state and age. ($3 null = every queue.)
        // Shaped for generic plans too (issue 15 item 3): the delete probes the primary key with the array of picked ids
        // instead of hashing a seq scan of the table; each key row is found by a scalar subquery per deleted task (a
        // primary-key probe whatever the row estimate) and deleted by its ctid (key rows are never updated, so a ctid
        // names the row until it is deleted). `finished_at <= now() - $2` prunes the day partitions at executor start, and
        // oldest first keeps the pick on each partition's finish-time index, which LIMIT stops early: a bitmap scan of
        // (queue, state) collected every matching row of the default partition first (5,862 buffers at 1M finished).
        string PurgeFrom(string table) => $"""
            WITH doomed AS (
                SELECT id FROM {s}.{table}
                WHERE state IN (2, 3, 4) AND state = ANY($1) AND finished_at <= now() - $2 AND ($3::text IS NULL OR queue = $3)
                ORDER BY finished_at
                LIMIT $4
                FOR UPDATE SKIP LOCKED
            ),
            deleted AS (
                DELETE FROM {s}.{table} t WHERE t.id = ANY(ARRAY(SELECT id FROM doomed)) AND t.finished_at <= now() - $2
                RETURNING t.id, t.queue, t.tenant, t.state, t.idempotency_key
            ),
            freed AS (
                DELETE FROM {s}.task_keys k
                WHERE k.ctid = ANY(ARRAY(
                    SELECT (SELECT f.ctid FROM {s}.task_keys f
                            WHERE f.queue = d.queue AND f.idempotency_key = d.idempotency_key AND f.task_id = d.id)
                    FROM deleted d WHERE d.idempotency_key IS NOT NULL))
            ),
            {Counted("SELECT queue, state, -1 FROM deleted")}
            SELECT id, queue, tenant, state FROM deleted
            """;
        Purge = PurgeFrom("task_history");
        // Retention's row-by-row part: rows of the default partition (days that had no partition when they finished).
        PurgeDefaultPartition = PurgeFrom("task_history_default");

        // Partition upkeep (migration 6's functions): make the partitions of today and $1 days on; drop those that ended
        // $1 (an interval) ago or earlier by the server clock, returning what they held.
        // Today is the server's UTC day, as finished_at is the server's clock.
        AddHistoryPartitions = $"SELECT {s}.add_history_partitions((now() AT TIME ZONE 'UTC')::date, (now() AT TIME ZONE 'UTC')::date + $1)";
        DropHistoryPartitions = $"SELECT id, queue, tenant, state FROM {s}.drop_history_partitions(now() - $1)";
        // Rows that an older version of the store finished in place (a rolling upgrade) move to history, a batch at a
        // time; they were counted when they finished.
        // The sweep's promotion of scheduled tasks whose run-at has passed into the lease index (migration 7), at most
        // $1 per statement. A skip scan of tasks_scheduled_idx finds the queues that hold scheduled tasks (one probe
        // each, not one per task), and per queue the due ones are read by run-at; the rest of the index is never read.
        // Not a state change: updated_at stays, and the row keeps its place in lease order (priority, run_at, id).
        PromoteDue = $"""
            WITH RECURSIVE queues AS (
                (SELECT queue FROM {s}.tasks WHERE state = 0 AND scheduled ORDER BY queue LIMIT 1)
                UNION ALL
                SELECT (SELECT t.queue FROM {s}.tasks t WHERE t.state = 0 AND t.scheduled AND t.queue > q.queue ORDER BY t.queue LIMIT 1)
                FROM queues q WHERE q.queue IS NOT NULL
            ),
            promoted AS (
                UPDATE {s}.tasks t SET scheduled = false
                WHERE t.id = ANY(ARRAY(
                    SELECT d.id FROM queues q CROSS JOIN LATERAL (
                        SELECT id FROM {s}.tasks
                        WHERE queue = q.queue AND state = 0 AND scheduled AND run_at <= now()
                        ORDER BY run_at, id
                        LIMIT $1
                        FOR UPDATE SKIP LOCKED) d
                    WHERE q.queue IS NOT NULL
                    LIMIT $1))
                RETURNING 1
            )
            SELECT count(*) FROM promoted
            """;
        MoveStrayFinished = $"""
            WITH stray AS (
                DELETE FROM {s}.tasks t
                WHERE t.id = ANY(ARRAY(SELECT id FROM {s}.tasks WHERE state IN (2, 3, 4) LIMIT $1 FOR UPDATE SKIP LOCKED))
                  AND t.state IN (2, 3, 4)
                RETURNING t.*
            )
            INSERT INTO {s}.task_history ({TaskColumns})
            SELECT id, queue, state, priority, run_at, attempts, max_attempts, lease_token, lease_owner, NULL, tenant,
                   idempotency_key, headers, retry_policy, payload, result, errors, created_at, updated_at, started_at,
                   coalesce(finished_at, updated_at), false
            FROM stray
            """;

        Listen = $"LISTEN \"{Channel}\"";
    }

    // A schema name as an SQL string literal, for the function bodies above (a validated plain identifier: no quotes in it).
    private static string SqlLiteral(string value) => "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";

    public string Schema { get; }
    public string QuotedSchema { get; }
    public string Channel { get; }
    public IReadOnlyList<(int Version, string Sql)> Migrations { get; }

    public string VersionTableExists { get; }

    public string VersionTableName { get; }

    /// <summary>
    /// What a runtime role needs, granted after every migration so tables added by later versions are covered. GRANT takes
    /// no parameters: the role is a validated plain identifier (PostgresTaskStoreOptions.RuntimeRole), quoted here.
    /// </summary>
    public string RuntimeGrants(string role) => $"""
        GRANT USAGE ON SCHEMA {QuotedSchema} TO "{role}";
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {QuotedSchema} TO "{role}";
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {QuotedSchema} TO "{role}";
        GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {QuotedSchema} TO "{role}"
        """;
    public string MigrationLock { get; }
    public string MigrationPrepare { get; }
    public string CurrentVersion { get; }
    public string RecordVersion { get; }
    public string CopyTasks { get; }
    public string CopyTasksWithRunAt { get; }
    public string EnqueueOne { get; }
    public string ExistingKey { get; }
    public string EnqueueQuiet { get; }
    public string EnqueueInTransaction { get; }
    public string Notify { get; }
    public string ExistingKeys { get; }
    public string Lease { get; }
    public string LeaseByIds { get; }
    public string DueIds { get; }
    public string Heartbeat { get; }
    public string HeartbeatMany { get; }
    public string Complete { get; }
    public string CompleteMany { get; }
    public string CompleteAndLease { get; }
    public string Fail { get; }
    public string StateOf { get; }
    public string ReclaimExpired { get; }
    public string ExpireLease { get; }
    public string Cancel { get; }
    public string Retry { get; }
    public string CancelManyPrefix { get; }
    public string CancelManySuffix { get; }
    public string RedriveManyPrefix { get; }
    public string RedriveManySuffix { get; }
    public string PauseQueue { get; }
    public string ResumeQueue { get; }
    public string PausedQueues { get; }
    public string Get { get; }
    public string QueryLivePrefix { get; }
    public string QueryHistoryPrefix { get; }
    public string Stats { get; }
    public string Purge { get; }
    public string PurgeDefaultPartition { get; }
    public string AddHistoryPartitions { get; }
    public string DropHistoryPartitions { get; }
    public string MoveStrayFinished { get; }
    public string PromoteDue { get; }
    public string FoldCounts { get; }
    public string Listen { get; }

    // Query filter fragments: constants with fixed parameter names, appended only when the filter is set.
    public const string QueryByQueue = " AND queue = @queue";
    public const string QueryByStates = " AND state = ANY(@states)";
    public const string QueryByTenant = " AND tenant = @tenant";
    public const string QueryCreatedFrom = " AND created_at >= @created_from";
    public const string QueryCreatedTo = " AND created_at < @created_to";
    // finished_at is null until a task is terminal, so a bound excludes unfinished tasks by itself (SQL null compare).
    public const string QueryFinishedFrom = " AND finished_at >= @finished_from";
    public const string QueryFinishedTo = " AND finished_at < @finished_to";
    public const string QueryAfter = " AND id < @after";
    // Newest first by the time-ordered id; one extra row tells whether there is a next page.
    public const string QuerySuffix = " ORDER BY id DESC LIMIT @limit";
}
