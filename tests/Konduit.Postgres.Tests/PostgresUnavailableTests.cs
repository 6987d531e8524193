using System.Net;
using System.Net.Sockets;
using Konduit.Testing.Conformance;
using Npgsql;
using Xunit;

namespace Konduit.Postgres.Tests;

/// <summary>
/// Issue 13 item 3: the driver's transient errors (connection refused, a backend terminated mid-call) reach callers
/// as the core's <see cref="StoreUnavailableException"/> with the driver's exception inside, never raw; the
/// contract's own exceptions (lease lost, not found, bad input) are unchanged. The shared server is never stopped:
/// one test points a store at a closed port, the other terminates only the backend serving the store's call.
/// </summary>
public sealed class PostgresUnavailableTests(PostgresStoreFixture fixture) : IClassFixture<PostgresStoreFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Queue() => "down." + Guid.NewGuid().ToString("N")[..8];

    private static TaskLease SomeLease(Guid id) => new()
    {
        TaskId = id, Queue = "q", WorkerId = "w", LeaseToken = 1, Attempt = 1, MaxAttempts = 3,
        ExpiresAt = DateTimeOffset.UtcNow.AddMinutes(1), Payload = [1],
    };

    /// <summary>Every operation of the store, by name (the name is in the assertion message).</summary>
    internal static IEnumerable<(string Name, Func<PostgresTaskStore, Task> Call)> Operations()
    {
        var lease = SomeLease(Guid.NewGuid());
        yield return ("migrate", s => s.MigrateAsync(Ct));
        yield return ("enqueue", s => s.EnqueueAsync(new EnqueueRequest("q", [1]), Ct));
        yield return ("enqueue keyed", s => s.EnqueueAsync(new EnqueueRequest("q", [1]) { IdempotencyKey = "k" }, Ct));
        yield return ("enqueue many", s => s.EnqueueManyAsync([new EnqueueRequest("q", [1]), new EnqueueRequest("q", [2])], Ct));
        yield return ("enqueue many by copy", s => s.EnqueueManyAsync(
            Enumerable.Range(0, PostgresTaskStore.CopyThreshold).Select(_ => new EnqueueRequest("q", [1])).ToArray(), Ct));
        yield return ("bulk enqueue", s => s.BulkEnqueueAsync([new EnqueueRequest("q", [1])], Ct));
        yield return ("lease", s => s.LeaseAsync("q", "w", 1, TimeSpan.FromMinutes(1), Ct));
        yield return ("lease by ids", s => s.LeaseByIdsAsync("q", [lease.TaskId], "w", TimeSpan.FromMinutes(1), Ct));
        yield return ("read due ids", s => s.ReadDueIdsAsync("q", 10, Ct));
        yield return ("heartbeat", s => s.HeartbeatAsync(lease, TimeSpan.FromMinutes(1), Ct));
        yield return ("heartbeat many", s => s.HeartbeatManyAsync([lease], TimeSpan.FromMinutes(1), Ct));
        yield return ("complete", s => s.CompleteAsync(lease, null, Ct));
        yield return ("complete many", s => s.CompleteManyAsync([new TaskCompletion(lease)], Ct));
        yield return ("fail", s => s.FailAsync(lease, "boom", null, Ct));
        yield return ("reclaim", s => s.ReclaimExpiredAsync(Ct));
        yield return ("cancel", s => s.CancelAsync(Guid.NewGuid(), Ct));
        yield return ("redrive", s => s.RedriveAsync(Guid.NewGuid(), Ct));
        yield return ("get", s => s.GetAsync(Guid.NewGuid(), Ct));
        yield return ("query", s => s.QueryAsync(new TaskQuery { Queue = "q" }, null, Ct));
        yield return ("stats", s => s.GetStatsAsync(Ct));
        yield return ("purge", s => s.PurgeAsync(TimeSpan.FromDays(1), null, null, Ct));
    }

    /// <summary>A loopback port nothing listens on (bound, read and released).</summary>
    internal static int ClosedPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    [Fact]
    public async Task Every_operation_against_a_server_that_refuses_connections_throws_StoreUnavailableException()
    {
        await using var store = new PostgresTaskStore(new PostgresTaskStoreOptions
        {
            ConnectionString = $"Host=127.0.0.1;Port={ClosedPort()};Username=konduit;Password=none;Database=konduit;Timeout=3",
            Schema = "konduit_down",
        });
        foreach (var (name, call) in Operations())
        {
            var ex = await Assert.ThrowsAsync<StoreUnavailableException>(() => call(store));
            Assert.True(ex.InnerException is NpgsqlException, $"{name}: the driver's exception is kept inside ({ex.InnerException})");
            Assert.Equal("postgres", ex.Store);
            Assert.False(string.IsNullOrEmpty(ex.Operation), name);
        }
    }

    [Fact]
    public async Task Every_operation_on_a_multi_host_string_with_no_host_to_serve_it_throws_StoreUnavailableException()
    {
        // Issue 15, failover: with several hosts Npgsql reports "Unable to connect to a suitable host" (the hosts' errors
        // in an AggregateException) on the first call and "No suitable host was found." (no inner exception) while it
        // remembers them as offline; both mean "no primary now", as between a primary's crash and a standby's promotion.
        await using var store = new PostgresTaskStore(new PostgresTaskStoreOptions
        {
            ConnectionString = $"Host=127.0.0.1:{ClosedPort()},127.0.0.1:{ClosedPort()};Username=konduit;Password=none;Database=konduit;" +
                               "Target Session Attributes=read-write;Timeout=3",
            Schema = "konduit_down",
        });
        var seen = new HashSet<string>();
        foreach (var (name, call) in Operations())
        {
            var ex = await Assert.ThrowsAsync<StoreUnavailableException>(() => call(store));
            Assert.True(ex.InnerException is NpgsqlException, $"{name}: the driver's exception is kept inside ({ex.InnerException})");
            seen.Add(ex.InnerException!.InnerException is AggregateException ? "aggregate" : "no suitable host");
        }
        Assert.Equal(["aggregate", "no suitable host"], seen.Order());
    }

    [Fact]
    public async Task Every_event_log_operation_against_a_server_that_refuses_connections_throws_StoreUnavailableException()
    {
        await using var log = new PostgresTaskEventLog(new PostgresTaskEventLogOptions
        {
            ConnectionString = $"Host=127.0.0.1;Port={ClosedPort()};Username=konduit;Password=none;Database=konduit;Timeout=3",
            Schema = "konduit_down",
        });
        var taskEvent = new TaskEvent
        {
            EventId = TaskEventId.NewId(DateTimeOffset.UtcNow), TaskId = Guid.NewGuid(), Queue = "q", Kind = TaskEventKind.Enqueued, Attempt = 0, LeaseToken = 0,
        };
        (string Name, Func<Task> Call)[] operations =
        [
            ("migrate", () => log.MigrateAsync(Ct)),
            ("append", () => log.AppendAsync([taskEvent], Ct)),
            ("history", () => log.ReadTaskHistoryAsync(taskEvent.TaskId, Ct)),
            ("window", () => log.ReadQueueEventsAsync("q", DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow, null, Ct)),
            ("delete expired", () => log.DeleteExpiredAsync(Ct)),
        ];
        foreach (var (name, call) in operations)
        {
            var ex = await Assert.ThrowsAsync<StoreUnavailableException>(call);
            Assert.True(ex.InnerException is NpgsqlException, $"{name}: {ex.InnerException}");
        }
    }

    [Fact]
    public async Task A_backend_terminated_mid_call_throws_StoreUnavailableException_and_the_store_recovers()
    {
        var store = fixture.CreatePostgresStore();
        var queue = Queue();
        await store.EnqueueAsync(new EnqueueRequest(queue, [1]), Ct);
        var lease = Assert.Single(await store.LeaseAsync(queue, "w", 1, TimeSpan.FromMinutes(5), Ct));

        // A second connection holds the task's row lock, so the store's heartbeat waits on it inside the server;
        // that waiting backend (and only it) is then terminated, as an administrator or a failover would.
        await using var holder = await fixture.DataSource.OpenConnectionAsync(Ct);
        await using var tx = await holder.BeginTransactionAsync(Ct);
        await using (var lockRow = new NpgsqlCommand($"SELECT 1 FROM \"{fixture.Schema}\".tasks WHERE id = $1 FOR UPDATE", holder, tx))
        {
            lockRow.Parameters.Add(new NpgsqlParameter { Value = lease.TaskId });
            await lockRow.ExecuteScalarAsync(Ct);
        }
        var heartbeat = store.HeartbeatAsync(lease, TimeSpan.FromMinutes(5), Ct);

        // Looked up from a third connection outside any transaction: pg_stat_activity is a per-transaction snapshot.
        await using var observer = await fixture.DataSource.OpenConnectionAsync(Ct);
        int? waiter = null;
        await Await.Until(async () =>
        {
            await using var find = new NpgsqlCommand("SELECT pid FROM pg_stat_activity WHERE pg_blocking_pids(pid) @> ARRAY[$1]", observer);
            find.Parameters.Add(new NpgsqlParameter { Value = holder.ProcessID });
            waiter = (int?)await find.ExecuteScalarAsync(Ct);
            return waiter is not null;
        }, TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(20), "the store's heartbeat waits on the held row lock");
        await using (var kill = new NpgsqlCommand("SELECT pg_terminate_backend($1)", observer))
        {
            kill.Parameters.Add(new NpgsqlParameter { Value = waiter!.Value });
            Assert.True((bool)(await kill.ExecuteScalarAsync(Ct))!);
        }

        var ex = await Assert.ThrowsAsync<StoreUnavailableException>(() => heartbeat);
        Assert.True(ex.InnerException is NpgsqlException, ex.ToString());
        await tx.RollbackAsync(Ct);

        // The store carries on with a fresh connection; the lease it holds is still valid.
        var renewed = await store.HeartbeatAsync(lease, TimeSpan.FromMinutes(5), Ct);
        Assert.Equal(lease.LeaseToken, renewed.LeaseToken);
    }

    [Fact]
    public async Task The_contract_exceptions_are_not_turned_into_StoreUnavailableException()
    {
        var store = fixture.CreatePostgresStore();
        var queue = Queue();
        await store.EnqueueAsync(new EnqueueRequest(queue, [1]), Ct);
        var lease = Assert.Single(await store.LeaseAsync(queue, "w", 1, TimeSpan.FromMinutes(5), Ct));
        await store.CompleteAsync(lease, null, Ct);

        await Assert.ThrowsAsync<LeaseLostException>(() => store.HeartbeatAsync(lease, TimeSpan.FromMinutes(1), Ct));
        await Assert.ThrowsAsync<LeaseLostException>(() => store.CompleteAsync(lease, null, Ct));
        await Assert.ThrowsAsync<TaskNotFoundException>(() => store.GetAsync(Guid.NewGuid(), Ct));
        await Assert.ThrowsAsync<TaskNotFoundException>(() => store.CancelAsync(Guid.NewGuid(), Ct));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => store.LeaseAsync(queue, "w", 0, TimeSpan.FromMinutes(1), Ct));
        using var canceled = new CancellationTokenSource();
        await canceled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.GetStatsAsync(canceled.Token));
    }
}
