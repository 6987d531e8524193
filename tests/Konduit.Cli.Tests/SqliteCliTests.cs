using Konduit.Sqlite;
using Microsoft.Data.Sqlite;
using Xunit;
using static Konduit.Cli.Tests.CliTestKit;

namespace Konduit.Cli.Tests;

/// <summary>The CLI on a SQLite file chosen only by <c>--store</c> and <c>--connection</c>: no server, no code.</summary>
public sealed class SqliteCliTests
{
    [Fact]
    public async Task Migrate_enqueue_pause_and_stats_work_on_a_sqlite_file_selected_from_the_command_line()
    {
        var directory = AppDirectory("""{ "Konduit": { } }""");
        // Absolute: SQLite resolves a relative Data Source against the process's directory, not the CLI's.
        var connection = $"Data Source={Path.Combine(directory, "konduit.db")}";
        string[] store = ["--store", "Sqlite", "--connection", connection];
        try
        {
            Assert.Equal(0, (await RunAsync(directory, ["migrate", .. store])).ExitCode);
            var enqueue = await RunAsync(directory, ["enqueue", "emails", "--payload", "{}", "--key", "k1", "--json", .. store]);
            Assert.True(enqueue.ExitCode == 0, enqueue.ToString());
            var pause = await RunAsync(directory, ["queues", "pause", "emails", .. store]);
            Assert.True(pause.ExitCode == 0, pause.ToString());
            var stats = await RunAsync(directory, ["stats", "--json", .. store]);
            Assert.True(stats.ExitCode == 0, stats.ToString());
            Assert.Contains("emails", stats.Out, StringComparison.Ordinal);

            // Read back through the store itself.
            await using var sqlite = new SqliteTaskStore(new SqliteTaskStoreOptions { ConnectionString = connection });
            var task = await sqlite.GetAsync(enqueue.Json().GetProperty("id").GetGuid(), Ct);
            Assert.Equal(("emails", TaskState.Pending, "k1"), (task.Queue, task.State, task.IdempotencyKey));
            Assert.Equal(["emails"], await sqlite.GetPausedQueuesAsync(Ct));
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(directory, recursive: true);
        }
    }
}
