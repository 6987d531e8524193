using Konduit.Hosting;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;

namespace Konduit.RedisStartup;

/// <summary>
/// The start-up step's Redis check, shared as source by the Redis store and the PostgreSQL + Redis hybrid (neither
/// references the other): one PING on the container's multiplexer or a short-lived connection, and, when the
/// configuration names an ACL user, the server's word that the connection runs as that user.
/// </summary>
internal static class RedisStartupCheck
{
    // CLIENT INFO (Redis 6.2+, category @connection, which the least-privilege rules grant) names the connection's user.
    private const string ClientCommand = "CLIENT";
    private const string InfoSubcommand = "INFO";

    public static async Task PingAsync(KonduitComponentContext context, string? configuration, string setting, CancellationToken cancellationToken,
        string? certificateAuthorityPath = null)
    {
        var key = context.Key(setting);
        var shared = context.Services.GetService<IConnectionMultiplexer>();
        string? wrongUser = null;
        string? expectedUser = null;
        try
        {
            if (shared is not null)
            {
                await shared.GetDatabase().PingAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
                return;
            }
            var options = ConfigurationOptions.Parse(configuration!);
            if (certificateAuthorityPath is not null) options.TrustIssuer(certificateAuthorityPath);
            // Fail on the first refused or rejected connection instead of retrying in the background.
            options.AbortOnConnectFail = true;
            var connection = await ConnectionMultiplexer.ConnectAsync(options).WaitAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                var db = connection.GetDatabase();
                await db.PingAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
                // A failed AUTH of an ACL user leaves the connection logged in as `default` when that user needs no
                // password: everything works, with the default user's rights. Only the server can say who we are.
                if (options.User is { Length: > 0 } user)
                {
                    expectedUser = user;
                    var actual = ConnectionUser((string?)await db.ExecuteAsync(ClientCommand, InfoSubcommand).WaitAsync(cancellationToken).ConfigureAwait(false));
                    if (!string.Equals(actual, user, StringComparison.Ordinal)) wrongUser = actual ?? "(unknown)";
                }
            }
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            var where = shared is not null ? "the IConnectionMultiplexer registered in the container" : "Redis at " + Endpoints(configuration);
            throw new KonduitStartupException(key, $"cannot reach {where}: {Describe(ex)}", ex);
        }
        if (wrongUser is not null)
        {
            throw new KonduitStartupException(key,
                $"Redis at {Endpoints(configuration)} did not log in user '{expectedUser}' (the connection runs as '{wrongUser}'): its AUTH failed; check the user and password");
        }
    }

    // "id=7 addr=… user=default …": the value of the user field.
    private static string? ConnectionUser(string? clientInfo)
    {
        foreach (var field in (clientInfo ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            if (field.StartsWith("user=", StringComparison.Ordinal)) return field["user=".Length..];
        return null;
    }

    // Host and port only: the configuration string may hold a password.
    private static string Endpoints(string? configuration) =>
        string.Join(", ", ConfigurationOptions.Parse(configuration!).EndPoints.Select(e => e.ToString()));

    // The client's connect message ends in advice to set abortConnect=false, which is wrong here: keep the failure kind and first sentence.
    private static string Describe(Exception ex) =>
        ex is RedisConnectionException connection
            ? $"{connection.FailureType}: {ex.Message.Split(". ", 2)[0].TrimEnd('.')}{(ex.InnerException is { } inner ? " (" + inner.Message + ")" : "")}"
            : ex.Message;
}
