using Xunit;

namespace Konduit.Testing.Conformance;

/// <summary>
/// What an event-log implementation provides to run the event-log conformance suite: a way to create logs against
/// one server. One fixture instance serves one test class; isolate by a keyspace/schema per fixture and by unique
/// queue names and task ids per test, never by a server per test.
/// </summary>
public abstract class TaskEventLogFixture : IAsyncLifetime
{
    /// <summary>
    /// Creates a log over this fixture's server. With <paramref name="timeToLive"/>, events must expire that long
    /// after they were written (only asked of logs declaring <see cref="TaskEventLogCapabilities.Expiry"/>); without
    /// it they must outlive the test. Logs created here are disposed by the fixture.
    /// </summary>
    public abstract ValueTask<ITaskEventLog> CreateLogAsync(TimeSpan? timeToLive = null);

    /// <summary>Connects to (or starts) the server and prepares an isolated namespace.</summary>
    public virtual ValueTask InitializeAsync() => ValueTask.CompletedTask;

    /// <summary>Drops what <see cref="InitializeAsync"/> created.</summary>
    public virtual ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }
}
