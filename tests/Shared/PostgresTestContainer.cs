using Testcontainers.PostgreSql;

namespace Konduit.Tests.Shared;

/// <summary>
/// The Testcontainers fallback for test fixtures when <c>KONDUIT_TEST_POSTGRES</c> is not set (linked into each test
/// project that needs it; see <see cref="Konduit.Testing.Conformance.TestServer"/>). One container per test process.
/// </summary>
internal static class PostgresTestContainer
{
    private static PostgreSqlContainer? s_container;

    /// <summary>Starts the container (once) and returns its connection string.</summary>
    public static async Task<string> StartAsync()
    {
        // Testcontainers' resource reaper removes the container when the test process exits.
        s_container ??= new PostgreSqlBuilder("postgres:17-alpine").Build();
        await s_container.StartAsync();
        return s_container.GetConnectionString();
    }
}
