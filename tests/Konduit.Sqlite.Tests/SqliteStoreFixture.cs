using Konduit.Testing.Conformance;
using Microsoft.Data.Sqlite;

namespace Konduit.Sqlite.Tests;

/// <summary>One database file per test class, in a temporary directory deleted with the fixture. No server to start.</summary>
public class SqliteStoreFixture : TaskStoreFixture, ITransactionalEnqueueHarness
{
    private readonly string _directory = Directory.CreateTempSubdirectory("konduit-sqlite-").FullName;

    public string ConnectionString => $"Data Source={Path.Combine(_directory, "konduit.db")}";

    public override ITransactionalEnqueueHarness TransactionalEnqueue => this;

    protected virtual SqliteSynchronousMode Synchronous => SqliteSynchronousMode.Full;

    public override async ValueTask InitializeAsync()
    {
        await using var store = new SqliteTaskStore(new SqliteTaskStoreOptions { ConnectionString = ConnectionString });
        await store.MigrateAsync();
    }

    public override ValueTask<ITaskStore> CreateStoreAsync(Action<TaskStoreOptions>? configure = null)
    {
        var options = new SqliteTaskStoreOptions { ConnectionString = ConnectionString, Synchronous = Synchronous };
        configure?.Invoke(options);
        return ValueTask.FromResult<ITaskStore>(Track(new SqliteTaskStore(options)));
    }

    public async Task<EnqueueResult> EnqueueInTransactionAsync(ITaskStore store, EnqueueRequest request, bool commit, CancellationToken cancellationToken)
    {
        await using var connection = new SqliteConnection(ConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using var tx = connection.BeginTransaction();
        var result = (await ((ITransactionalTaskStore)store).EnqueueManyAsync([request], tx, cancellationToken))[0];
        if (commit) await tx.CommitAsync(cancellationToken);
        else await tx.RollbackAsync(cancellationToken);
        return result;
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync(); // the stores first (they close their pooled connections), then the file
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }
}
