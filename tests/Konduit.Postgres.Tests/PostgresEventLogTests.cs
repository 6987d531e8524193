using Konduit.Testing.Conformance;

namespace Konduit.Postgres.Tests;

/// <summary>The event-log suite's fixture for <see cref="PostgresTaskEventLog"/>: the store fixture's server, a fresh schema per fixture.</summary>
public sealed class PostgresEventLogFixture : TaskEventLogFixture
{
    private readonly PostgresStoreFixture _server = new();
    private readonly List<PostgresTaskEventLog> _logs = [];

    public override async ValueTask InitializeAsync()
    {
        await _server.InitializeAsync();
        await using var log = New(null);
        await log.MigrateAsync();
    }

    public override ValueTask<ITaskEventLog> CreateLogAsync(TimeSpan? timeToLive = null)
    {
        var log = New(timeToLive);
        lock (_logs) _logs.Add(log);
        return ValueTask.FromResult<ITaskEventLog>(log);
    }

    public override async ValueTask DisposeAsync()
    {
        foreach (var log in _logs) await log.DisposeAsync();
        await _server.DisposeAsync();
        await base.DisposeAsync();
    }

    private PostgresTaskEventLog New(TimeSpan? timeToLive) =>
        new(new PostgresTaskEventLogOptions { Schema = _server.Schema, TimeToLive = timeToLive }, _server.DataSource);
}

public sealed class PostgresEventHistoryConformanceTests(PostgresEventLogFixture f) : TaskEventHistoryConformance<PostgresEventLogFixture>(f);
public sealed class PostgresEventQueueConformanceTests(PostgresEventLogFixture f) : TaskEventQueueConformance<PostgresEventLogFixture>(f);
public sealed class PostgresEventIdempotencyConformanceTests(PostgresEventLogFixture f) : TaskEventIdempotencyConformance<PostgresEventLogFixture>(f);
public sealed class PostgresEventExpiryConformanceTests(PostgresEventLogFixture f) : TaskEventExpiryConformance<PostgresEventLogFixture>(f);
public sealed class PostgresEventValidationConformanceTests(PostgresEventLogFixture f) : TaskEventValidationConformance<PostgresEventLogFixture>(f);
