using Konduit.Cassandra.Cql;
using Konduit.Testing.Conformance;

namespace Konduit.Cassandra.Tests;

/// <summary>
/// The event-log suite's fixture for <see cref="CassandraTaskEventLog"/>: the server from KONDUIT_TEST_CASSANDRA,
/// one keyspace per fixture and time to live (default_time_to_live is a table option), dropped at the end.
/// </summary>
public sealed class CassandraEventLogFixture() : CassandraLogFixture("konduit_ev_")
{
    public string ContactPoint { get; private set; } = "";

    public override async ValueTask InitializeAsync()
    {
        var contactPoint = Environment.GetEnvironmentVariable(CassandraFixture.Variable);
        if (string.IsNullOrWhiteSpace(contactPoint))
            throw new InvalidOperationException($"{CassandraFixture.Variable} is not set: run scripts/services.sh up && source .services/env");
        ContactPoint = contactPoint;
        var options = CqlSessionOptions.FromContactPoint(contactPoint);
        options.RequestTimeout = TimeSpan.FromSeconds(30);
        Session = new CqlSession(options);
        await CreateLogAsync();
    }

    public CassandraTaskEventLogOptions Options(int ttlSeconds) => new()
    {
        Keyspace = Keyspace(ttlSeconds),
        TimeToLive = ttlSeconds == 0 ? null : TimeSpan.FromSeconds(ttlSeconds),
        RequestTimeout = TimeSpan.FromSeconds(30),
    };

    private protected override async Task<CassandraTaskEventLog> CreateAsync(int ttlSeconds)
    {
        var log = new CassandraTaskEventLog(Options(ttlSeconds), Session);
        await log.MigrateAsync();
        return log;
    }

}

// The whole event-log conformance suite against Cassandra.
public sealed class CassandraEventHistoryConformanceTests(CassandraEventLogFixture f) : TaskEventHistoryConformance<CassandraEventLogFixture>(f);
public sealed class CassandraEventQueueConformanceTests(CassandraEventLogFixture f) : TaskEventQueueConformance<CassandraEventLogFixture>(f);
public sealed class CassandraEventIdempotencyConformanceTests(CassandraEventLogFixture f) : TaskEventIdempotencyConformance<CassandraEventLogFixture>(f);
public sealed class CassandraEventExpiryConformanceTests(CassandraEventLogFixture f) : TaskEventExpiryConformance<CassandraEventLogFixture>(f);
public sealed class CassandraEventValidationConformanceTests(CassandraEventLogFixture f) : TaskEventValidationConformance<CassandraEventLogFixture>(f);
