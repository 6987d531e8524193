using System.Reflection;
using System.Text.RegularExpressions;
using Npgsql;
using Xunit;

namespace Konduit.Postgres.Tests;

/// <summary>
/// Every named SQL statement of the adapter (<see cref="PostgresQueries"/>, <see cref="PostgresEventLogQueries"/>) is
/// used by the adapter's code and parses on the server with the parameter types the code binds. A statement added
/// without a line here fails the test, so a new statement cannot go unchecked.
/// </summary>
public sealed partial class PostgresStatementTests(PostgresStoreFixture fixture) : IClassFixture<PostgresStoreFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // Statement → its parameter types, as PREPARE takes them ("" = none).
    private static readonly Dictionary<string, string> StoreStatements = new()
    {
        ["MigrationLock"] = "integer, text",
        ["CurrentVersion"] = "",
        ["VersionTableExists"] = "text",
        ["RecordVersion"] = "integer",
        ["PauseQueue"] = "text",
        ["ResumeQueue"] = "text, text",
        ["PausedQueues"] = "",
        ["EnqueueOne"] = "uuid, text, integer, timestamptz, integer, text, text, jsonb, jsonb, bytea",
        ["ExistingKey"] = "text, text",
        ["EnqueueQuiet"] = "uuid[], text[], integer[], timestamptz[], integer[], text[], text[], jsonb[], jsonb[], bytea[]",
        ["EnqueueInTransaction"] = "uuid[], text[], integer[], timestamptz[], integer[], text[], text[], jsonb[], jsonb[], bytea[], text",
        ["Notify"] = "text, text[]",
        ["ExistingKeys"] = "text[], text[]",
        ["Lease"] = "text, integer, text, interval",
        ["LeaseByIds"] = "uuid[], text, text, interval",
        ["DueIds"] = "text, integer",
        ["Heartbeat"] = "uuid, bigint, interval",
        ["HeartbeatMany"] = "uuid[], bigint[], interval",
        ["Complete"] = "uuid, bigint, bytea",
        ["CompleteMany"] = "uuid[], bigint[], bytea[]",
        ["CompleteAndLease"] = "text, integer, text, interval, uuid, bigint, bytea",
        ["Fail"] = "uuid, bigint, boolean, interval, text, text",
        ["StateOf"] = "uuid",
        ["ReclaimExpired"] = "integer, text",
        ["ExpireLease"] = "uuid, bigint, text",
        ["Cancel"] = "uuid",
        ["Retry"] = "uuid, text",
        ["Get"] = "uuid",
        ["Stats"] = "",
        ["Purge"] = "smallint[], interval, text, integer",
        ["FoldCounts"] = "interval",
        ["PurgeDefaultPartition"] = "smallint[], interval, text, integer",
        ["AddHistoryPartitions"] = "integer",
        ["DropHistoryPartitions"] = "interval",
        ["MoveStrayFinished"] = "integer",
        ["PromoteDue"] = "integer",
    };

    // Checked another way, with the reason.
    private static readonly Dictionary<string, string> StoreOthers = new()
    {
        ["MigrationPrepare"] = "several DDL statements: run by every fixture's MigrateAsync",
        ["Migrations"] = "several DDL statements each: run by every fixture's MigrateAsync",
        ["CopyTasks"] = "COPY cannot be prepared: started and aborted below",
        ["CopyTasksWithRunAt"] = "COPY cannot be prepared: started and aborted below",
        ["QueryLivePrefix"] = "composed with every filter fragment and run below",
        ["QueryHistoryPrefix"] = "composed with every filter fragment and run below",
        ["CancelManyPrefix"] = "composed with every filter fragment and its suffix, and run below",
        ["CancelManySuffix"] = "composed with every filter fragment and its prefix, and run below",
        ["RedriveManyPrefix"] = "composed with every filter fragment and its suffix, and run below",
        ["RedriveManySuffix"] = "composed with every filter fragment and its prefix, and run below",
        ["Listen"] = "LISTEN cannot be prepared: run below",
        ["Schema"] = "not a statement",
        ["VersionTableName"] = "not a statement: the parameter of VersionTableExists",
        ["QuotedSchema"] = "not a statement",
        ["Channel"] = "not a statement",
    };

    private static readonly Dictionary<string, string> EventLogStatements = new()
    {
        ["Append"] = "uuid[], uuid[], text[], text[], smallint[], integer[], bigint[], text[], text[], interval",
        ["History"] = "uuid",
        ["Window"] = "text, uuid, uuid, uuid, integer",
        ["DeleteExpired"] = "integer",
    };

    private static readonly Dictionary<string, string> EventLogOthers = new()
    {
        ["Migrate"] = "several DDL statements: run by PostgresTaskEventLog.MigrateAsync below",
    };

    [Fact]
    public void Every_named_statement_is_listed_here_and_used_by_the_adapter()
    {
        var source = AdapterSource();
        Check(typeof(PostgresQueries), StoreStatements, StoreOthers, "PostgresQueries.cs");
        Check(typeof(PostgresEventLogQueries), EventLogStatements, EventLogOthers, "PostgresEventLogQueries.cs");

        void Check(Type queries, Dictionary<string, string> statements, Dictionary<string, string> others, string definedIn)
        {
            var names = queries.GetProperties(BindingFlags.Public | BindingFlags.Instance).Select(p => p.Name).ToHashSet();
            Assert.True(names.SetEquals(statements.Keys.Concat(others.Keys)),
                $"{queries.Name}: listed here but gone: {string.Join(", ", statements.Keys.Concat(others.Keys).Except(names))}; "
                + $"new, add them here: {string.Join(", ", names.Except(statements.Keys).Except(others.Keys))}");
            var code = string.Concat(source.Where(f => f.Key != definedIn).Select(f => f.Value));
            foreach (var name in names.Except(["Schema", "QuotedSchema", "Channel"]))
                Assert.True(Regex.IsMatch(code, $@"\b_?sql\.{name}\b"), $"{queries.Name}.{name} is not used by the adapter");
        }
    }

    [Fact]
    public async Task Every_named_statement_parses_with_the_types_the_code_binds()
    {
        var sql = new PostgresQueries(fixture.Schema);
        var logSchema = PostgresStoreFixture.NewSchemaName();
        try
        {
            await using (var log = new PostgresTaskEventLog(new PostgresTaskEventLogOptions { Schema = logSchema }, fixture.DataSource))
                await log.MigrateAsync(Ct);
            var logSql = new PostgresEventLogQueries(logSchema);
            await using var connection = await fixture.DataSource.OpenConnectionAsync(Ct);
            await PrepareAllAsync(connection, sql, StoreStatements);
            await PrepareAllAsync(connection, logSql, EventLogStatements);

            // The query with every filter fragment, built and bound by PostgresAdmin itself.
            var everyFilter = new TaskQuery
            {
                Queue = "q", States = [TaskState.Pending], Tenant = "t",
                EnqueuedFrom = DateTimeOffset.UnixEpoch, EnqueuedTo = DateTimeOffset.UtcNow,
                FinishedFrom = DateTimeOffset.UnixEpoch, FinishedTo = DateTimeOffset.UtcNow,
            };
            // Three shapes: history only (a finish-time bound), both tables merged (no state filter), tasks only.
            foreach (var filter in new[] { everyFilter, everyFilter with { States = null }, everyFilter with { FinishedFrom = null, FinishedTo = null } })
            await using (var query = PostgresAdmin.BuildQuery(sql, filter, new PageRequest(1, Guid.NewGuid())))
            {
                foreach (var fragment in new[]
                {
                    PostgresQueries.QueryByQueue, PostgresQueries.QueryByTenant, PostgresQueries.QueryCreatedFrom,
                    PostgresQueries.QueryCreatedTo, PostgresQueries.QueryAfter,
                }.Concat(filter.States is null ? [] : [PostgresQueries.QueryByStates])
                 .Concat(filter.FinishedFrom is null ? [] : [PostgresQueries.QueryFinishedFrom, PostgresQueries.QueryFinishedTo]))
                {
                    Assert.Contains(fragment, query.CommandText, StringComparison.Ordinal);
                }
                query.Connection = connection;
                await using var reader = await query.ExecuteReaderAsync(Ct);
                Assert.False(await reader.ReadAsync(Ct));
            }
            // Bulk cancel and redrive with every filter fragment, built by PostgresAdmin (nothing matches in this schema).
            foreach (var (prefix, suffix, channel) in new[] { (sql.CancelManyPrefix, sql.CancelManySuffix, (string?)null), (sql.RedriveManyPrefix, sql.RedriveManySuffix, sql.Channel) })
            {
                await using var bulk = PostgresAdmin.BuildBulk(prefix, suffix, everyFilter with { Queue = "no-such-queue" }, [TaskState.Failed], 10, channel);
                bulk.Connection = connection;
                await using var reader = await bulk.ExecuteReaderAsync(Ct);
                Assert.False(await reader.ReadAsync(Ct));
            }
            foreach (var copy in new[] { sql.CopyTasks, sql.CopyTasksWithRunAt })
            {
                // The server parses COPY when it starts; disposing the importer without completing aborts it.
                var importer = await connection.BeginBinaryImportAsync(copy, Ct);
                await importer.DisposeAsync();
            }
            await using (var listen = new NpgsqlCommand(sql.Listen + "; UNLISTEN *", connection))
                await listen.ExecuteNonQueryAsync(Ct);
        }
        finally
        {
            await fixture.DropSchemaAsync(logSchema);
        }
    }

    private static async Task PrepareAllAsync(NpgsqlConnection connection, object queries, Dictionary<string, string> statements)
    {
        foreach (var (name, types) in statements)
        {
            var text = (string)queries.GetType().GetProperty(name)!.GetValue(queries)!;
            var prepared = "konduit_check_" + name.ToLowerInvariant();
            try
            {
                await using (var prepare = new NpgsqlCommand($"PREPARE {prepared}{(types.Length == 0 ? "" : $"({types})")} AS {text}", connection))
                    await prepare.ExecuteNonQueryAsync(Ct);
            }
            catch (PostgresException ex)
            {
                Assert.Fail($"{queries.GetType().Name}.{name} does not parse: {ex.MessageText}");
            }
            await using var deallocate = new NpgsqlCommand($"DEALLOCATE {prepared}", connection);
            await deallocate.ExecuteNonQueryAsync(Ct);
        }
    }

    /// <summary>The adapter's C# files by name (the repository is found from the test binary's location upwards).</summary>
    private static Dictionary<string, string> AdapterSource()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Konduit.sln"))) dir = dir.Parent;
        Assert.True(dir is not null, "the repository root (Konduit.sln) above " + AppContext.BaseDirectory);
        var adapter = Path.Combine(dir.FullName, "adapters", "Konduit.Postgres");
        return Directory.EnumerateFiles(adapter, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .ToDictionary(f => Path.GetFileName(f), File.ReadAllText);
    }
}
