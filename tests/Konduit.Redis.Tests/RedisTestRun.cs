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
        foreach (var connection in RedisStoreFixture.ConnectionsCreated)
        {
            var keys = await RedisStoreFixture.ScanAsync(connection, "{" + RedisStoreFixture.RunPrefix + "*");
            var db = connection.GetDatabase();
            // One key per DEL: on a cluster a multi-key DEL must stay in one slot.
            foreach (var chunk in keys.Chunk(500)) await Task.WhenAll(chunk.Select(k => db.KeyDeleteAsync(k)));
        }
    }
}
