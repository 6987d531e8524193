using Konduit.Postgres;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Xunit;

namespace Konduit.Hosting.Tests;

/// <summary>
/// Issue 13, "TLS settings pass through for every client": the Postgres store configured as a user would
/// (<c>Konduit:Postgres:ConnectionString</c> with <c>SSL Mode=VerifyFull</c> and the CA from
/// scripts/services.d/tls.sh), and the server itself reports every connection of the store as TLS.
/// </summary>
public sealed class PostgresTlsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // The server's own view of its client connections, by application name.
    private const string CountTlsConnections =
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1";

    private static string Authority() =>
        Environment.GetEnvironmentVariable("KONDUIT_TEST_TLS_CA") is { Length: > 0 } ca ? ca
            : throw new InvalidOperationException("KONDUIT_TEST_TLS_CA is not set: run scripts/services.sh up && source .services/env");

    private static (string ConnectionString, string Application) TlsConnectionString(string? rootCertificate)
    {
        var application = "konduit-tls-" + Guid.NewGuid().ToString("N")[..8];
        var builder = new NpgsqlConnectionStringBuilder(PostgresRuntimeFixture.RequireConnectionString())
        {
            SslMode = SslMode.VerifyFull,
            RootCertificate = rootCertificate,
            ApplicationName = application,
        };
        return (builder.ConnectionString, application);
    }

    private static ServiceProvider Provider(string connectionString, string schema) =>
        new ServiceCollection().AddLogging().AddKonduitStore(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Konduit:Store"] = "Postgres",
            ["Konduit:Postgres:ConnectionString"] = connectionString,
            ["Konduit:Postgres:Schema"] = schema,
        }).Build().GetSection("Konduit")).Services.BuildServiceProvider();

    [Fact]
    public async Task The_store_speaks_TLS_when_its_connection_string_asks_and_the_server_sees_only_TLS_connections()
    {
        var (connectionString, application) = TlsConnectionString(Authority());
        var schema = "konduit_tls_" + Guid.NewGuid().ToString("N")[..8];
        await using var provider = Provider(connectionString, schema);
        try
        {
            Assert.True(await provider.GetRequiredService<IKonduitStoreStartup>().MigrateAsync(Ct));
            var store = provider.GetRequiredService<ITaskStore>();
            var id = (await store.EnqueueAsync(new EnqueueRequest("tls", [1]), Ct)).TaskId;
            var lease = Assert.Single(await store.LeaseAsync("tls", "w", 1, TimeSpan.FromMinutes(1), Ct));
            await store.CompleteAsync(lease, null, Ct);
            Assert.Equal(TaskState.Succeeded, (await store.GetAsync(id, Ct)).State);

            await using var observer = new NpgsqlConnection(PostgresRuntimeFixture.RequireConnectionString());
            await observer.OpenAsync(Ct);
            await using var count = new NpgsqlCommand(CountTlsConnections, observer) { Parameters = { new() { Value = application } } };
            await using var reader = await count.ExecuteReaderAsync(Ct);
            await reader.ReadAsync(Ct);
            var (tls, all) = (reader.GetInt64(0), reader.GetInt64(1));
            Assert.True(all > 0, "the store's pooled connections are open and named " + application);
            Assert.Equal(all, tls);
        }
        finally
        {
            await using var dataSource = NpgsqlDataSource.Create(PostgresRuntimeFixture.RequireConnectionString());
            await using var drop = dataSource.CreateCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            await drop.ExecuteNonQueryAsync(Ct);
        }
    }

    [Fact]
    public async Task A_server_certificate_the_client_does_not_trust_fails_start_up_naming_the_key()
    {
        // VerifyFull with the system trust store, which does not hold the test CA.
        var (connectionString, _) = TlsConnectionString(null);
        await using var provider = Provider(connectionString, "konduit_tls_untrusted");

        var error = await Assert.ThrowsAsync<KonduitStartupException>(() => provider.GetRequiredService<IKonduitStoreStartup>().StartAsync(Ct));

        Assert.Contains("Konduit:Postgres:ConnectionString", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(new NpgsqlConnectionStringBuilder(connectionString).Password!, error.ToString(), StringComparison.Ordinal);
    }
}
