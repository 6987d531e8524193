using StackExchange.Redis;

namespace Konduit.Redis;

// Transient driver errors become the core's one typed transient error (issue 13, item 3).
public sealed partial class RedisTaskStore
{
    /// <summary>
    /// True for the errors that say "the server could not be reached or could not serve this now": connection
    /// refused or cut (and, with the fail-fast backlog, "no connection available"), timeouts, and the server
    /// replies a restarting, read-only (demoted), failing-over or partially down cluster gives.
    /// </summary>
    internal static bool IsTransient(Exception ex) => ex switch
    {
        RedisConnectionException or RedisTimeoutException or TimeoutException => true,
        RedisServerException server => IsTransientReply(server.Message),
        _ => false,
    };

    private static bool IsTransientReply(string message) =>
        message.StartsWith("LOADING", StringComparison.Ordinal)
        || message.StartsWith("READONLY", StringComparison.Ordinal)
        || message.StartsWith("MASTERDOWN", StringComparison.Ordinal)
        || message.StartsWith("TRYAGAIN", StringComparison.Ordinal)
        || message.StartsWith("CLUSTERDOWN", StringComparison.Ordinal);

    private long _lastTopologyRefresh;

    private StoreUnavailableException Unavailable(string operation, Exception inner)
    {
        if (inner is RedisConnectionException) RefreshTopology();
        return new StoreUnavailableException(Name, operation, inner);
    }

    /// <summary>
    /// After a connection failure, asks the multiplexer to re-read the server topology (at most once a second):
    /// on a cluster whose master died, that is how commands for its slots find the promoted replica without
    /// waiting for the next periodic check or a MOVED reply (issue 16). Fire and forget: the caller already has
    /// its error, and the next call uses whatever the refresh found.
    /// </summary>
    private void RefreshTopology()
    {
        if (Volatile.Read(ref _multiplexer) is not { } multiplexer) return;
        var now = Environment.TickCount64;
        var last = Interlocked.Read(ref _lastTopologyRefresh);
        if (now - last < 1000 || Interlocked.CompareExchange(ref _lastTopologyRefresh, now, last) != last) return;
        _ = multiplexer.ConfigureAsync().ContinueWith(static t => _ = t.Exception, CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
    }
}
