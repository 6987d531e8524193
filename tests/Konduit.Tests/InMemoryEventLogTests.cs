using Konduit.InMemory;
using Konduit.Testing.Conformance;

namespace Konduit.Tests;

/// <summary>The event-log suite's fixture for <see cref="InMemoryTaskEventLog"/>: every log is a fresh, empty instance.</summary>
public sealed class InMemoryEventLogFixture : TaskEventLogFixture
{
    public override ValueTask<ITaskEventLog> CreateLogAsync(TimeSpan? timeToLive = null) =>
        ValueTask.FromResult<ITaskEventLog>(new InMemoryTaskEventLog(new InMemoryTaskEventLogOptions { TimeToLive = timeToLive }));
}

// The whole event-log conformance suite against the in-memory reference log.
public sealed class InMemoryEventHistoryTests(InMemoryEventLogFixture f) : TaskEventHistoryConformance<InMemoryEventLogFixture>(f);
public sealed class InMemoryEventQueueTests(InMemoryEventLogFixture f) : TaskEventQueueConformance<InMemoryEventLogFixture>(f);
public sealed class InMemoryEventIdempotencyTests(InMemoryEventLogFixture f) : TaskEventIdempotencyConformance<InMemoryEventLogFixture>(f);
public sealed class InMemoryEventExpiryTests(InMemoryEventLogFixture f) : TaskEventExpiryConformance<InMemoryEventLogFixture>(f);
public sealed class InMemoryEventValidationTests(InMemoryEventLogFixture f) : TaskEventValidationConformance<InMemoryEventLogFixture>(f);
