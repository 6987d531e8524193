using Npgsql;

namespace Konduit.Chaos.Tests;

/// <summary>
/// The faults of issue 13, named after the public cross-system benchmark of Postgres-backed queues so our figures
/// read next to theirs. Each applies itself for about the profile's fault time on a bounded schedule.
/// </summary>
internal static class ChaosScenarios
{
    /// <summary>SIGKILL of a random worker process every 1–3 s, restarted at once in its slot.</summary>
    public static readonly ChaosScenario RepeatedKills = new("repeated_kills", (c, ct) =>
        c.RepeatForAsync(c.Profile.Fault * 1.6, async token =>
        {
            await c.PauseAsync(1, 3, token);
            await c.Fleet.KillAndRestartAsync(c.Random.Next(c.Fleet.Count), token);
            return 1;
        }, ct));

    /// <summary>kill -9 of the postmaster mid-run, then a restart (crash recovery); the clients are not restarted.</summary>
    public static readonly ChaosScenario PostgresRestart = new("postgres_restart", async (c, ct) =>
    {
        c.Target.Postgres.KillPostmaster();
        c.Log("  postmaster SIGKILLed");
        await c.Target.Postgres.RestartAsync(ct);
        c.Log("  postgres answers again");
        return 1;
    });

    /// <summary>A steady stream of pg_terminate_backend against the library's sessions (the workers' store connections).</summary>
    public static readonly ChaosScenario PgBackendKill = new("pg_backend_kill", async (c, ct) =>
    {
        await using var admin = new NpgsqlConnection(c.Target.Postgres.AdminConnectionString);
        await admin.OpenAsync(ct);
        return await c.RepeatForAsync(c.Profile.Fault, async token =>
        {
            await c.PauseAsync(0.1, 0.3, token);
            // One random session of the library at a time: a steady trickle, never the whole pool at once.
            await using var kill = new NpgsqlCommand(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM (SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY random() LIMIT 1) s",
                admin);
            kill.Parameters.Add(new NpgsqlParameter<string> { TypedValue = ChaosTarget.WorkerApplicationName });
            return (int)(long)(await kill.ExecuteScalarAsync(token))!;
        }, ct);
    });

    /// <summary>Idle sessions hold all of max_connections but the library's current sessions and two spare slots.</summary>
    public static readonly ChaosScenario PoolExhaustion = new("pool_exhaustion", async (c, ct) =>
    {
        int inUse;
        await using (var admin = new NpgsqlConnection(c.Target.Postgres.AdminConnectionString))
        {
            await admin.OpenAsync(ct);
            await using var count = new NpgsqlCommand("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'", admin);
            inUse = (int)(long)(await count.ExecuteScalarAsync(ct))!;
        }
        // superuser_reserved_connections (3) stay free for the admin; the non-superuser slots left: 2.
        var hold = Servers.PrivatePostgres.MaxConnections - 3 - inUse - 2;
        var held = new List<NpgsqlConnection>();
        try
        {
            for (var i = 0; i < hold; i++)
            {
                var connection = new NpgsqlConnection(c.Target.Postgres.ConnectionString("chaos-hog") + ";Pooling=false");
                await connection.OpenAsync(ct);
                held.Add(connection);
            }
            c.Log($"  holding {held.Count} idle sessions ({inUse} were in use)");
            await Task.Delay(c.Profile.Fault, ct);
        }
        finally
        {
            foreach (var connection in held) await connection.DisposeAsync();
        }
        return held.Count;
    });

    /// <summary>A transaction that holds an xid sits idle for the fault time: the xmin horizon is pinned, vacuum can remove nothing.</summary>
    public static readonly ChaosScenario IdleInTransaction = new("idle_in_tx", async (c, ct) =>
    {
        await using var connection = new NpgsqlConnection(c.Target.Postgres.AdminConnectionString);
        await connection.OpenAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await using (var xid = new NpgsqlCommand("SELECT pg_current_xact_id()", connection, tx)) await xid.ExecuteScalarAsync(ct);
        await Task.Delay(c.Profile.Fault * 1.6, ct);
        await tx.CommitAsync(ct);
        return 1;
    });

    /// <summary>Three REPEATABLE READ sessions scan the tasks table over and over (each snapshot also pins the horizon while it lives).</summary>
    public static readonly ChaosScenario ActiveReaders = new("active_readers", async (c, ct) =>
    {
        var table = $"{c.Target.Schema}.tasks";
        var readers = Enumerable.Range(0, 3).Select(async _ =>
        {
            await using var connection = new NpgsqlConnection(c.Target.Postgres.AdminConnectionString);
            await connection.OpenAsync(ct);
            return await c.RepeatForAsync(c.Profile.Fault * 1.6, async token =>
            {
                await using var tx = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, token);
                // The table name is the suite's own generated schema, not input.
                await using var scan = new NpgsqlCommand($"SELECT count(*), sum(length(payload)), max(updated_at) FROM {table}", connection, tx);
                for (var i = 0; i < 3; i++) await scan.ExecuteScalarAsync(token);
                await tx.CommitAsync(token);
                return 1;
            }, ct);
        }).ToArray();
        return (await Task.WhenAll(readers)).Sum();
    });

    /// <summary>Offered load at 1.5× the drain rate measured before the fault, for the fault time; the backlog then drains.</summary>
    public static readonly ChaosScenario SustainedHighLoad = new("sustained_high_load", async (c, ct) =>
    {
        var times = await c.Target.FinishedTimesAsync(ct);
        var drain = RateAnalysis.RecentRate(times, DateTimeOffset.UtcNow - TimeSpan.FromMilliseconds(500), c.Profile.Before);
        var offered = Math.Max(1, drain * 1.5);
        c.Log($"  offering {offered:0}/s (drain {drain:0}/s)");
        c.Producer.Offer(offered);
        await Task.Delay(c.Profile.Fault * 1.6, ct);
        return (int)(offered * (c.Profile.Fault * 1.6).TotalSeconds);
    });

    /// <summary>kill -9 of redis-server, then a restart with its AOF kept (<paramref name="wipe"/> false) or its data dir emptied.</summary>
    public static ChaosScenario RedisOutage(bool wipe) => new(wipe ? "redis_outage_wiped" : "redis_outage_kept", async (c, ct) =>
    {
        var redis = c.Target.Redis ?? throw new InvalidOperationException("redis outage on a store without Redis");
        await redis.KillAsync();
        if (wipe) redis.WipeData();
        c.Log($"  redis-server SIGKILLed{(wipe ? ", data wiped" : "")}");
        // Down for a second: long enough for every client to notice, short against the recovery deadline.
        await Task.Delay(TimeSpan.FromSeconds(1), ct);
        await redis.RestartAsync(ct);
        c.Log("  redis answers again");
        return 1;
    });

    /// <summary>
    /// A simulated host crash: the AOF is cut back by the last second of writes (what <c>appendfsync everysec</c> may
    /// lose), then redis-server restarts from it. Rolls the Redis store's task hashes back (issue 13, hole 1).
    /// </summary>
    public static readonly ChaosScenario RedisHostCrash = new("redis_host_crash", async (c, ct) =>
    {
        var redis = c.Target.Redis ?? throw new InvalidOperationException("redis host crash on a store without Redis");
        var cut = redis.AofLength();
        // The second of acknowledged writes the crash takes with it.
        await Task.Delay(TimeSpan.FromSeconds(1), ct);
        await redis.KillAsync();
        var lost = redis.AofLength() - cut;
        redis.TruncateAof(cut);
        c.Log($"  redis-server SIGKILLed, AOF cut back by {lost} bytes (the last second of writes)");
        await redis.RestartAsync(ct);
        c.Log("  redis answers again");
        return 1;
    });

    /// <summary>The proxies between the workers and the servers cut every connection, or stall all traffic 0.5–5 s, at random.</summary>
    public static readonly ChaosScenario NetworkFaults = new("network_faults", (c, ct) =>
        // Three fault times: a stall alone may last 5 s, and the schedule must land several cuts and stalls.
        c.RepeatForAsync(c.Profile.Fault * 3, async token =>
        {
            await c.PauseAsync(0.3, 1.5, token);
            var proxies = new[] { c.PostgresProxy, c.RedisProxy }.OfType<Servers.ChaosProxy>().ToArray();
            if (c.Random.Next(2) == 0)
            {
                foreach (var proxy in proxies) proxy.CutAll();
                return 1;
            }
            var stall = TimeSpan.FromSeconds(0.5 + c.Random.NextDouble() * 4.5);
            await Task.WhenAll(proxies.Select(p => p.StallAsync(stall, token)));
            return 1;
        }, ct), ThroughProxy: true);
}
