using System.Net;
using System.Net.Sockets;
using Npgsql;
using Xunit;

namespace Konduit.PostgresRedis.Tests;

/// <summary>
/// The hybrid's PostgreSQL side: it goes through the Postgres store's public seam only, so PostgreSQL's transient
/// errors reach callers as <see cref="StoreUnavailableException"/> (issue 13 item 3) in both dispatch modes, and
/// batched renewal is the Postgres store's one statement.
/// </summary>
public sealed class HybridPostgresSideTests(PostgresRedisStoreFixture fixture) : IClassFixture<PostgresRedisStoreFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string NewQueue() => "q-" + Guid.NewGuid().ToString("N")[..8];

    private static int ClosedPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    [Fact]
    public async Task A_hybrid_built_from_a_connection_string_skips_the_pool_reset_unless_the_string_sets_it()
    {
        foreach (var (suffix, expected) in new[] { ("", true), (";No Reset On Close=false", false) })
        {
            var options = fixture.Options();
            options.ConnectionString = PostgresRedisStoreFixture.PostgresConnectionString + suffix;
            await using var store = new PostgresRedisTaskStore(options, redis: fixture.Redis);
            Assert.Equal(expected, new NpgsqlConnectionStringBuilder(store.DataSource.ConnectionString).NoResetOnClose);
            // And it serves: one task in and out over that pool.
            var queue = NewQueue();
            await store.EnqueueAsync(new EnqueueRequest(queue, [1]), Ct);
            var lease = Assert.Single(await store.LeaseAsync(queue, "w", 1, TimeSpan.FromMinutes(1), Ct));
            await store.CompleteAsync(lease, null, Ct);
        }
        // An application's data source is used as it is.
        await using var onGiven = new PostgresRedisTaskStore(fixture.Options(), fixture.DataSource, fixture.Redis);
        Assert.Same(fixture.DataSource, onGiven.DataSource);
    }

    [Theory]
    [InlineData(DispatchMode.Signal)]
    [InlineData(DispatchMode.ClaimIds)]
    public async Task With_postgres_unreachable_every_operation_throws_StoreUnavailableException(DispatchMode mode)
    {
        // Redis is up (the fixture's); only PostgreSQL refuses connections.
        await using var dataSource = NpgsqlDataSource.Create(
            $"Host=127.0.0.1;Port={ClosedPort()};Username=konduit;Password=none;Database=konduit;Timeout=3");
        var options = fixture.Options();
        options.Dispatch = mode;
        await using var store = new PostgresRedisTaskStore(options, dataSource, fixture.Redis);
        var queue = NewQueue();
        var lease = new TaskLease
        {
            TaskId = Guid.NewGuid(), Queue = queue, WorkerId = "w", LeaseToken = 1, Attempt = 1, MaxAttempts = 3,
            ExpiresAt = DateTimeOffset.UtcNow.AddMinutes(1), Payload = [1],
        };
        (string Name, Func<Task> Call)[] operations =
        [
            ("enqueue", () => store.EnqueueAsync(new EnqueueRequest(queue, [1]), Ct)),
            ("enqueue many", () => store.EnqueueManyAsync([new EnqueueRequest(queue, [1])], Ct)),
            ("lease", () => store.LeaseAsync(queue, "w", 1, TimeSpan.FromMinutes(1), Ct)),
            ("heartbeat", () => store.HeartbeatAsync(lease, TimeSpan.FromMinutes(1), Ct)),
            ("heartbeat many", () => store.HeartbeatManyAsync([lease], TimeSpan.FromMinutes(1), Ct)),
            ("complete", () => store.CompleteAsync(lease, null, Ct)),
            ("fail", () => store.FailAsync(lease, "boom", null, Ct)),
            ("get", () => store.GetAsync(lease.TaskId, Ct)),
            ("stats", () => store.GetStatsAsync(Ct)),
        ];
        foreach (var (name, call) in operations)
        {
            var ex = await Assert.ThrowsAsync<StoreUnavailableException>(call);
            Assert.True(ex.InnerException is NpgsqlException, $"{name}: {ex.InnerException}");
        }
    }

    [Fact]
    public async Task ClaimIds_mode_with_a_hint_whose_claim_fails_throws_StoreUnavailableException()
    {
        // The hint is read from Redis, then the claim by id goes to PostgreSQL through the seam, which is down.
        var queue = NewQueue();
        var healthy = fixture.CreateHybridStore(configure: o => o.Dispatch = DispatchMode.ClaimIds);
        var enqueued = await healthy.EnqueueAsync(new EnqueueRequest(queue, [1]), Ct);
        await using var dataSource = NpgsqlDataSource.Create(
            $"Host=127.0.0.1;Port={ClosedPort()};Username=konduit;Password=none;Database=konduit;Timeout=3");
        var options = fixture.Options();
        options.Dispatch = DispatchMode.ClaimIds;
        await using var broken = new PostgresRedisTaskStore(options, dataSource, fixture.Redis);

        var ex = await Assert.ThrowsAsync<StoreUnavailableException>(() => broken.LeaseAsync(queue, "w", 1, TimeSpan.FromMinutes(1), Ct));
        Assert.IsAssignableFrom<NpgsqlException>(ex.InnerException);
        // Nothing was claimed: the task waits for a worker whose PostgreSQL answers (the ordered lease finds it).
        Assert.Equal(enqueued.TaskId, Assert.Single(await healthy.LeaseAsync(queue, "w", 1, TimeSpan.FromMinutes(1), Ct)).TaskId);
    }

    [Fact]
    public async Task HeartbeatMany_renews_through_postgres_and_reports_lost_leases()
    {
        var store = fixture.CreateHybridStore();
        var queue = NewQueue();
        await store.EnqueueManyAsync([new EnqueueRequest(queue, [1]), new EnqueueRequest(queue, [2])], Ct);
        var leases = await store.LeaseAsync(queue, "w", 2, TimeSpan.FromMinutes(1), Ct);
        Assert.Equal(2, leases.Count);
        await store.CompleteAsync(leases[1], null, Ct);

        var result = await store.HeartbeatManyAsync(leases, TimeSpan.FromMinutes(10), Ct);

        Assert.Equal(leases[0].TaskId, Assert.Single(result.Renewed).TaskId);
        Assert.True(result.Renewed[0].ExpiresAt > leases[0].ExpiresAt.AddMinutes(8));
        Assert.Equal([leases[1].TaskId], result.Lost);
        Assert.Equal(result.Renewed[0].ExpiresAt, (await store.GetAsync(leases[0].TaskId, Ct)).LeaseExpiresAt);
    }
}
