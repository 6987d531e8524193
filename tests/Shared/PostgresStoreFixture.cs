using Konduit.Testing.Conformance;
using Npgsql;
using Xunit;

namespace Konduit.Postgres.Tests;

/// <summary>
/// The PostgreSQL adapter's conformance fixture: one server per test process, one fresh schema per fixture
/// instance (<c>konduit_t_xxxxxxxx</c>), migrated at start and dropped at the end.
/// </summary>
/// <remarks>
/// The server is, in order: <c>KONDUIT_TEST_POSTGRES</c> (set by <c>source .services/env</c> after
/// <c>scripts/services.sh up</c>); else a Testcontainers PostgreSQL when a Docker engine answers; else the
/// fixture fails with instructions.
/// </remarks>
public class PostgresStoreFixture : TaskStoreFixture
{
    public const string EnvironmentVariable = "KONDUIT_TEST_POSTGRES";

    private static readonly SemaphoreSlim ServerGate = new(1, 1);
    // One data source for the whole test process, never disposed: fixtures of many test classes share it (one pool
    // instead of one per class keeps the server's connection count bounded), and the process exit closes it.
    private static NpgsqlDataSource? s_dataSource;
    // The stores' pool: the same server with the pool setting a store gives the data source it builds from a connection
    // string (no reset of returned connections, PostgresTaskStoreOptions.ConnectionString), so the suite and the
    // benchmark run what an application configured by connection string runs. Tests' own statements (SET, LISTEN, …)
    // go through s_dataSource, which keeps the reset.
    private static NpgsqlDataSource? s_storeDataSource;
    private static string? s_connectionString;

    private NpgsqlDataSource? _dataSource;

    public PostgresStoreFixture()
    {
        TransactionalEnqueue = new TransactionalEnqueueHarness(this);
    }

    /// <summary>This fixture's schema.</summary>
    public string Schema { get; } = NewSchemaName();

    /// <summary>The shared data source (available after <see cref="InitializeAsync"/>).</summary>
    public NpgsqlDataSource DataSource => _dataSource ?? throw new InvalidOperationException("The fixture is not initialized.");

    /// <summary>The data source the fixture's stores run on (the shared stores' pool) unless a subclass runs them as another role.</summary>
    protected virtual NpgsqlDataSource StoreDataSource => s_storeDataSource ?? throw new InvalidOperationException("The fixture is not initialized.");

    /// <inheritdoc />
    public override ITransactionalEnqueueHarness? TransactionalEnqueue { get; }

    /// <summary>The test server's connection string (available after <see cref="InitializeAsync"/>), for tests that build their own data source.</summary>
    public static string ConnectionString => s_connectionString ?? throw new InvalidOperationException("The fixture is not initialized.");

    /// <summary>A schema name no other fixture or test uses.</summary>
    public static string NewSchemaName() => "konduit_t_" + Guid.NewGuid().ToString("N")[..8];

    /// <inheritdoc />
    public override async ValueTask InitializeAsync()
    {
        _dataSource = await SharedDataSourceAsync();
        // Migrated by the owner role (the shared data source), whatever role the fixture's stores then run as.
        await using var store = new PostgresTaskStore(new PostgresTaskStoreOptions { Schema = Schema }, DataSource);
        await store.MigrateAsync();
    }

    /// <inheritdoc />
    public override ValueTask<ITaskStore> CreateStoreAsync(Action<TaskStoreOptions>? configure = null) =>
        ValueTask.FromResult<ITaskStore>(CreatePostgresStore(configure: configure));

    /// <summary>A store over this fixture's server (and, unless given, its schema), disposed with the fixture.</summary>
    public PostgresTaskStore CreatePostgresStore(string? schema = null, Action<TaskStoreOptions>? configure = null)
    {
        var options = new PostgresTaskStoreOptions { Schema = schema ?? Schema };
        configure?.Invoke(options);
        return Track(new PostgresTaskStore(options, StoreDataSource));
    }

    /// <summary>Runs a scalar query (test inspection only; <paramref name="sql"/> is test-authored).</summary>
    public async Task<T> ScalarAsync<T>(string sql, params object[] args)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        foreach (var arg in args) cmd.Parameters.Add(new NpgsqlParameter { Value = arg });
        return (T)(await cmd.ExecuteScalarAsync(TestContext.Current.CancellationToken))!;
    }

    /// <summary>Drops a schema created by a test.</summary>
    public async Task DropSchemaAsync(string schema)
    {
        await using var cmd = DataSource.CreateCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
        await cmd.ExecuteNonQueryAsync();
    }

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync(); // the stores first, then their schema
        if (_dataSource is not null) await DropSchemaAsync(Schema);
    }

    private static async Task<NpgsqlDataSource> SharedDataSourceAsync()
    {
        await ServerGate.WaitAsync();
        try
        {
            if (s_dataSource is not null) return s_dataSource;
            var connectionString = await TestServer.LocateAsync(EnvironmentVariable, "PostgreSQL",
                "run `scripts/services.sh up && source .services/env`", Konduit.Tests.Shared.PostgresTestContainer.StartAsync);
            s_dataSource = NpgsqlDataSource.Create(connectionString);
            s_storeDataSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(connectionString) { NoResetOnClose = true }.ConnectionString);
            s_connectionString = connectionString;
            return s_dataSource;
        }
        finally
        {
            ServerGate.Release();
        }
    }


    private sealed class TransactionalEnqueueHarness(PostgresStoreFixture fixture) : ITransactionalEnqueueHarness
    {
        public async Task<EnqueueResult> EnqueueInTransactionAsync(ITaskStore store, EnqueueRequest request, bool commit, CancellationToken cancellationToken)
        {
            // The harness belongs to this adapter, so it may use the adapter's own API.
            var postgres = (PostgresTaskStore)store;
            await using var connection = await fixture.StoreDataSource.OpenConnectionAsync(cancellationToken);
            await using var tx = await connection.BeginTransactionAsync(cancellationToken);
            var result = await postgres.EnqueueAsync(request, tx, cancellationToken);
            if (commit) await tx.CommitAsync(cancellationToken);
            else await tx.RollbackAsync(cancellationToken);
            return result;
        }
    }
}
