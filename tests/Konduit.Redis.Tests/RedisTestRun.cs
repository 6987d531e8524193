using StackExchange.Redis;
using Xunit;

[assembly: AssemblyFixture(typeof(Konduit.Redis.Tests.RedisTestRun))]

namespace Konduit.Redis.Tests;

/// <summary>
/// Assembly fixture: after the last test, deletes every key of this run (every prefix starts with
/// <see cref="RedisStoreFixture.RunPrefix"/>), including those of tests that use a private prefix.
/// </summary>
public sealed class RedisTestRun : IAsyncDisposable
{
    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (RedisStoreFixture.ConnectionIfCreated is not { } connection) return;
        var keys = await RedisStoreFixture.ScanAsync(connection, "{" + RedisStoreFixture.RunPrefix + "*");
        var db = connection.GetDatabase();
        foreach (var chunk in keys.Chunk(500)) await db.KeyDeleteAsync([.. chunk.Select(k => (RedisKey)k)]);
    }
}
