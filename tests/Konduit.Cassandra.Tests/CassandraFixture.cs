using Konduit.Cassandra.Cql;

namespace Konduit.Cassandra.Tests;

/// <summary>
/// The real server from KONDUIT_TEST_CASSANDRA ("host:port"). One keyspace per fixture, dropped at the end.
/// Unset is a failure, not a skip: the integration tests are part of the suite.
/// </summary>
public sealed class CassandraFixture : IAsyncLifetime
{
    public const string Variable = "KONDUIT_TEST_CASSANDRA";

    private CqlSession? _session;

    public string ContactPoint { get; private set; } = "";

    public string Keyspace { get; } = "konduit_cql_" + Guid.NewGuid().ToString("N")[..12];

    internal CqlSession Session => _session ?? throw new InvalidOperationException("The fixture is not initialized.");

    internal CqlSessionOptions NewOptions(string? keyspace = null)
    {
        var options = CqlSessionOptions.FromContactPoint(ContactPoint);
        options.Keyspace = keyspace;
        // A single local node: ONE is what a test server can always satisfy.
        options.DefaultConsistency = CqlConsistency.One;
        options.ConnectTimeout = TimeSpan.FromSeconds(10);
        options.RequestTimeout = TimeSpan.FromSeconds(30);
        return options;
    }

    public async ValueTask InitializeAsync()
    {
        var contactPoint = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrWhiteSpace(contactPoint))
            throw new InvalidOperationException($"{Variable} is not set: run scripts/services.sh up && source .services/env");
        ContactPoint = contactPoint;
        await using (var admin = new CqlSession(NewOptions()))
        {
            await admin.ExecuteAsync(
                $"CREATE KEYSPACE {Keyspace} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}",
                options: new CqlQueryOptions { Prepare = false });
        }
        _session = new CqlSession(NewOptions(Keyspace));
    }

    public async ValueTask DisposeAsync()
    {
        if (_session is null)
            return;
        try
        {
            await _session.ExecuteAsync($"DROP KEYSPACE IF EXISTS {Keyspace}", options: new CqlQueryOptions { Prepare = false });
        }
        finally
        {
            await _session.DisposeAsync();
        }
    }
}
