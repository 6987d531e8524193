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

    private StoreUnavailableException Unavailable(string operation, Exception inner) => new(Name, operation, inner);
}
