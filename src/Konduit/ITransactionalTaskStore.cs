using System.Data.Common;

namespace Konduit;

/// <summary>
/// A store that can enqueue inside the caller's own database transaction (the outbox pattern): the tasks exist only
/// if and when that transaction commits. A store implements this exactly when it declares
/// <see cref="StoreCapabilities.TransactionalEnqueue"/>; producers reach it through the runtime's client, which adds
/// trace context, metrics and the Enqueued event.
/// </summary>
public interface ITransactionalTaskStore : ITaskStore
{
    /// <summary>
    /// Enqueues a batch inside <paramref name="transaction"/>. Same validation and batch rules as
    /// <see cref="ITaskStore.EnqueueManyAsync"/>; nothing is visible to workers until the transaction commits, and a
    /// rollback discards all of it.
    /// </summary>
    /// <param name="requests">The tasks.</param>
    /// <param name="transaction">An open transaction on a connection to the store's own database.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <exception cref="ArgumentException">The transaction is of another provider, or already committed or rolled back.</exception>
    Task<IReadOnlyList<EnqueueResult>> EnqueueManyAsync(IReadOnlyList<EnqueueRequest> requests, DbTransaction transaction, CancellationToken cancellationToken = default);
}
