using Npgsql;
using Xunit;

namespace Konduit.Postgres.Tests;

/// <summary>Schemas as older store versions left them, for upgrade tests.</summary>
internal static class OlderSchemas
{
    /// <summary>Creates <paramref name="schema"/> as the migrations up to <paramref name="version"/> leave it, as an older
    /// store version would have (upgrade tests).</summary>
    public static async Task CreateSchemaAtVersionAsync(this PostgresStoreFixture fixture, string schema, int version)
    {
        var sql = new PostgresQueries(schema);
        await using var connection = await fixture.DataSource.OpenConnectionAsync(TestContext.Current.CancellationToken);
        await using var tx = await connection.BeginTransactionAsync(TestContext.Current.CancellationToken);
        await using (var prepare = new NpgsqlCommand(sql.MigrationPrepare, connection, tx))
            await prepare.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        foreach (var (applied, migration) in sql.Migrations.Where(m => m.Version <= version))
        {
            await using (var cmd = new NpgsqlCommand(migration, connection, tx)) await cmd.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
            await using var record = new NpgsqlCommand(sql.RecordVersion, connection, tx);
            record.Parameters.Add(new NpgsqlParameter<int> { TypedValue = applied });
            await record.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }
        await tx.CommitAsync(TestContext.Current.CancellationToken);
    }
}
