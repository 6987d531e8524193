using System.Globalization;
using System.Runtime.InteropServices;
using Npgsql;
using StackExchange.Redis;

namespace Konduit.Benchmarks;

/// <summary>
/// The conditions every figure of a run was measured under, stated once in the report's header and quoted in each
/// table's conditions line: the machine, and each server's durability settings (what a commit waits for).
/// </summary>
/// <param name="Machine">"2 cores (model), 24 GiB, Debian …, .NET 10.0.x".</param>
/// <param name="Postgres">"PostgreSQL 16.4", or null when none was configured.</param>
/// <param name="PostgresDurability">"fsync on, synchronous_commit on": what a PostgreSQL commit waits for.</param>
/// <param name="Redis">"Redis 7.0.15", or null.</param>
/// <param name="RedisDurability">"appendonly no": whether Redis logs writes before a crash can lose them.</param>
/// <param name="Cassandra">"Cassandra at host:port", or null.</param>
public sealed record BenchConditions(string Machine, string? Postgres = null, string? PostgresDurability = null, string? Redis = null, string? RedisDurability = null,
    string? Cassandra = null)
{
    /// <summary>This machine only, no servers (what a report built from hand-made results shows).</summary>
    public static BenchConditions ThisMachine() => new(DescribeMachine());

    /// <summary>The machine, and each configured server's version and durability settings, read from the server.</summary>
    public static async Task<BenchConditions> ReadAsync(BenchEnvironment env, CancellationToken cancellationToken)
    {
        string? postgres = null, postgresDurability = null, redis = null, redisDurability = null;
        if (env.Postgres is { } pg)
        {
            await using var dataSource = NpgsqlDataSource.Create(pg);
            // Both settings decide what a commit waits for: with either off, a crash can lose acknowledged tasks.
            await using var cmd = dataSource.CreateCommand("SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit')");
            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
            await reader.ReadAsync(cancellationToken);
            postgres = $"PostgreSQL {reader.GetString(0).Split(' ')[0]}";
            postgresDurability = $"fsync {reader.GetString(1)}, synchronous_commit {reader.GetString(2)}";
        }
        if (env.Redis is { } r)
        {
            var options = ConfigurationOptions.Parse(r);
            options.AllowAdmin = true; // INFO is a server command
            await using var connection = await ConnectionMultiplexer.ConnectAsync(options);
            var server = connection.GetServers()[0];
            var info = (await server.InfoAsync("persistence")).SelectMany(g => g).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
            redis = $"Redis {server.Version}";
            redisDurability = info.TryGetValue("aof_enabled", out var a) && a == "1" ? "appendonly yes" : "appendonly no";
        }
        var cassandra = env.Cassandra is { } c ? $"Cassandra at {c}" : null;
        return new BenchConditions(DescribeMachine(), postgres, postgresDurability, redis, redisDurability, cassandra);
    }

    private static string DescribeMachine()
    {
        var memory = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1024.0 * 1024 * 1024);
        var cpu = CpuModel();
        return string.Create(CultureInfo.InvariantCulture,
            $"{Environment.ProcessorCount} cores{(cpu is null ? "" : $" ({cpu})")}, {memory:0} GiB, {RuntimeInformation.OSDescription}, .NET {Environment.Version}");
    }

    private static string? CpuModel()
    {
        try
        {
            return File.Exists("/proc/cpuinfo")
                ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
                : null;
        }
        catch (IOException)
        {
            return null;
        }
    }
}
