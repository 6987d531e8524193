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

    /// <summary>
    /// A PEM file of the certificate authority that signs the server's certificate, trusted for this store's
    /// connections only (StackExchange.Redis <c>TrustIssuer</c>); needs <c>ssl=true</c> in <see cref="Configuration"/>.
    /// Default null: the system's trust store.
    /// </summary>
    public string? TlsCertificateAuthorityPath { get; set; }

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        if (TlsCertificateAuthorityPath is { } ca)
        {
            if (!File.Exists(ca))
                throw new ArgumentException($"TlsCertificateAuthorityPath '{ca}' does not exist.", nameof(TlsCertificateAuthorityPath));
            if (Configuration is { } configuration && !StackExchange.Redis.ConfigurationOptions.Parse(configuration).Ssl)
                throw new ArgumentException("TlsCertificateAuthorityPath is set but Configuration does not say ssl=true.", nameof(TlsCertificateAuthorityPath));
        }
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
