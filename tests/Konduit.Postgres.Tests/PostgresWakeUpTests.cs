using Npgsql;
using Xunit;

namespace Konduit.Postgres.Tests;

public sealed class PostgresWakeUpTests(PostgresStoreFixture fixture) : IClassFixture<PostgresStoreFixture>
{
    // Far longer than a notification takes: the assertions are on the boolean, never on elapsed time.
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Queue() => "pg." + Guid.NewGuid().ToString("N");

    [Fact]
    public async Task An_enqueue_through_another_store_wakes_a_waiting_worker()
    {
        var worker = fixture.CreatePostgresStore();
        var producer = fixture.CreatePostgresStore();
        var queue = Queue();
        // A zero-timeout wait starts the listener and returns once LISTEN is in place.
        Assert.False(await worker.WaitForWorkAsync(queue, TimeSpan.Zero, Ct));

        var waiting = worker.WaitForWorkAsync(queue, Long, Ct);
        await producer.EnqueueAsync(new EnqueueRequest(queue, [1]), Ct);

        Assert.True(await waiting);
    }

    [Fact]
    public async Task A_notification_before_the_wait_is_latched()
    {
        var worker = fixture.CreatePostgresStore();
        var producer = fixture.CreatePostgresStore();
        var queue = Queue();
        Assert.False(await worker.WaitForWorkAsync(queue, TimeSpan.Zero, Ct));

        await producer.EnqueueAsync(new EnqueueRequest(queue, [1]), Ct);

        // A zero-timeout wait returns true only for a latched signal; poll until the notification has arrived.
        await Eventually(() => worker.WaitForWorkAsync(queue, TimeSpan.Zero, Ct), "the notification was latched");
        // Consumed: the next wait sees no signal.
        Assert.False(await worker.WaitForWorkAsync(queue, TimeSpan.Zero, Ct));
    }

    [Fact]
    public async Task Many_notifications_collapse_into_one_signal()
    {
        var worker = fixture.CreatePostgresStore();
        var producer = fixture.CreatePostgresStore();
        var queue = Queue();
        var marker = Queue();
        Assert.False(await worker.WaitForWorkAsync(queue, TimeSpan.Zero, Ct));

        for (var i = 0; i < 5; i++) await producer.EnqueueAsync(new EnqueueRequest(queue, [(byte)i]), Ct);
        // Notifications arrive in commit order: once the marker's has arrived, all five of the queue's have too.
        await producer.EnqueueAsync(new EnqueueRequest(marker, [0]), Ct);
        await Eventually(() => worker.WaitForWorkAsync(marker, TimeSpan.Zero, Ct), "the marker notification arrived");

        Assert.True(await worker.WaitForWorkAsync(queue, TimeSpan.Zero, Ct));
        Assert.False(await worker.WaitForWorkAsync(queue, TimeSpan.Zero, Ct));
    }

    [Fact]
    public async Task A_rolled_back_transactional_enqueue_wakes_nobody_and_a_committed_one_does()
    {
        var worker = fixture.CreatePostgresStore();
        var producer = fixture.CreatePostgresStore();
        var queue = Queue();
        var marker = Queue();
        Assert.False(await worker.WaitForWorkAsync(queue, TimeSpan.Zero, Ct));

        await fixture.TransactionalEnqueue!.EnqueueInTransactionAsync(producer, new EnqueueRequest(queue, [1]), commit: false, Ct);
        await producer.EnqueueAsync(new EnqueueRequest(marker, [0]), Ct);
        await Eventually(() => worker.WaitForWorkAsync(marker, TimeSpan.Zero, Ct), "the marker notification arrived");
        Assert.False(await worker.WaitForWorkAsync(queue, TimeSpan.Zero, Ct));

        var waiting = worker.WaitForWorkAsync(queue, Long, Ct);
        await fixture.TransactionalEnqueue!.EnqueueInTransactionAsync(producer, new EnqueueRequest(queue, [2]), commit: true, Ct);
        Assert.True(await waiting);
    }

    [Fact]
    public async Task Disposing_the_store_releases_a_blocked_wait()
    {
        var worker = fixture.CreatePostgresStore();
        Assert.False(await worker.WaitForWorkAsync("q", TimeSpan.Zero, Ct));
        var waiting = worker.WaitForWorkAsync(Queue(), Long, Ct);

        await worker.DisposeAsync();

        Assert.False(await waiting);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => worker.WaitForWorkAsync("q", TimeSpan.Zero, Ct));
    }

    [Fact]
    public async Task The_listener_unlistens_before_its_connection_goes_back_to_a_pool_that_skips_the_reset()
    {
        // A pool that skips the reset of returned connections (the store's own default, and an application's choice): a
        // LISTEN left on a returned connection keeps a pooled backend subscribed behind a socket nobody reads.
        var settings = new NpgsqlConnectionStringBuilder(PostgresStoreFixture.ConnectionString) { NoResetOnClose = true, MaxPoolSize = 2 };
        await using var dataSource = NpgsqlDataSource.Create(settings.ConnectionString);
        var store = new PostgresTaskStore(new PostgresTaskStoreOptions { Schema = fixture.Schema }, dataSource);
        Assert.False(await store.WaitForWorkAsync(Queue(), TimeSpan.Zero, Ct)); // the listener now holds a connection

        await store.DisposeAsync();

        // Both physical connections the pool may hold, taken at once: neither is still listening.
        await using var first = await dataSource.OpenConnectionAsync(Ct);
        await using var second = await dataSource.OpenConnectionAsync(Ct);
        foreach (var connection in new[] { first, second })
        {
            await using var channels = new NpgsqlCommand("SELECT count(*) FROM pg_listening_channels()", connection);
            Assert.Equal(0L, (long)(await channels.ExecuteScalarAsync(Ct))!);
        }
    }

    [Fact]
    public async Task The_listener_reconnects_after_its_connection_is_killed_and_wakes_waiters_for_the_gap()
    {
        // A schema of its own, so that the one LISTEN session on its channel is this worker's.
        var schema = PostgresStoreFixture.NewSchemaName();
        try
        {
            var worker = fixture.CreatePostgresStore(schema);
            await worker.MigrateAsync(Ct);
            var producer = fixture.CreatePostgresStore(schema);
            var queue = Queue();
            Assert.False(await worker.WaitForWorkAsync(queue, TimeSpan.Zero, Ct));

            // Kill the worker's LISTEN session from the server side.
            var killed = await fixture.ScalarAsync<long>(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity " +
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND query = 'LISTEN \"' || $1 || '.wake\"'", schema);
            Assert.Equal(1L, killed);

            // Notifications may have been missed while it was down, so the reconnected listener wakes every known queue.
            await Eventually(() => worker.WaitForWorkAsync(queue, TimeSpan.Zero, Ct), "the listener reconnected");
            var waiting = worker.WaitForWorkAsync(queue, Long, Ct);
            await producer.EnqueueAsync(new EnqueueRequest(queue, [1]), Ct);
            Assert.True(await waiting);
            await worker.DisposeAsync();
        }
        finally
        {
            await fixture.DropSchemaAsync(schema);
        }
    }

    [Fact]
    public async Task A_signal_while_an_inline_notification_is_in_flight_is_sent_when_it_ends()
    {
        var worker = fixture.CreatePostgresStore();
        var queue = Queue();
        Assert.False(await worker.WaitForWorkAsync(queue, TimeSpan.Zero, Ct));
        var sql = new PostgresQueries(fixture.Schema);
        var notifier = new PostgresNotifier(fixture.DataSource, sql.Channel, sql.Notify);
        await using (notifier)
        {
            // An enqueue claims the notifier for its inline NOTIFY; a concurrent enqueue's signal finds it busy.
            Assert.True(notifier.TryBeginInline());
            Assert.False(notifier.TryBeginInline());
            notifier.Signal(queue);
            notifier.EndInline();

            // The latched signal was handed to a flush, not dropped with the claim.
            await Eventually(() => worker.WaitForWorkAsync(queue, TimeSpan.Zero, Ct), "the pending signal was flushed");
            Assert.True(notifier.TryBeginInline());
            notifier.EndInline();
        }
    }

    [Fact]
    public async Task Concurrent_enqueues_inline_and_coalesced_wake_every_queue()
    {
        var worker = fixture.CreatePostgresStore();
        var producer = fixture.CreatePostgresStore();
        var queues = Enumerable.Range(0, 24).Select(_ => Queue()).ToArray();
        foreach (var queue in queues) Assert.False(await worker.WaitForWorkAsync(queue, TimeSpan.Zero, Ct));

        // Some of these notify in their own round trip, the others through the coalescing notifier.
        await Task.WhenAll(queues.Select(q => producer.EnqueueAsync(new EnqueueRequest(q, [1]), Ct)));

        foreach (var queue in queues)
            await Eventually(() => worker.WaitForWorkAsync(queue, TimeSpan.Zero, Ct), $"queue {queue} was woken");
    }

    [Fact]
    public async Task An_enqueue_that_lost_its_idempotency_key_still_returns_the_winner()
    {
        // The first round of a single enqueue may carry the inline NOTIFY; a lost key then goes the usual way.
        var producer = fixture.CreatePostgresStore();
        var queue = Queue();
        var first = await producer.EnqueueAsync(new EnqueueRequest(queue, [1]) { IdempotencyKey = "k" }, Ct);
        var second = await producer.EnqueueAsync(new EnqueueRequest(queue, [2]) { IdempotencyKey = "k" }, Ct);
        Assert.True(first.Created);
        Assert.False(second.Created);
        Assert.Equal(first.TaskId, second.TaskId);
    }

    private static async Task Eventually(Func<Task<bool>> condition, string because)
    {
        var giveUpAt = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(30);
        while (!await condition())
        {
            if (DateTimeOffset.UtcNow > giveUpAt) Assert.Fail($"Not true within 30 s: {because}");
            // A poll interval, not a sleep standing in for a condition.
            await Task.Delay(TimeSpan.FromMilliseconds(10), Ct);
        }
    }
}
