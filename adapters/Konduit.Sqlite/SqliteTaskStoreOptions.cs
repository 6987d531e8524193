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
        if (BusyTimeout < TimeSpan.FromMilliseconds(1) || BusyTimeout > TimeSpan.FromHours(1))
            throw new ArgumentOutOfRangeException(nameof(BusyTimeout), BusyTimeout, "BusyTimeout must be between 1 ms and 1 hour.");
    }
}
