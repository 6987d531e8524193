using Konduit.Tests.Shared;
using Xunit;

namespace Konduit.Redis.Tests;

/// <summary>
/// Issue 13, "TLS settings pass through for every client": the Redis store against a private redis-server that speaks
/// only TLS (port 26441, the redis slice's range), with the certificate from scripts/services.d/tls.sh
/// (KONDUIT_TEST_TLS_CA names the CA; the server's files sit beside it).
/// </summary>
public sealed class RedisTlsTests
{
    private const int TlsPort = 26441;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Authority() =>
        Environment.GetEnvironmentVariable("KONDUIT_TEST_TLS_CA") is { Length: > 0 } ca ? ca
            : throw new InvalidOperationException("KONDUIT_TEST_TLS_CA is not set: run scripts/services.sh up && source .services/env");

    private static Task<PrivateRedis> StartServerAsync()
    {
        var authority = Authority();
        var directory = Path.GetDirectoryName(authority)!;
        return PrivateRedis.StartTlsAsync(TlsPort, Path.Combine(directory, "server.pem"), Path.Combine(directory, "server.key"), authority);
    }

    private static RedisTaskStoreOptions Options(string? authority) => new()
    {
        Configuration = $"127.0.0.1:{TlsPort},ssl=true,sslHost=127.0.0.1",
        TlsCertificateAuthorityPath = authority,
        KeyPrefix = "tls" + Guid.NewGuid().ToString("N")[..8],
    };

    [Fact]
    public async Task The_store_works_over_TLS_with_a_private_certificate_authority()
    {
        await using var server = await StartServerAsync();
        await using var store = new RedisTaskStore(Options(Authority()));

        var id = (await store.EnqueueAsync(new EnqueueRequest("tls", [1]), Ct)).TaskId;
        var lease = Assert.Single(await store.LeaseAsync("tls", "w", 1, TimeSpan.FromMinutes(1), Ct));
        await store.CompleteAsync(lease, null, Ct);

        Assert.Equal(id, lease.TaskId);
        Assert.Equal(TaskState.Succeeded, (await store.GetAsync(id, Ct)).State);
        // The server has no plaintext port: a plain client is not even answered.
        Assert.DoesNotContain("PONG", (await PrivateRedis.CliAsync(TlsPort, "ping")).Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_the_authority_the_certificate_is_not_trusted_and_calls_fail_typed()
    {
        await using var server = await StartServerAsync();
        await using var store = new RedisTaskStore(Options(null));

        await Assert.ThrowsAsync<StoreUnavailableException>(() => store.EnqueueAsync(new EnqueueRequest("tls", [1]), Ct));
    }

    [Fact]
    public void An_authority_without_ssl_in_the_configuration_is_refused_by_name()
    {
        var options = new RedisTaskStoreOptions { Configuration = $"127.0.0.1:{TlsPort}", TlsCertificateAuthorityPath = Authority() };

        var error = Assert.Throws<ArgumentException>(options.Validate);

        Assert.Equal(nameof(RedisTaskStoreOptions.TlsCertificateAuthorityPath), error.ParamName);
    }
}
