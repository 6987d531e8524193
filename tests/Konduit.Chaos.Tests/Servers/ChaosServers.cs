using Konduit.Tests.Shared;

[assembly: AssemblyFixture(typeof(Konduit.Chaos.Tests.Servers.ChaosServers))]

namespace Konduit.Chaos.Tests.Servers;

/// <summary>
/// The suite's private servers, one of each for the whole run, started on first use. Ports come from the chaos
/// slice's ranges (PostgreSQL 25500–25599, proxies 25600–25699, Redis 26500–26549, Redis proxies 26550–26599):
/// below the ephemeral range, and the first free one is taken so a leftover server of an aborted run never clashes.
/// Scenarios run one after another (xunit.runner.json), so one scenario's kill never lands in another's run.
/// </summary>
public sealed class ChaosServers : IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private PrivatePostgres? _postgres;
    private PrivateRedis? _redis;

    public async Task<PrivatePostgres> PostgresAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            return _postgres ??= await PrivatePostgres.StartAsync(FreePort(25500, 25599), cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task<PrivateRedis> RedisAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            return _redis ??= await PrivateRedis.StartAsync(FreePort(26500, 26549), cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    public static ChaosProxy StartPostgresProxy(int targetPort) => new(FreePort(25600, 25699), targetPort);

    public static ChaosProxy StartRedisProxy(int targetPort) => new(FreePort(26550, 26599), targetPort);

    private static int FreePort(int first, int last) =>
        LoopbackPorts.FirstFree(Enumerable.Range(first, last - first + 1), $"the chaos suite's private servers ({first}–{last})");

    public async ValueTask DisposeAsync()
    {
        if (_postgres is not null) await _postgres.DisposeAsync();
        if (_redis is not null) await _redis.DisposeAsync();
        _gate.Dispose();
    }
}
