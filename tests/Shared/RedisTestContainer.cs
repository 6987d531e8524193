using DotNet.Testcontainers.Builders;
using DotNet.Testcontainers.Containers;

namespace Konduit.Tests.Shared;

/// <summary>
/// The Testcontainers fallback for test fixtures when <c>KONDUIT_TEST_REDIS</c> is not set (linked into each test
/// project that needs it; see <see cref="Konduit.Testing.Conformance.TestServer"/>). One container per test process.
/// </summary>
internal static class RedisTestContainer
{
    private static IContainer? s_container;

    /// <summary>Starts the container (once) and returns its StackExchange.Redis configuration string.</summary>
    public static async Task<string> StartAsync()
    {
        // Testcontainers' resource reaper removes the container when the test process exits.
        s_container ??= new ContainerBuilder("redis:7-alpine")
            .WithPortBinding(6379, assignRandomHostPort: true)
            .WithCommand("redis-server", "--appendonly", "yes")
            .WithWaitStrategy(Wait.ForUnixContainer().UntilCommandIsCompleted("redis-cli", "ping"))
            .Build();
        await s_container.StartAsync();
        return $"{s_container.Hostname}:{s_container.GetMappedPublicPort(6379)}";
    }
}
