using Konduit.Cassandra.Cql;
using Konduit.Testing.Conformance;

namespace Konduit.Cassandra.Tests;

/// <summary>
/// The event-log suite's fixture for <see cref="CassandraTaskEventLog"/>: the server from KONDUIT_TEST_CASSANDRA,
/// one keyspace per fixture and time to live (default_time_to_live is a table option), dropped at the end.
/// </summary>
public sealed class CassandraEventLogFixture : TaskEventLogFixture
{
    private readonly string _prefix = "konduit_ev_" + Guid.NewGuid().ToString("N")[..10];
    private readonly Dictionary<int, Task<CassandraTaskEventLog>> _byTtl = [];
    private readonly Lock _gate = new();
    private CqlSession? _session;

    internal CqlSession Session => _session ?? throw new InvalidOperationException("The fixture is not initialized.");

    public string ContactPoint { get; private set; } = "";

    public string Keyspace(int ttlSeconds) => ttlSeconds == 0 ? _prefix : $"{_prefix}_ttl{ttlSeconds}";

    public override async ValueTask InitializeAsync()
    {
        var contactPoint = Environment.GetEnvironmentVariable(CassandraFixture.Variable);
        if (string.IsNullOrWhiteSpace(contactPoint))
            throw new InvalidOperationException($"{CassandraFixture.Variable} is not set: run scripts/services.sh up && source .services/env");
        ContactPoint = contactPoint;
        var options = CqlSessionOptions.FromContactPoint(contactPoint);
        options.RequestTimeout = TimeSpan.FromSeconds(30);
        _session = new CqlSession(options);
        await CreateLogAsync();
    }

    public override async ValueTask<ITaskEventLog> CreateLogAsync(TimeSpan? timeToLive = null)
    {
        var ttl = (int)(timeToLive?.TotalSeconds ?? 0);
        Task<CassandraTaskEventLog> log;
        lock (_gate)
        {
            if (!_byTtl.TryGetValue(ttl, out log!))
                _byTtl[ttl] = log = CreateAsync(ttl);
        }
        return await log;
    }

    public CassandraTaskEventLogOptions Options(int ttlSeconds) => new()
    {
        Keyspace = Keyspace(ttlSeconds),
        TimeToLive = ttlSeconds == 0 ? null : TimeSpan.FromSeconds(ttlSeconds),
        RequestTimeout = TimeSpan.FromSeconds(30),
    };

    private async Task<CassandraTaskEventLog> CreateAsync(int ttlSeconds)
    {
        var log = new CassandraTaskEventLog(Options(ttlSeconds), Session);
        await log.MigrateAsync();
        return log;
    }

    public override async ValueTask DisposeAsync()
    {
        if (_session is null) return;
        try
        {
            foreach (var ttl in _byTtl.Keys)
                await _session.ExecuteAsync($"DROP KEYSPACE IF EXISTS {Keyspace(ttl)}", options: new CqlQueryOptions { Prepare = false, Timeout = TimeSpan.FromSeconds(60) });
        }
        finally
        {
            await _session.DisposeAsync();
        }
        await base.DisposeAsync();
    }
}

// The whole event-log conformance suite against Cassandra.
public sealed class CassandraEventHistoryConformanceTests(CassandraEventLogFixture f) : TaskEventHistoryConformance<CassandraEventLogFixture>(f);
public sealed class CassandraEventQueueConformanceTests(CassandraEventLogFixture f) : TaskEventQueueConformance<CassandraEventLogFixture>(f);
public sealed class CassandraEventIdempotencyConformanceTests(CassandraEventLogFixture f) : TaskEventIdempotencyConformance<CassandraEventLogFixture>(f);
public sealed class CassandraEventExpiryConformanceTests(CassandraEventLogFixture f) : TaskEventExpiryConformance<CassandraEventLogFixture>(f);
public sealed class CassandraEventValidationConformanceTests(CassandraEventLogFixture f) : TaskEventValidationConformance<CassandraEventLogFixture>(f);
