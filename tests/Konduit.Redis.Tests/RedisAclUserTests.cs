using Konduit.Testing.Conformance;
using StackExchange.Redis;
using Xunit;

namespace Konduit.Redis.Tests;

/// <summary>
/// A fixture whose stores connect as a Redis ACL user limited to the store's own keys and wake-up channel, and to data
/// commands (issue 13, least privilege): no admin or dangerous commands, no other key, no other channel.
/// </summary>
public sealed class RedisAclUserFixture : RedisStoreFixture
{
    private ConnectionMultiplexer? _userConnection;

    /// <summary>The ACL user's name (one per fixture).</summary>
    public string User { get; } = "konduit-acl-" + Guid.NewGuid().ToString("N")[..8];

    /// <summary>The ACL user's password (random per fixture).</summary>
    public string Password { get; } = Guid.NewGuid().ToString("N");

    /// <summary>The connection as the ACL user.</summary>
    public ConnectionMultiplexer UserConnection => _userConnection ?? throw new InvalidOperationException("The fixture is not initialized.");

    /// <summary>
    /// The rules an operator gives the store's user, as documented in the Redis adapter's README: the keys the store names
    /// (<c>{prefix:queue}…</c>, <c>{prefix#n}…</c>, <c>{prefix}…</c>), its wake-up channel, and the data, stream,
    /// scripting and pub/sub commands and TIME (the scripts read the server clock), minus everything in <c>@dangerous</c>
    /// and <c>@admin</c>.
    /// </summary>
    public static string[] Rules(string keyPrefix, string password) =>
    [
        "on", ">" + password, "resetkeys", "~{" + keyPrefix + "[:}#]*", "resetchannels", "&" + keyPrefix + ":wake",
        "nocommands", "+@read", "+@write", "+@stream", "+@scripting", "+@pubsub", "+@connection", "+@transaction", "+time",
        "-@dangerous", "-@admin",
    ];

    /// <inheritdoc />
    protected override ConnectionMultiplexer StoreConnection => UserConnection;

    /// <inheritdoc />
    public override async ValueTask InitializeAsync()
    {
        await base.InitializeAsync();
        var admin = Connection.GetServers().Single(s => s.IsConnected && !s.IsReplica);
        await admin.ExecuteAsync("ACL", ["SETUSER", User, .. Rules(KeyPrefix, Password)]);
        var options = ConfigurationOptions.Parse(ServerConfiguration);
        options.User = User;
        options.Password = Password;
        options.TieBreaker = ""; // the default tie-breaker key is outside the user's key pattern
        options.AbortOnConnectFail = true;
        options.AllowAdmin = true; // the client would refuse admin commands itself; the tests need the server to refuse them
        _userConnection = await ConnectionMultiplexer.ConnectAsync(options);
    }

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync(); // the stores and their keys first
        if (_userConnection is not null)
        {
            await _userConnection.DisposeAsync();
            await Connection.GetServers().Single(s => s.IsConnected && !s.IsReplica).ExecuteAsync("ACL", "DELUSER", User);
        }
    }
}

// The store suites that exercise every script and command of the store, run as the ACL user.
public sealed class RedisAclUserEnqueueConformanceTests(RedisAclUserFixture f) : EnqueueConformance<RedisAclUserFixture>(f);
public sealed class RedisAclUserIdempotencyConformanceTests(RedisAclUserFixture f) : IdempotencyConformance<RedisAclUserFixture>(f);
public sealed class RedisAclUserLeaseConformanceTests(RedisAclUserFixture f) : LeaseConformance<RedisAclUserFixture>(f);
public sealed class RedisAclUserHeartbeatConformanceTests(RedisAclUserFixture f) : HeartbeatConformance<RedisAclUserFixture>(f);
public sealed class RedisAclUserRetryConformanceTests(RedisAclUserFixture f) : RetryConformance<RedisAclUserFixture>(f);
public sealed class RedisAclUserReclaimConformanceTests(RedisAclUserFixture f) : ReclaimConformance<RedisAclUserFixture>(f);
public sealed class RedisAclUserCancelRedriveConformanceTests(RedisAclUserFixture f) : CancelRedriveConformance<RedisAclUserFixture>(f);
public sealed class RedisAclUserQueryConformanceTests(RedisAclUserFixture f) : QueryConformance<RedisAclUserFixture>(f);
public sealed class RedisAclUserPurgeConformanceTests(RedisAclUserFixture f) : PurgeConformance<RedisAclUserFixture>(f);
public sealed class RedisAclUserCapabilitiesConformanceTests(RedisAclUserFixture f) : CapabilitiesConformance<RedisAclUserFixture>(f);
public sealed class RedisAclUserPauseConformanceTests(RedisAclUserFixture f) : PauseConformance<RedisAclUserFixture>(f);
public sealed class RedisAclUserCompleteAndLeaseConformanceTests(RedisAclUserFixture f) : CompleteAndLeaseConformance<RedisAclUserFixture>(f);
public sealed class RedisAclUserBulkConformanceTests(RedisAclUserFixture f) : BulkConformance<RedisAclUserFixture>(f);
public sealed class RedisAclUserExpireLeaseConformanceTests(RedisAclUserFixture f) : ExpireLeaseConformance<RedisAclUserFixture>(f);

/// <summary>What the ACL user cannot do: the limits are real, so the suites above prove the store needs nothing more.</summary>
public sealed class RedisAclUserTests(RedisAclUserFixture fixture) : IClassFixture<RedisAclUserFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("SET", "other-app:key", "1")]
    [InlineData("GET", "{someone-else:queue}:tasks")]
    [InlineData("FLUSHALL")]
    [InlineData("CONFIG", "GET", "maxmemory")]
    [InlineData("KEYS", "*")]
    [InlineData("ACL", "LIST")]
    [InlineData("PUBLISH", "other-channel", "x")]
    public async Task The_user_is_refused_other_keys_channels_and_admin_commands(string command, params string[] args)
    {
        var db = fixture.UserConnection.GetDatabase();
        var ex = await Assert.ThrowsAsync<RedisServerException>(() => db.ExecuteAsync(command, [.. args]));
        Assert.StartsWith("NOPERM", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_store_as_the_user_works_and_its_keys_match_the_users_pattern()
    {
        var store = fixture.CreateRedisStore();
        var id = (await store.EnqueueAsync(new EnqueueRequest("acl.q", [1]) { IdempotencyKey = "k1", Tenant = "t" }, Ct)).TaskId;
        var lease = Assert.Single(await store.LeaseAsync("acl.q", "w", 1, TimeSpan.FromMinutes(1), Ct));
        Assert.Equal(id, lease.TaskId);
        await store.CompleteAsync(lease, null, Ct);
        Assert.Equal(TaskState.Succeeded, (await store.GetAsync(id, Ct)).State);
        // Every key the store wrote is one the user may touch: read back by the admin connection, not the store.
        var keys = await fixture.KeysAsync();
        Assert.NotEmpty(keys);
        var user = fixture.UserConnection.GetDatabase();
        foreach (var key in keys) await user.KeyExistsAsync(key); // NOPERM would throw
    }
}
