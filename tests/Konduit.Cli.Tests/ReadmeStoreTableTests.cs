using System.Text.RegularExpressions;
using Konduit.InMemory;
using Konduit.Postgres;
using Konduit.PostgresRedis;
using Konduit.Redis;
using Konduit.Sqlite;
using Xunit;
using static Konduit.Cli.Tests.CliTestKit;

namespace Konduit.Cli.Tests;

/// <summary>The README's store-choice table says what each store's <see cref="StoreCapabilities"/> declare.</summary>
public sealed partial class ReadmeStoreTableTests
{
    [Fact]
    public async Task The_store_table_matches_each_stores_declared_capabilities()
    {
        var redis = await RedisAsync();
        // Stores connect lazily: constructing them reads their capabilities without a round trip.
        ITaskStore[] stores =
        [
            new PostgresTaskStore(new PostgresTaskStoreOptions { ConnectionString = "Host=127.0.0.1" }),
            new RedisTaskStore(new RedisTaskStoreOptions { Configuration = redis }),
            new PostgresRedisTaskStore(new PostgresRedisTaskStoreOptions { ConnectionString = "Host=127.0.0.1", RedisConfiguration = redis }),
            new InMemoryTaskStore(),
            new SqliteTaskStore(new SqliteTaskStoreOptions { ConnectionString = "Data Source=readme-table.db" }),
        ];
        var rows = Rows();
        foreach (var store in stores)
        {
            var name = store switch { PostgresTaskStore => "Postgres", RedisTaskStore => "Redis", PostgresRedisTaskStore => "PostgresRedis", SqliteTaskStore => "Sqlite", _ => "InMemory" };
            Assert.True(rows.TryGetValue(name, out var cells), $"The README's store table has no row for {name}.");
            var c = store.Capabilities;
            // Columns after the name and "durable"; a cell's first word is the default configuration's answer.
            Assert.Equal(
                [c.TransactionalEnqueue, c.PushWakeUp, c.OrdersByRunAt, c.StrictLeaseOrder, c.AtomicCrossQueueBatches],
                cells[2..7].Select(cell => cell.StartsWith("yes", StringComparison.Ordinal) ? true
                    : cell.StartsWith("no", StringComparison.Ordinal) ? false
                    : throw new Xunit.Sdk.XunitException($"{name}: cell '{cell}' starts with neither yes nor no.")));
            await store.DisposeAsync();
        }
    }

    private static Dictionary<string, string[]> Rows()
    {
        var readme = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "docs", "README.md"));
        var section = readme[readme.IndexOf("## Choosing a store", StringComparison.Ordinal)..];
        return RowPattern().Matches(section)
            .Select(m => m.Value.Trim().Trim('|').Split(" | ").Select(c => c.Trim()).ToArray())
            .TakeWhile(cells => cells.Length >= 8)
            .ToDictionary(cells => cells[0].Trim('`'), cells => cells, StringComparer.Ordinal);
    }

    [GeneratedRegex(@"^\| `\w+` \|.*$", RegexOptions.Multiline)]
    private static partial Regex RowPattern();
}
