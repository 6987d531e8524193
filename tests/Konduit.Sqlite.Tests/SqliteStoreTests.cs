using System.Data;
using System.Data.Common;
using Konduit.Hosting;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Xunit;

namespace Konduit.Sqlite.Tests;

/// <summary>What the conformance suites cannot say about this adapter: its file, its lock, its transactions, its registration.</summary>
public sealed class SqliteStoreTests(SqliteStoreFixture fixture) : IClassFixture<SqliteStoreFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Queue() => "sqlite." + Guid.NewGuid().ToString("N");

    private async Task<SqliteTaskStore> StoreAsync(Action<TaskStoreOptions>? configure = null) =>
        (SqliteTaskStore)await fixture.CreateStoreAsync(configure);

    private async Task<SqliteConnection> OpenAsync()
    {
        var connection = new SqliteConnection(fixture.ConnectionString);
        await connection.OpenAsync(Ct);
        return connection;
    }

    private async Task<long> CountAsync(string queue)
    {
        await using var connection = await OpenAsync();
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT count(*) FROM tasks WHERE queue = @queue";
        cmd.Parameters.AddWithValue("@queue", queue);
        return (long)(await cmd.ExecuteScalarAsync(Ct))!;
    }

    [Fact]
    public async Task Migrate_puts_a_new_file_in_WAL_mode_once_when_four_stores_run_it_at_the_same_time()
    {
        var path = Path.Combine(Path.GetTempPath(), $"konduit-migrate-{Guid.NewGuid():N}.db");
        var connectionString = $"Data Source={path}";
        try
        {
            var stores = Enumerable.Range(0, 4).Select(_ => new SqliteTaskStore(new SqliteTaskStoreOptions { ConnectionString = connectionString })).ToList();
            await Task.WhenAll(stores.Select(s => Task.Run(() => s.MigrateAsync(Ct), Ct)));
            foreach (var store in stores) await store.DisposeAsync();

            await using var connection = new SqliteConnection(connectionString);
            await connection.OpenAsync(Ct);
            await using var cmd = connection.CreateCommand();
            cmd.CommandText = "PRAGMA journal_mode";
            Assert.Equal("wal", (string?)await cmd.ExecuteScalarAsync(Ct));
            cmd.CommandText = "SELECT count(*) FROM schema_version";
            Assert.Equal(1L, (long)(await cmd.ExecuteScalarAsync(Ct))!);
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            foreach (var file in Directory.GetFiles(Path.GetDirectoryName(path)!, Path.GetFileName(path) + "*")) File.Delete(file);
        }
    }

    [Fact]
    public async Task A_file_that_was_never_migrated_fails_with_a_message_naming_MigrateAsync()
    {
        var path = Path.Combine(Path.GetTempPath(), $"konduit-unmigrated-{Guid.NewGuid():N}.db");
        try
        {
            await using var store = new SqliteTaskStore(new SqliteTaskStoreOptions { ConnectionString = $"Data Source={path}" });
            var ex = await Assert.ThrowsAsync<KonduitException>(() => store.EnqueueAsync(new EnqueueRequest(Queue(), [1]), Ct));
            Assert.Contains("MigrateAsync", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Stores_on_one_file_leasing_at_once_hand_out_each_task_exactly_once()
    {
        // Four stores = four connection pools and four write gates: what separate processes on one file have in common
        // is SQLite's file lock, which is all that serializes them here.
        var stores = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => StoreAsync()));
        var queue = Queue();
        await stores[0].EnqueueManyAsync([.. Enumerable.Range(0, 200).Select(i => new EnqueueRequest(queue, [(byte)i]))], Ct);

        var leased = await Task.WhenAll(stores.Select((store, w) => Task.Run(async () =>
        {
            var mine = new List<TaskLease>();
            while (true)
            {
                var batch = await store.LeaseAsync(queue, $"w{w}", 7, TimeSpan.FromMinutes(5), Ct);
                if (batch.Count == 0) return mine;
                mine.AddRange(batch);
            }
        }, Ct)));

        var ids = leased.SelectMany(l => l).Select(l => l.TaskId).ToList();
        Assert.Equal(200, ids.Count);
        Assert.Equal(200, ids.Distinct().Count());
        // The file's own counts: every task running on its first lease, none left pending.
        var stats = Assert.Single(await stores[0].GetStatsAsync(Ct), s => s.Queue == queue);
        Assert.Equal((0L, 200L), (stats.Pending, stats.Running));
        var page = await stores[1].QueryAsync(new TaskQuery { Queue = queue }, new PageRequest(Limit: 1000), Ct);
        Assert.All(page.Items, t => Assert.Equal((1, 1L), (t.Attempts, t.LeaseToken)));
    }

    [Fact]
    public async Task A_write_that_waits_longer_than_the_busy_timeout_fails_as_unavailable_and_changes_nothing()
    {
        var store = await StoreAsync();
        var options = new SqliteTaskStoreOptions { ConnectionString = fixture.ConnectionString, BusyTimeout = TimeSpan.FromMilliseconds(200) };
        await using var impatient = new SqliteTaskStore(options);
        var queue = Queue();
        await using var connection = await OpenAsync();
        // Another process's writer, as far as the store can tell: it holds the file's write lock.
        await using (var holder = connection.BeginTransaction())
        {
            var ex = await Assert.ThrowsAsync<StoreUnavailableException>(() => impatient.EnqueueAsync(new EnqueueRequest(queue, [1]), Ct));
            Assert.Equal("sqlite", ex.Store);
            Assert.IsType<SqliteException>(ex.InnerException);
            holder.Rollback();
        }
        Assert.Equal(0L, await CountAsync(queue));
        Assert.True((await store.EnqueueAsync(new EnqueueRequest(queue, [2]), Ct)).Created);
    }

    [Fact]
    public async Task Transactional_enqueue_is_invisible_to_other_connections_until_the_commit()
    {
        var store = await StoreAsync();
        var queue = Queue();
        await using var connection = await OpenAsync();
        await using var tx = connection.BeginTransaction();

        var result = (await store.EnqueueManyAsync([new EnqueueRequest(queue, [1]) { IdempotencyKey = "k" }], tx, Ct))[0];
        Assert.True(result.Created);
        // WAL: readers on other connections keep the snapshot from before the caller's commit.
        await Assert.ThrowsAsync<TaskNotFoundException>(() => store.GetAsync(result.TaskId, Ct));
        await tx.CommitAsync(Ct);

        Assert.Equal(TaskState.Pending, (await store.GetAsync(result.TaskId, Ct)).State);
        Assert.Equal(new EnqueueResult(result.TaskId, false), await store.EnqueueAsync(new EnqueueRequest(queue, [2]) { IdempotencyKey = "k" }, Ct));
    }

    [Fact]
    public async Task Transactional_enqueue_refuses_another_providers_transaction_naming_the_parameter()
    {
        ITransactionalTaskStore store = await StoreAsync();
        var queue = Queue();
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => store.EnqueueManyAsync([new EnqueueRequest(queue, [1])], new ForeignTransaction(), Ct));
        Assert.Equal("transaction", ex.ParamName);
        Assert.Contains(nameof(SqliteTransaction), ex.Message, StringComparison.Ordinal);
        Assert.Equal(0L, await CountAsync(queue));
    }

    [Fact]
    public async Task Transactional_enqueue_refuses_a_finished_transaction_and_one_on_another_file()
    {
        var store = await StoreAsync();
        var queue = Queue();
        await using var connection = await OpenAsync();
        var finished = connection.BeginTransaction();
        finished.Commit();
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => store.EnqueueManyAsync([new EnqueueRequest(queue, [1])], finished, Ct));
        Assert.Equal("transaction", ex.ParamName);

        var other = Path.Combine(Path.GetTempPath(), $"konduit-other-{Guid.NewGuid():N}.db");
        try
        {
            await using var otherConnection = new SqliteConnection($"Data Source={other}");
            await otherConnection.OpenAsync(Ct);
            await using var otherTx = otherConnection.BeginTransaction();
            ex = await Assert.ThrowsAsync<ArgumentException>(() => store.EnqueueManyAsync([new EnqueueRequest(queue, [1])], otherTx, Ct));
            Assert.Contains("another database", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            File.Delete(other);
        }
        Assert.Equal(0L, await CountAsync(queue));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("Data Source=:memory:")]
    [InlineData("Data Source=x.db;Mode=Memory")]
    [InlineData("Data Source=x.db;Mode=ReadOnly")]
    [InlineData("Data Source=x.db;Bogus=1")]
    public void A_connection_string_the_store_cannot_use_is_refused_naming_it(string? connectionString)
    {
        var ex = Assert.ThrowsAny<ArgumentException>(() => new SqliteTaskStore(new SqliteTaskStoreOptions { ConnectionString = connectionString }));
        Assert.Equal(nameof(SqliteTaskStoreOptions.ConnectionString), ex.ParamName);
    }

    [Fact]
    public void An_undefined_synchronous_mode_is_refused_naming_it()
    {
        var ex = Assert.ThrowsAny<ArgumentException>(() => new SqliteTaskStore(new SqliteTaskStoreOptions { ConnectionString = "Data Source=x.db", Synchronous = (SqliteSynchronousMode)7 }));
        Assert.Equal(nameof(SqliteTaskStoreOptions.Synchronous), ex.ParamName);
    }

    [Fact]
    public void A_busy_timeout_out_of_range_is_refused_naming_it()
    {
        var ex = Assert.ThrowsAny<ArgumentException>(() => new SqliteTaskStore(new SqliteTaskStoreOptions { ConnectionString = "Data Source=x.db", BusyTimeout = TimeSpan.Zero }));
        Assert.Equal(nameof(SqliteTaskStoreOptions.BusyTimeout), ex.ParamName);
    }

    [Fact]
    public async Task Configuration_selects_the_store_by_name_migrates_it_and_reports_it_healthy()
    {
        var path = Path.Combine(Path.GetTempPath(), $"konduit-config-{Guid.NewGuid():N}.db");
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Konduit:Store"] = "Sqlite",
            ["Konduit:Sqlite:ConnectionString"] = $"Data Source={path}",
            ["Konduit:Sqlite:BusyTimeout"] = "00:00:05",
            ["Konduit:Sqlite:MigrateOnStartup"] = "true",
        }).Build();
        var services = new ServiceCollection().AddLogging();
        services.AddKonduitStore(configuration.GetSection("Konduit")); // no AddSqliteStore(): found by "Store": "Sqlite"
        try
        {
            await using var provider = services.BuildServiceProvider();
            await provider.GetRequiredService<IKonduitStoreStartup>().StartAsync(Ct);
            var store = Assert.IsType<SqliteTaskStore>(provider.GetRequiredService<ITaskStore>());
            Assert.True((await store.EnqueueAsync(new EnqueueRequest(Queue(), [1]), Ct)).Created);
            var report = await provider.GetRequiredService<HealthCheckService>().CheckHealthAsync(Ct);
            Assert.Equal(HealthStatus.Healthy, report.Entries["konduit-store"].Status);
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            foreach (var file in Directory.GetFiles(Path.GetDirectoryName(path)!, Path.GetFileName(path) + "*")) File.Delete(file);
        }
    }

    [Fact]
    public async Task A_missing_connection_string_fails_naming_the_configuration_key()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Konduit:Store"] = "Sqlite" }).Build();
        var services = new ServiceCollection().AddLogging();
        services.AddKonduitStore(configuration.GetSection("Konduit"));
        await using var provider = services.BuildServiceProvider();
        var ex = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<ITaskStore>());
        Assert.Contains("Konduit:Sqlite:ConnectionString", ex.Message, StringComparison.Ordinal);
    }

    private sealed class ForeignTransaction : DbTransaction
    {
        public override IsolationLevel IsolationLevel => IsolationLevel.ReadCommitted;
        protected override DbConnection? DbConnection => null;
        public override void Commit() { }
        public override void Rollback() { }
    }
}
