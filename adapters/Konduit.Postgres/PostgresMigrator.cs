using System.Globalization;
using Npgsql;

namespace Konduit.Postgres;

/// <summary>
/// Versioned migrations under an advisory lock (<see cref="PostgresQueries.Migrations"/>), and the one schema-version
/// check the COPY path needs.
/// </summary>
internal sealed class PostgresMigrator(PostgresExecutor db, PostgresQueries sql, string? runtimeRole)
{
    // Whether the schema has the COPY path's column defaults (version ≥ CopyVersion): 0 not checked yet, 1 yes, -1 no.
    private int _copyReady;

    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        try
        {
            await db.RunAsync("migrate", this, static (c, self, ct) => self.MigrateCoreAsync(c, ct), cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            // The transaction rolled back: nothing was created or changed.
            throw new KonduitException(
                $"Migrating schema '{sql.Schema}' needs rights to create and alter it, which this connection's role lacks ({ex.MessageText}). " +
                "Run migrations with a role that owns the schema, and let the store's runtime role get its rights through PostgresTaskStoreOptions.RuntimeRole.",
                ex);
        }
        Volatile.Write(ref _copyReady, 1);
    }

    private async Task<bool> MigrateCoreAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var tx = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (tx.ConfigureAwait(false))
        {
            using (var cmd = new NpgsqlCommand(sql.MigrationLock, connection, tx))
            {
                PostgresExecutor.Add(cmd, PostgresQueries.MigrationLockClass);
                PostgresExecutor.Add(cmd, sql.Schema);
                await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            // An up-to-date schema is read, never altered: a runtime role without DDL rights can run this (MigrateOnStartup).
            bool exists;
            using (var cmd = new NpgsqlCommand(sql.VersionTableExists, connection, tx))
            {
                PostgresExecutor.Add(cmd, sql.VersionTableName);
                exists = (bool)(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
            }
            if (!exists)
            {
                using var cmd = new NpgsqlCommand(sql.MigrationPrepare, connection, tx);
                await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            int current;
            using (var cmd = new NpgsqlCommand(sql.CurrentVersion, connection, tx))
                current = Convert.ToInt32(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
            if (current > PostgresQueries.LatestVersion)
                throw new KonduitException(
                    $"Schema '{sql.Schema}' is at version {current}, newer than this Konduit.Postgres supports ({PostgresQueries.LatestVersion}): upgrade the library.");
            if (current == PostgresQueries.LatestVersion && runtimeRole is null)
            {
                await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
                return true;
            }

            foreach (var (version, migration) in sql.Migrations)
            {
                if (version <= current) continue;
                using (var cmd = new NpgsqlCommand(migration, connection, tx))
                    await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                using (var cmd = new NpgsqlCommand(sql.RecordVersion, connection, tx))
                {
                    PostgresExecutor.Add(cmd, version);
                    await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
            }
            if (runtimeRole is not null)
            {
                using var cmd = new NpgsqlCommand(sql.RuntimeGrants(runtimeRole), connection, tx);
                await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
        return true;
    }

    /// <summary>True once the schema is at <see cref="PostgresQueries.CopyVersion"/> or later (checked once per store).</summary>
    public async ValueTask<bool> CopyReadyAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var ready = Volatile.Read(ref _copyReady);
        if (ready != 0) return ready > 0;
        using var cmd = new NpgsqlCommand(sql.CurrentVersion, connection);
        var version = Convert.ToInt32(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
        // An older schema keeps the array path until MigrateAsync runs in this process.
        Volatile.Write(ref _copyReady, version >= PostgresQueries.CopyVersion ? 1 : -1);
        return version >= PostgresQueries.CopyVersion;
    }
}
