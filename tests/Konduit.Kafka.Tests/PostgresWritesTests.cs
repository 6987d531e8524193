using Konduit.Heartbeats;
using Konduit.Postgres;
using Konduit.Testing.Conformance;
using Npgsql;
using Xunit;

namespace Konduit.Kafka.Tests;

/// <summary>
/// The point of the channel (issue 12): Postgres receives no per-heartbeat UPDATE. Row writes are counted by the
/// server (pg_stat_user_tables.n_tup_upd of a private schema's tasks table), for the same work with store heartbeats
/// (one HeartbeatManyAsync per interval, what the runtime's default renewer sends) and with the Kafka channel.
/// </summary>
public sealed class PostgresWritesTests(KafkaFixture fixture) : IClassFixture<KafkaFixture>
{
    private const int Tasks = 20;
    private const int Beats = 40;
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(200);
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string ConnectionString =>
        Environment.GetEnvironmentVariable("KONDUIT_TEST_POSTGRES") is { Length: > 0 } cs ? cs
            : throw new InvalidOperationException("KONDUIT_TEST_POSTGRES is not set: run `scripts/services.sh up && source .services/env`.");

    [Fact]
    public async Task The_channel_removes_the_per_heartbeat_row_writes()
    {
        var withoutChannel = await RowUpdatesPerTaskAsync(useChannel: false);
        var withChannel = await RowUpdatesPerTaskAsync(useChannel: true);

        var line = $"postgres row updates per task ({Tasks} tasks, {Beats} heartbeat intervals each): store heartbeats {withoutChannel:0.00}, " +
            $"kafka channel {withChannel:0.00} ({100 * (1 - (withChannel / withoutChannel)):0.0} % fewer)";
        TestContext.Current.TestOutputHelper?.WriteLine(line);
        Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "measurements"));
        await File.AppendAllTextAsync(Path.Combine(AppContext.BaseDirectory, "measurements", "kafka.txt"), line + "\n", Ct);
        // Lease and complete are the only writes with the channel; store heartbeats add one per interval.
        Assert.Equal(2.0, withChannel);
        Assert.True(withoutChannel >= 2 + (Beats / 2), $"store heartbeats wrote {withoutChannel} rows per task");
    }

    private async Task<double> RowUpdatesPerTaskAsync(bool useChannel)
    {
        var schema = "kafka_writes_" + Guid.NewGuid().ToString("N")[..12];
        var options = new PostgresTaskStoreOptions { ConnectionString = ConnectionString, Schema = schema };
        var ceiling = TimeSpan.FromMinutes(1);
        try
        {
            await using (var store = new PostgresTaskStore(options))
            {
                await store.MigrateAsync(Ct);
                for (var i = 0; i < Tasks; i++) await store.EnqueueAsync(new EnqueueRequest("writes", [1]), Ct);
                var leases = await store.LeaseAsync("writes", "worker-1", Tasks, useChannel ? ceiling : Interval * 5, Ct);
                Assert.Equal(Tasks, leases.Count);
                var tracked = leases.Select(l => new TrackedLease(l, useChannel ? ceiling : Interval * 5, useChannel ? ceiling / 3 : Interval)).ToList();
                if (useChannel)
                {
                    var topic = "hb-writes-" + Guid.NewGuid().ToString("N");
                    await fixture.CreateTopicAsync(topic, 4);
                    var channel = fixture.Track(new KafkaHeartbeatChannel(fixture.Options(topic)));
                    await using var renewer = new HeartbeatChannelLeaseRenewer(store, channel, Interval);
                    foreach (var t in tracked) renewer.Track(t);
                    await Await.Until(() => Task.FromResult(renewer.HeartbeatsPublished >= Tasks * Beats), TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(20), "every task's beats");
                    Assert.Equal(0, renewer.FallbackBeats);
                    foreach (var t in tracked) renewer.Release(t);
                }
                else
                {
                    // What the runtime's default renewer sends: one HeartbeatManyAsync per interval for all the leases.
                    for (var beat = 0; beat < Beats; beat++)
                    {
                        await Task.Delay(Interval, Ct);
                        var renewed = await store.HeartbeatManyAsync([.. tracked.Select(t => t.Lease)], Interval * 5, Ct);
                        foreach (var r in renewed.Renewed) tracked.Single(t => t.TaskId == r.TaskId).Renewed(r);
                    }
                }
                Assert.Empty(await store.CompleteManyAsync([.. tracked.Select(t => new TaskCompletion(t.Lease))], Ct));
            }
            // Backends report their table counts at exit: close the pooled connections, then read from a fresh one.
            NpgsqlConnection.ClearAllPools();
            await using var connection = new NpgsqlConnection(ConnectionString);
            await connection.OpenAsync(Ct);
            long updates = 0, previous = -1;
            await Await.Until(async () =>
            {
                // A new statistics snapshot per read (the session caches one until cleared).
                await using (var clear = new NpgsqlCommand("SELECT pg_stat_clear_snapshot()", connection)) await clear.ExecuteNonQueryAsync(Ct);
                await using var cmd = new NpgsqlCommand("SELECT n_tup_upd + n_tup_del FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'tasks'", connection);
                cmd.Parameters.AddWithValue(schema);
                await using var reader = await cmd.ExecuteReaderAsync(Ct);
                (previous, updates) = (updates, await reader.ReadAsync(Ct) ? reader.GetInt64(0) : 0);
                // Every backend has reported once two reads agree (they report at exit, one by one).
                return updates >= Tasks * 2 && updates == previous;
            }, TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(700), "the server reports the lease and complete updates");
            return (double)updates / Tasks;
        }
        finally
        {
            await using var connection = new NpgsqlConnection(ConnectionString);
            await connection.OpenAsync(Ct);
            await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE", connection);
            await drop.ExecuteNonQueryAsync(Ct);
        }
    }
}
