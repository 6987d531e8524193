using System.Text.RegularExpressions;

namespace Konduit.Redis;

/// <summary>Settings of a <see cref="RedisTaskStore"/>.</summary>
public sealed partial class RedisTaskStoreOptions : TaskStoreOptions
{
    /// <summary>
    /// The StackExchange.Redis configuration string (e.g. <c>127.0.0.1:6379,password=…</c>). Required unless an
    /// <c>IConnectionMultiplexer</c> is passed to the store's constructor, in which case it is ignored.
    /// </summary>
    public string? Configuration { get; set; }

    /// <summary>
    /// The prefix of every key the store writes (default <c>konduit</c>): 1–64 characters of
    /// <c>[A-Za-z0-9._-]</c>. Stores with different prefixes on one server are fully independent.
    /// </summary>
    public string KeyPrefix { get; set; } = "konduit";

    /// <summary>
    /// How long one Redis call may take before it fails with <see cref="StoreUnavailableException"/> (default 2 s,
    /// 50 ms–5 min). While the store's own connection is down, calls fail at once instead of queueing for the
    /// reconnect. Applies to the connection the store opens from <see cref="Configuration"/>; an
    /// <c>IConnectionMultiplexer</c> passed in keeps its own timeouts (set <c>asyncTimeout</c> and
    /// <c>BacklogPolicy.FailFast</c> on it for the same behaviour).
    /// </summary>
    public TimeSpan OperationTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        ArgumentNullException.ThrowIfNull(KeyPrefix, nameof(KeyPrefix));
        if (OperationTimeout < TimeSpan.FromMilliseconds(50) || OperationTimeout > TimeSpan.FromMinutes(5))
            throw new ArgumentOutOfRangeException(nameof(OperationTimeout), OperationTimeout, "OperationTimeout must be between 50 ms and 5 minutes.");
        if (!KeyPrefixPattern().IsMatch(KeyPrefix))
            throw new ArgumentException(
                $"KeyPrefix '{KeyPrefix}' is invalid: use 1–64 characters of letters, digits and . _ - (no ':' or braces: they delimit the key layout).",
                nameof(KeyPrefix));
    }

    [GeneratedRegex(@"^[A-Za-z0-9._-]{1,64}\z", RegexOptions.CultureInvariant)]
    private static partial Regex KeyPrefixPattern();
}
