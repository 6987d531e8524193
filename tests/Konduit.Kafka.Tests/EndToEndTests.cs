using System.Globalization;
using Xunit;

namespace Konduit.Kafka.Tests;

/// <summary>
/// Issue 12, section 3: Postgres store + Kafka channel + the runtime as separate OS processes. Worker processes (the
/// chaos suite's worker with <c>"Heartbeats": "Kafka"</c>) run tasks, some are SIGKILLed mid-task, and a lease-monitor
/// process ends their leases. The same run with store heartbeats is the comparison. Every verdict is the server's.
/// </summary>
public sealed class EndToEndTests(KafkaFixture fixture) : IClassFixture<KafkaFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public Task Killed_workers_leases_are_expired_by_the_monitor_and_postgres_gets_no_heartbeat_writes() => RunAsync(EndToEndProfile.Default);

    [Fact]
    [Trait("Profile", "Long")]
    public Task Killed_workers_leases_are_expired_by_the_monitor_and_postgres_gets_no_heartbeat_writes_at_length() => RunAsync(EndToEndProfile.Long);

    private async Task RunAsync(EndToEndProfile profile)
    {
        var store = await EndToEndRun.RunAsync(fixture, profile, channel: false, Ct);
        var kafka = await EndToEndRun.RunAsync(fixture, profile, channel: true, Ct);
        var lines = new[]
        {
            store.Describe(profile),
            kafka.Describe(profile),
            string.Create(CultureInfo.InvariantCulture,
                $"e2e postgres row updates per task: store heartbeats {store.RowUpdatesPerTask:0.00}, kafka channel {kafka.RowUpdatesPerTask:0.00} " +
                $"({100 * (1 - (kafka.RowUpdatesPerTask / store.RowUpdatesPerTask)):0.0} % fewer; heartbeat-only row updates {store.HeartbeatRowUpdates} -> {kafka.HeartbeatRowUpdates})"),
        };
        foreach (var line in lines) TestContext.Current.TestOutputHelper?.WriteLine(line);
        Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "measurements"));
        await File.AppendAllLinesAsync(Path.Combine(AppContext.BaseDirectory, "measurements", "kafka.txt"), lines, Ct);

        foreach (var run in new[] { store, kafka })
        {
            var mode = run.Channel ? "kafka channel" : "store heartbeats";
            // Every task ends exactly once: one accepted completion each, under a token a handler ran with.
            Assert.True(run.Succeeded == profile.Tasks, $"{mode}: {run.Succeeded} of {profile.Tasks} tasks succeeded");
            Assert.True(run.SucceededTransitions == profile.Tasks, $"{mode}: {run.SucceededTransitions} accepted completions for {profile.Tasks} tasks");
            Assert.Equal(0, run.DoubleAccepted);
            Assert.Equal(0, run.AcceptedWithoutEffect);
            Assert.Equal(0, run.TokenReused);
            // Each SIGKILL hit a worker that held running tasks, and each of those leases went back to Pending.
            Assert.Equal(profile.Kills, run.KilledLeasesPerWorker.Count);
            Assert.All(run.KilledLeasesPerWorker, count => Assert.True(count > 0, $"{mode}: a killed worker held no running task"));
            Assert.All(run.KilledLeases, lease => Assert.Equal(TaskState.Pending, lease.EndedIn));
        }

        // With the channel: the monitor ended the dead workers' leases, not the sweeper: while their store leases (the
        // ceiling) still ran, and only once the heartbeats had stopped for the liveness timeout (the last one can
        // precede the kill by a heartbeat interval; one more interval of slack for the two clocks' reading).
        Assert.All(kafka.KilledLeases, lease =>
        {
            Assert.True(lease.EndedBeforeStoreExpiry, $"lease ({lease.TaskId}, {lease.LeaseToken}) ended at {lease.EndedAt:O}, after its store expiry {lease.StoreExpiresAt:O}");
            Assert.True(lease.KillToExpiry >= profile.LivenessTimeout - (profile.HeartbeatInterval * 2),
                $"lease ({lease.TaskId}, {lease.LeaseToken}) expired {lease.KillToExpiry.TotalSeconds:0.00} s after the kill, before the liveness timeout");
        });
        // With store heartbeats the same leases ran out in the store and a sweeper reclaimed them.
        Assert.All(store.KilledLeases, lease => Assert.False(lease.EndedBeforeStoreExpiry));

        // No per-heartbeat UPDATE with the channel: every row update the server counted changed the state or the token.
        Assert.True(kafka.HeartbeatRowUpdates == 0,
            $"with the channel Postgres counted {kafka.RowUpdates} row updates of tasks, {kafka.Transitions} of them state or token changes");
        // With store heartbeats, each task's row is written about once per interval while it runs.
        var beatsPerTask = profile.Work / profile.HeartbeatInterval;
        Assert.True(store.HeartbeatRowUpdates >= profile.Tasks * beatsPerTask / 2,
            $"with store heartbeats Postgres counted only {store.HeartbeatRowUpdates} heartbeat row updates for {profile.Tasks} tasks of {beatsPerTask:0} intervals");
    }
}
