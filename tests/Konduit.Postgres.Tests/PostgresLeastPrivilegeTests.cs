using Konduit.Testing.Conformance;
using Npgsql;
using Xunit;

namespace Konduit.Postgres.Tests;

/// <summary>
/// A fixture whose stores run as a login role with no DDL rights (issue 13, least privilege): the schema is migrated by
/// the fixture's owner role with <see cref="PostgresTaskStoreOptions.RuntimeRole"/> set, which grants the runtime role
/// what the store needs, and nothing else.
/// </summary>
public sealed class PostgresRuntimeRoleFixture : PostgresStoreFixture
{
    private NpgsqlDataSource? _runtimeDataSource;

    /// <summary>The runtime role: LOGIN, no superuser, no CREATEDB/CREATEROLE, no ownership of anything.</summary>
    public string Role { get; } = "konduit_rt_" + Guid.NewGuid().ToString("N")[..8];

    /// <summary>The runtime role's password (random per fixture).</summary>
    public string Password { get; } = Guid.NewGuid().ToString("N");

    /// <summary>Connections as the runtime role.</summary>
    public NpgsqlDataSource RuntimeDataSource => _runtimeDataSource ?? throw new InvalidOperationException("The fixture is not initialized.");

    /// <inheritdoc />
    protected override NpgsqlDataSource StoreDataSource => RuntimeDataSource;

    /// <inheritdoc />
    public override async ValueTask InitializeAsync()
    {
        await base.InitializeAsync(); // the owner migrates first, without grants
        // CREATE ROLE takes no parameters; the name is generated above and the password is hex.
        await ExecuteAsync($"CREATE ROLE \"{Role}\" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD '{Password}'");
        await using (var owner = new PostgresTaskStore(new PostgresTaskStoreOptions { Schema = Schema, RuntimeRole = Role }, DataSource))
            await owner.MigrateAsync();
        var builder = new NpgsqlConnectionStringBuilder(ConnectionString) { Username = Role, Password = Password, MaxPoolSize = 20 };
        _runtimeDataSource = NpgsqlDataSource.Create(builder.ConnectionString);
    }

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync(); // the stores and the schema
        if (_runtimeDataSource is not null)
        {
            await _runtimeDataSource.DisposeAsync();
            await ExecuteAsync($"DROP ROLE IF EXISTS \"{Role}\""); // its grants went with the schema
        }
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        await cmd.ExecuteNonQueryAsync();
    }
}

// The store suites that exercise every statement of the store, run as the runtime role.
public sealed class PostgresRuntimeRoleEnqueueConformanceTests(PostgresRuntimeRoleFixture f) : EnqueueConformance<PostgresRuntimeRoleFixture>(f);
public sealed class PostgresRuntimeRoleIdempotencyConformanceTests(PostgresRuntimeRoleFixture f) : IdempotencyConformance<PostgresRuntimeRoleFixture>(f);
public sealed class PostgresRuntimeRoleLeaseConformanceTests(PostgresRuntimeRoleFixture f) : LeaseConformance<PostgresRuntimeRoleFixture>(f);
public sealed class PostgresRuntimeRoleHeartbeatConformanceTests(PostgresRuntimeRoleFixture f) : HeartbeatConformance<PostgresRuntimeRoleFixture>(f);
public sealed class PostgresRuntimeRoleRetryConformanceTests(PostgresRuntimeRoleFixture f) : RetryConformance<PostgresRuntimeRoleFixture>(f);
public sealed class PostgresRuntimeRoleReclaimConformanceTests(PostgresRuntimeRoleFixture f) : ReclaimConformance<PostgresRuntimeRoleFixture>(f);
public sealed class PostgresRuntimeRoleCancelRedriveConformanceTests(PostgresRuntimeRoleFixture f) : CancelRedriveConformance<PostgresRuntimeRoleFixture>(f);
public sealed class PostgresRuntimeRoleQueryConformanceTests(PostgresRuntimeRoleFixture f) : QueryConformance<PostgresRuntimeRoleFixture>(f);
public sealed class PostgresRuntimeRolePurgeConformanceTests(PostgresRuntimeRoleFixture f) : PurgeConformance<PostgresRuntimeRoleFixture>(f);
public sealed class PostgresRuntimeRoleCapabilitiesConformanceTests(PostgresRuntimeRoleFixture f) : CapabilitiesConformance<PostgresRuntimeRoleFixture>(f);
public sealed class PostgresRuntimeRolePauseConformanceTests(PostgresRuntimeRoleFixture f) : PauseConformance<PostgresRuntimeRoleFixture>(f);
public sealed class PostgresRuntimeRoleCompleteAndLeaseConformanceTests(PostgresRuntimeRoleFixture f) : CompleteAndLeaseConformance<PostgresRuntimeRoleFixture>(f);
public sealed class PostgresRuntimeRoleBulkConformanceTests(PostgresRuntimeRoleFixture f) : BulkConformance<PostgresRuntimeRoleFixture>(f);
public sealed class PostgresRuntimeRoleExpireLeaseConformanceTests(PostgresRuntimeRoleFixture f) : ExpireLeaseConformance<PostgresRuntimeRoleFixture>(f);

/// <summary>What the runtime role can and cannot do, and what migrating as it does.</summary>
public sealed class PostgresLeastPrivilegeTests(PostgresRuntimeRoleFixture fixture) : IClassFixture<PostgresRuntimeRoleFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("CREATE TABLE \"{0}\".intruder (id int)")]
    [InlineData("CREATE SCHEMA konduit_intruder_{1}")]
    [InlineData("ALTER TABLE \"{0}\".tasks ADD COLUMN intruder int")]
    [InlineData("DROP TABLE \"{0}\".tasks")]
    [InlineData("CREATE INDEX ON \"{0}\".tasks (queue)")]
    public async Task The_runtime_role_has_no_DDL_rights(string statement)
    {
        await using var cmd = fixture.RuntimeDataSource.CreateCommand(string.Format(statement, fixture.Schema, Guid.NewGuid().ToString("N")[..8]));
        var ex = await Assert.ThrowsAsync<PostgresException>(() => cmd.ExecuteNonQueryAsync(Ct));
        Assert.True(ex.SqlState is PostgresErrorCodes.InsufficientPrivilege or "42501", ex.SqlState + " " + ex.MessageText);
    }

    [Fact]
    public async Task The_runtime_role_migrating_an_up_to_date_schema_changes_nothing_and_succeeds()
    {
        var versions = await fixture.ScalarAsync<long>($"SELECT count(*) FROM \"{fixture.Schema}\".schema_version");
        await using var store = new PostgresTaskStore(new PostgresTaskStoreOptions { Schema = fixture.Schema }, fixture.RuntimeDataSource);

        await store.MigrateAsync(Ct); // what MigrateOnStartup does on every node

        Assert.Equal(versions, await fixture.ScalarAsync<long>($"SELECT count(*) FROM \"{fixture.Schema}\".schema_version"));
        var id = (await store.EnqueueAsync(new EnqueueRequest("least.privilege", [1]), Ct)).TaskId;
        Assert.Equal(TaskState.Pending, (await store.GetAsync(id, Ct)).State);
    }

    [Fact]
    public async Task The_runtime_role_migrating_a_new_schema_fails_with_one_clear_error_and_creates_nothing()
    {
        var schema = PostgresStoreFixture.NewSchemaName();
        await using var store = new PostgresTaskStore(new PostgresTaskStoreOptions { Schema = schema }, fixture.RuntimeDataSource);

        var ex = await Assert.ThrowsAsync<KonduitException>(() => store.MigrateAsync(Ct));

        Assert.Contains(schema, ex.Message, StringComparison.Ordinal);
        Assert.Contains("RuntimeRole", ex.Message, StringComparison.Ordinal);
        Assert.IsType<PostgresException>(ex.InnerException);
        Assert.Equal(0L, await fixture.ScalarAsync<long>("SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema));
    }

    [Fact]
    public async Task The_owner_migrating_with_a_runtime_role_grants_only_data_rights()
    {
        // Table privileges of the runtime role, read from the catalog: exactly the four data rights on every table.
        var rights = await fixture.ScalarAsync<string>(
            """
            SELECT string_agg(table_name || ':' || privilege_type, ',' ORDER BY table_name, privilege_type)
            FROM information_schema.role_table_grants WHERE grantee = $1 AND table_schema = $2 AND table_name !~ '^task_history_p[0-9]{8}$'
            """, fixture.Role, fixture.Schema);
        // Day partitions of task_history are left out: the upkeep makes new ones (as the owner, through its function)
        // without grants, and none are needed, since statements reach them through task_history. The default partition,
        // which retention deletes from directly, is granted like every other table.
        var tables = await fixture.ScalarAsync<string>(
            "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = $1 AND tablename !~ '^task_history_p[0-9]{8}$'", fixture.Schema);
        Assert.Contains("task_history_default", tables, StringComparison.Ordinal);
        var expected = string.Join(',', tables.Split(',').SelectMany(t => new[] { "DELETE", "INSERT", "SELECT", "UPDATE" }.Select(p => t + ":" + p)));
        Assert.Equal(expected, rights);
        Assert.False(await fixture.ScalarAsync<bool>("SELECT has_schema_privilege($1, $2, 'CREATE')", fixture.Role, fixture.Schema));
    }

    [Fact]
    public async Task The_runtime_role_makes_history_partitions_and_drops_them_only_through_the_stores_functions()
    {
        // The owner drops the furthest partition ahead; the runtime role's upkeep makes it again (SECURITY DEFINER).
        var furthest = "task_history_p" + (await fixture.ScalarAsync<DateTime>("SELECT ((now() AT TIME ZONE 'UTC')::date + $1)::timestamp", PostgresQueries.HistoryDaysAhead))
            .ToString("yyyyMMdd", System.Globalization.CultureInfo.InvariantCulture);
        await fixture.ScalarAsync<object>($"DROP TABLE \"{fixture.Schema}\".{furthest}");
        var store = fixture.CreatePostgresStore();
        await store.FoldCountsAsync(Ct);
        Assert.True(await fixture.ScalarAsync<bool>("SELECT to_regclass($1) IS NOT NULL", $"\"{fixture.Schema}\".{furthest}"));
        // Retention runs as the runtime role too (nothing this old here), while the role still cannot drop a partition itself.
        Assert.Empty(await store.ApplyRetentionAsync(TimeSpan.FromDays(3650), Ct));
        await using var drop = fixture.RuntimeDataSource.CreateCommand($"DROP TABLE \"{fixture.Schema}\".{furthest}");
        var ex = await Assert.ThrowsAsync<PostgresException>(() => drop.ExecuteNonQueryAsync(Ct));
        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, ex.SqlState);
    }

    [Theory]
    [InlineData("Konduit")]
    [InlineData("app; DROP TABLE x")]
    [InlineData("")]
    public void A_runtime_role_that_is_not_a_plain_identifier_is_rejected(string role)
    {
        var ex = Assert.Throws<ArgumentException>(() => new PostgresTaskStoreOptions { Schema = "konduit", RuntimeRole = role }.Validate());
        Assert.Equal(nameof(PostgresTaskStoreOptions.RuntimeRole), ex.ParamName);
    }
}
