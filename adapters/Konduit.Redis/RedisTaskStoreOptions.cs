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

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        ArgumentNullException.ThrowIfNull(KeyPrefix, nameof(KeyPrefix));
        if (!KeyPrefixPattern().IsMatch(KeyPrefix))
            throw new ArgumentException(
                $"KeyPrefix '{KeyPrefix}' is invalid: use 1–64 characters of letters, digits and . _ - (no ':' or braces: they delimit the key layout).",
                nameof(KeyPrefix));
    }

    [GeneratedRegex(@"^[A-Za-z0-9._-]{1,64}\z", RegexOptions.CultureInvariant)]
    private static partial Regex KeyPrefixPattern();
}
