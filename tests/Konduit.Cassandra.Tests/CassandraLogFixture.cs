using Konduit.Cassandra.Cql;
using Konduit.Testing.Conformance;

namespace Konduit.Cassandra.Tests;

/// <summary>
/// What the event-log suite's Cassandra fixtures share: one keyspace per time to live (default_time_to_live is a
/// table option), created once on first use and dropped at the end through the fixture's admin session.
/// </summary>
public abstract class CassandraLogFixture(string keyspacePrefix) : TaskEventLogFixture
{
    private readonly string _prefix = keyspacePrefix + Guid.NewGuid().ToString("N")[..10];
    private readonly Dictionary<int, Task<CassandraTaskEventLog>> _byTtl = [];
    private readonly Lock _gate = new();
    private CqlSession? _session;

    /// <summary>The admin session: it drops the keyspaces at the end.</summary>
    internal CqlSession Session
    {
        get => _session ?? throw new InvalidOperationException("The fixture is not initialized.");
        private protected set => _session = value;
    }

    public string Keyspace(int ttlSeconds) => ttlSeconds == 0 ? _prefix : $"{_prefix}_ttl{ttlSeconds}";

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

    /// <summary>Creates and migrates the log of one time to live (0: none).</summary>
    private protected abstract Task<CassandraTaskEventLog> CreateAsync(int ttlSeconds);

    /// <summary>True when the logs open their own sessions (from options), so the fixture disposes them.</summary>
    private protected virtual bool LogsOwnSessions => false;

    private protected static CqlQueryOptions Ddl => new() { Prepare = false, Consistency = CqlConsistency.One, Timeout = TimeSpan.FromSeconds(60) };

    public override async ValueTask DisposeAsync()
    {
        if (_session is null) return;
        try
        {
            foreach (var (ttl, log) in _byTtl)
            {
                if (LogsOwnSessions && log.IsCompletedSuccessfully) await log.Result.DisposeAsync();
                await _session.ExecuteAsync($"DROP KEYSPACE IF EXISTS {Keyspace(ttl)}", options: Ddl);
            }
        }
        finally
        {
            await _session.DisposeAsync();
        }
        await base.DisposeAsync();
    }
}
