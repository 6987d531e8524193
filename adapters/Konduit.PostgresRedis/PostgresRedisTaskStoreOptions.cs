using System.Text.RegularExpressions;

namespace Konduit.PostgresRedis;

/// <summary>Settings of a <see cref="PostgresRedisTaskStore"/>.</summary>
public sealed partial class PostgresRedisTaskStoreOptions : TaskStoreOptions
{
    /// <summary>
    /// The Npgsql connection string. Required unless an <c>NpgsqlDataSource</c> is passed to the store's constructor.
    /// As with the Postgres store, the data source built from it skips the reset of returned pooled connections unless
    /// the string sets <c>No Reset On Close</c> itself.
    /// </summary>
    public string? ConnectionString { get; set; }

    /// <summary>The PostgreSQL schema of Konduit's tables (default <c>konduit</c>), as for the Postgres store.</summary>
    public string Schema { get; set; } = "konduit";

    /// <summary>
    /// The StackExchange.Redis configuration string. Required unless an <c>IConnectionMultiplexer</c> is passed to
    /// the store's constructor.
    /// </summary>
    public string? RedisConfiguration { get; set; }

    /// <summary>
    /// The prefix of every Redis key the store writes (default <c>konduit</c>): 1–64 characters of
    /// <c>[A-Za-z0-9._-]</c>. A queue's dispatch stream is <c>{prefix:queue}:dispatch</c>.
    /// </summary>
    public string KeyPrefix { get; set; } = "konduit";

    /// <summary>
    /// How long one Redis call may take before the store gives up on it and carries on with PostgreSQL alone
    /// (default 1 s). Redis is never allowed to fail or stall an operation for longer than this.
    /// </summary>
    public TimeSpan RedisTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// While Redis is unavailable, how often the store probes it (default 1 s); when it answers again the dispatch
    /// streams are rebuilt from the pending rows in PostgreSQL.
    /// </summary>
    public TimeSpan RedisProbeInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How a lease uses the ids read from the dispatch stream (default <see cref="DispatchMode.Signal"/>).
    /// <see cref="DispatchMode.Signal"/> keeps the contract's exact lease order; <see cref="DispatchMode.ClaimIds"/>
    /// claims the dispatched ids first (by primary key, no contention between workers) and tops up from the
    /// ordered lease, so order is only approximately priority/run-at order (ADR 007).
    /// </summary>
    public DispatchMode Dispatch { get; set; } = DispatchMode.Signal;

    /// <summary>Most task ids re-added per queue when a stream is rebuilt (default 10,000).</summary>
    public int RebuildLimit { get; set; } = 10_000;

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        ArgumentNullException.ThrowIfNull(Schema, nameof(Schema));
        ArgumentNullException.ThrowIfNull(KeyPrefix, nameof(KeyPrefix));
        if (!KeyPrefixPattern().IsMatch(KeyPrefix))
            throw new ArgumentException(
                $"KeyPrefix '{KeyPrefix}' is invalid: use 1–64 characters of letters, digits and . _ - (no ':' or braces).",
                nameof(KeyPrefix));
        if (RedisTimeout <= TimeSpan.Zero || RedisTimeout > TimeSpan.FromMinutes(1))
            throw new ArgumentOutOfRangeException(nameof(RedisTimeout), RedisTimeout, "RedisTimeout must be positive and at most one minute.");
        if (RedisProbeInterval <= TimeSpan.Zero || RedisProbeInterval > TimeSpan.FromMinutes(10))
            throw new ArgumentOutOfRangeException(nameof(RedisProbeInterval), RedisProbeInterval, "RedisProbeInterval must be positive and at most ten minutes.");
        if (!Enum.IsDefined(Dispatch))
            throw new ArgumentOutOfRangeException(nameof(Dispatch), Dispatch, "Dispatch must be Signal or ClaimIds.");
        if (RebuildLimit <= 0)
            throw new ArgumentOutOfRangeException(nameof(RebuildLimit), RebuildLimit, "RebuildLimit must be positive.");
        // The schema rules are the Postgres store's own.
        new Konduit.Postgres.PostgresTaskStoreOptions { Schema = Schema, ConnectionString = ConnectionString }.Validate();
    }

    [GeneratedRegex(@"^[A-Za-z0-9._-]{1,64}\z", RegexOptions.CultureInvariant)]
    private static partial Regex KeyPrefixPattern();
}

/// <summary>How the hybrid store's lease uses the ids in a queue's dispatch stream.</summary>
public enum DispatchMode
{
    /// <summary>
    /// The stream is a signal: ids read are acknowledged and dropped, and PostgreSQL leases in exact contract order
    /// (priority, run-at, enqueue order). The default; the store conformance suite runs in this mode.
    /// </summary>
    Signal = 0,

    /// <summary>
    /// The dispatched ids are claimed in PostgreSQL by primary key with the fenced lease update (pending and due
    /// only; anything else is acknowledged and dropped), then the lease is topped up from the ordered SKIP LOCKED
    /// lease. Workers take disjoint ids without scanning past each other's locks, but a lease may return a
    /// dispatched task ahead of a higher-priority or earlier task that is not in the stream.
    /// </summary>
    ClaimIds = 1,
}
