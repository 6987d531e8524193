using Konduit.Postgres;

namespace Konduit.PostgresRedis;

/// <summary>
/// The hybrid's own SQL, against the Postgres store's schema (<c>tasks</c>, see Konduit.Postgres' migrations):
/// claiming dispatched ids with the same fenced lease update the Postgres store uses, and reading pending ids to
/// rebuild a stream. The schema name is validated as a plain identifier before it gets here.
/// </summary>
internal sealed class HybridQueries
{
    public HybridQueries(string schema)
    {
        var s = "\"" + schema + "\"";
        // The Postgres store's lease update, over the dispatched ids instead of the queue's head: only rows still
        // pending and due are taken (claimed, terminal or not-yet-due ids fall out here); SKIP LOCKED + the FOR
        // UPDATE re-check keep two claimers of one id from both winning; the update bumps attempts and the token.
        ClaimIds = $"""
            WITH picked AS (
                SELECT id FROM {s}.tasks
                WHERE id = ANY($1) AND queue = $2 AND state = 0 AND run_at <= now()
                ORDER BY priority DESC, run_at, id
                FOR UPDATE SKIP LOCKED
            )
            {new PostgresQueries(schema).LeasePicked}
            """;
        // A stream rebuild: the queue's pending, due ids in lease order.
        PendingIds = $"""
            SELECT id FROM {s}.tasks
            WHERE queue = $1 AND state = 0 AND run_at <= now()
            ORDER BY priority DESC, run_at, id
            LIMIT $2
            """;
    }

    public string ClaimIds { get; }

    public string PendingIds { get; }
}
