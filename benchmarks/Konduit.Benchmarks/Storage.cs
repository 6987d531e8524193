using Npgsql;

namespace Konduit.Benchmarks;

/// <summary>One table or index of a target's schema at one moment.</summary>
/// <param name="Name">The relation's name (unqualified: every relation of a snapshot is in the target's own schema).</param>
/// <param name="Table">For an index, the table it indexes; null for a table.</param>
/// <param name="Bytes">Table: heap, TOAST, free-space and visibility maps (<c>pg_table_size</c>); index: <c>pg_relation_size</c>.</param>
/// <param name="LiveTuples">Tables only: <c>pg_stat_user_tables.n_live_tup</c> (the statistics' estimate).</param>
/// <param name="DeadTuples">Tables only: <c>n_dead_tup</c>, dead row versions not yet vacuumed away.</param>
/// <param name="Autovacuums">Tables only: <c>autovacuum_count</c> since the table was created.</param>
/// <param name="LastAutovacuum">Tables only: when autovacuum last finished on it.</param>
public sealed record RelationSize(string Name, string? Table, long Bytes, long? LiveTuples = null, long? DeadTuples = null, long? Autovacuums = null,
    DateTimeOffset? LastAutovacuum = null)
{
    public bool IsIndex => Table is not null;
}

/// <summary>Every table and index of a target's schema at one moment (PostgreSQL-backed targets).</summary>
public sealed record StorageSnapshot(DateTimeOffset At, IReadOnlyList<RelationSize> Relations)
{
    public long TableBytes => Relations.Where(r => !r.IsIndex).Sum(r => r.Bytes);

    public long IndexBytes => Relations.Where(r => r.IsIndex).Sum(r => r.Bytes);

    public long TotalBytes => TableBytes + IndexBytes;

    public long DeadTuples => Relations.Sum(r => r.DeadTuples ?? 0);

    public long Autovacuums => Relations.Sum(r => r.Autovacuums ?? 0);

    public RelationSize? Find(string name) => Relations.FirstOrDefault(r => r.Name == name);
}

/// <summary>A transaction on its own connection that has taken an xid and holds it: the server's xmin horizon cannot pass it, so no row version deleted after it began can be vacuumed away until <see cref="DisposeAsync"/> commits.</summary>
public sealed class HorizonPin : IAsyncDisposable
{
    // pg_current_xact_id assigns the transaction an xid at once (a read-only transaction would have none): the
    // horizon is held by the running xid itself, not by a snapshot, so it holds between statements in READ COMMITTED.
    internal const string TakeXid = "SELECT pg_current_xact_id()::text::bigint";

    // The next xid the server will assign, from a fresh READ COMMITTED snapshot (age() would count from this
    // transaction's own xid and say 0): minus ours, how far behind the horizon is held.
    internal const string NextXid = "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint";

    private readonly NpgsqlConnection _connection;
    private readonly NpgsqlTransaction _transaction;

    private HorizonPin(NpgsqlConnection connection, NpgsqlTransaction transaction, long xid)
    {
        _connection = connection;
        _transaction = transaction;
        Xid = xid;
    }

    /// <summary>The xid the transaction holds.</summary>
    public long Xid { get; }

    public static async Task<HorizonPin> OpenAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken)
    {
        var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        try
        {
            var transaction = await connection.BeginTransactionAsync(cancellationToken);
            await using var cmd = new NpgsqlCommand(TakeXid, connection, transaction);
            var xid = (long)(await cmd.ExecuteScalarAsync(cancellationToken))!;
            return new HorizonPin(connection, transaction, xid);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>Xids assigned since this one (by every session of the server): the age of the held horizon.</summary>
    public async Task<long> AgeAsync(CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand(NextXid, _connection, _transaction);
        return (long)(await cmd.ExecuteScalarAsync(cancellationToken))! - Xid - 1;
    }

    /// <summary>Commits: the horizon moves on.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await _transaction.CommitAsync();
        }
        finally
        {
            await _transaction.DisposeAsync();
            await _connection.DisposeAsync();
        }
    }
}
