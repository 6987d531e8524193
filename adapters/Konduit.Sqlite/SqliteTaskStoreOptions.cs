using Microsoft.Data.Sqlite;

namespace Konduit.Sqlite;

/// <summary>Settings of a <see cref="SqliteTaskStore"/>.</summary>
public sealed class SqliteTaskStoreOptions : TaskStoreOptions
{
    /// <summary>
    /// The Microsoft.Data.Sqlite connection string naming the database file, e.g. <c>Data Source=/var/lib/app/konduit.db</c>
    /// (a relative path is resolved against the process's working directory). Required. Every process that shares the
    /// queue opens the same file on the same host; in-memory databases (<c>:memory:</c>, <c>Mode=Memory</c>) are refused:
    /// each connection would see a database of its own (use the InMemory store instead).
    /// </summary>
    public string? ConnectionString { get; set; }

    /// <summary>
    /// How long a write waits for another connection (this process or another) to release the database's write lock
    /// before the call fails with <see cref="StoreUnavailableException"/>. Default 30 seconds; 1 ms to 1 hour.
    /// </summary>
    public TimeSpan BusyTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// When a commit is on disk. <see cref="SqliteSynchronousMode.Full"/> (the default): every call that changes a task
    /// returns after its commit reached the disk, so nothing accepted is lost even when the host loses power.
    /// <see cref="SqliteSynchronousMode.Normal"/>: SQLite syncs the write-ahead log at checkpoints only; a crash of the
    /// process never loses a commit, but a power loss or an OS crash may take back the last ones, for many times the
    /// rate of single-task calls.
    /// </summary>
    public SqliteSynchronousMode Synchronous { get; set; } = SqliteSynchronousMode.Full;

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        if (string.IsNullOrWhiteSpace(ConnectionString))
            throw new ArgumentException("ConnectionString is required, e.g. \"Data Source=konduit.db\".", nameof(ConnectionString));
        SqliteConnectionStringBuilder builder;
        try
        {
            builder = new SqliteConnectionStringBuilder(ConnectionString);
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or InvalidOperationException)
        {
            throw new ArgumentException($"ConnectionString is not a valid SQLite connection string: {ex.Message}", nameof(ConnectionString), ex);
        }
        if (string.IsNullOrWhiteSpace(builder.DataSource))
            throw new ArgumentException("ConnectionString names no database file (Data Source=…).", nameof(ConnectionString));
        if (builder.Mode == SqliteOpenMode.Memory || builder.DataSource.Trim() == ":memory:")
            throw new ArgumentException("ConnectionString names an in-memory database; the SQLite store needs a file (use the InMemory store for memory).", nameof(ConnectionString));
        if (builder.Mode == SqliteOpenMode.ReadOnly)
            throw new ArgumentException("ConnectionString opens the database read-only; the store writes.", nameof(ConnectionString));
        if (!Enum.IsDefined(Synchronous))
            throw new ArgumentOutOfRangeException(nameof(Synchronous), Synchronous, "Synchronous must be Full or Normal.");
        if (BusyTimeout < TimeSpan.FromMilliseconds(1) || BusyTimeout > TimeSpan.FromHours(1))
            throw new ArgumentOutOfRangeException(nameof(BusyTimeout), BusyTimeout, "BusyTimeout must be between 1 ms and 1 hour.");
    }
}

/// <summary>How a <see cref="SqliteTaskStore"/>'s commits reach the disk (SQLite's <c>PRAGMA synchronous</c> in WAL mode).</summary>
public enum SqliteSynchronousMode
{
    /// <summary>Every commit is synced to disk before the call returns: durable against power loss.</summary>
    Full = 0,

    /// <summary>The log is synced at checkpoints: durable against a process crash, not against power loss or an OS crash.</summary>
    Normal = 1,
}
