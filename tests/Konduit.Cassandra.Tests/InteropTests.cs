using System.Diagnostics;
using System.Text.Json;
using Konduit.Cassandra.EventLog;

namespace Konduit.Cassandra.Tests;

/// <summary>
/// Issue 14: rows written by an outside client (Debian's DataStax Python driver, python3-cassandra) read through our
/// reader, and ours read by it. The driver picks its own timeuuids with the full 100-ns range.
/// </summary>
public sealed class InteropTests(CassandraEventLogFixture fixture) : IClassFixture<CassandraEventLogFixture>
{
    private const string Python = "/usr/bin/python3";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Rows_the_DataStax_driver_wrote_read_back_in_time_order_each_once_with_nulls_as_zero_and_unknown_kinds_kept()
    {
        var log = (CassandraTaskEventLog)await fixture.CreateLogAsync();
        var options = fixture.Options(0);
        var queue = "interop." + Guid.NewGuid().ToString("N")[..10];
        using var written = JsonDocument.Parse(await RunAsync("write", fixture.Keyspace(0), queue,
            ((long)options.BucketSize.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture),
            options.ShardCount.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        var rows = written.RootElement.GetProperty("rows").EnumerateArray().ToList();
        var fromMs = written.RootElement.GetProperty("from_ms").GetInt64();
        var task = rows[0].GetProperty("task_id").GetGuid();
        var expectedKinds = rows.Select(r => (TaskEventKind)r.GetProperty("kind").GetInt32()).ToList();
        var expectedMillis = rows.Select(r => r.GetProperty("ticks").GetInt64() / 10_000).ToList();

        var history = await log.ReadTaskHistoryAsync(task, Ct);
        Assert.Equal(expectedKinds, history.Select(e => e.Kind));
        Assert.Equal(expectedMillis, history.Select(e => e.Timestamp.ToUnixTimeMilliseconds()));
        Assert.Equal(rows.Count, history.Select(e => e.EventId).Distinct().Count());
        Assert.Equal((0, 0L), (history[2].Attempt, history[2].LeaseToken));
        Assert.Equal((1, 7L, "tenant-a", "py-worker"), (history[1].Attempt, history[1].LeaseToken, history[1].Tenant, history[1].WorkerId));
        Assert.Equal((TaskEventKind)42, history[5].Kind);

        foreach (var pageSize in new[] { 1, 2, 3 })
        {
            var seen = new List<TaskEvent>();
            Guid? cursor = null;
            for (var pages = 0; pages <= rows.Count; pages++)
            {
                var page = await log.ReadQueueEventsAsync(queue, DateTimeOffset.FromUnixTimeMilliseconds(fromMs), DateTimeOffset.UtcNow, new TaskEventPageRequest(pageSize, cursor), Ct);
                seen.AddRange(page.Events);
                cursor = page.NextCursor;
                if (cursor is null) break;
            }
            Assert.Null(cursor);
            Assert.Equal(expectedKinds, seen.Select(e => e.Kind));
            Assert.Equal(history.Select(e => e.EventId), seen.Select(e => e.EventId));
        }
    }

    [Fact]
    public async Task Rows_we_wrote_read_back_through_the_DataStax_driver_with_absent_values_as_nulls()
    {
        var log = (CassandraTaskEventLog)await fixture.CreateLogAsync();
        var queue = "interop." + Guid.NewGuid().ToString("N")[..10];
        var task = Guid.NewGuid();
        var at = DateTimeOffset.UtcNow.AddSeconds(-5);
        TaskEvent[] events =
        [
            TaskEvent.Create(TaskEventKind.Enqueued, task, queue, at),
            TaskEvent.Create(TaskEventKind.Leased, task, queue, at) with { Attempt = 1, LeaseToken = 3, WorkerId = "w-1", Tenant = "t-1" },
            TaskEvent.Create(TaskEventKind.Failed, task, queue, at.AddMilliseconds(1)) with { Attempt = 1, LeaseToken = 3, WorkerId = "w-1", Error = "boom ü" },
        ];
        await log.AppendAsync(events, Ct);

        using var read = JsonDocument.Parse(await RunAsync("read", fixture.Keyspace(0), queue, task.ToString()));
        var rows = read.RootElement.EnumerateArray().ToList();

        Assert.Equal(events.Length, rows.Count);
        for (var i = 0; i < events.Length; i++)
        {
            var (e, row) = (events[i], rows[i]);
            Assert.Equal(TimeUuidMapping.UnixTicks(TimeUuidMapping.ToTimeUuid(e.EventId)), row.GetProperty("ticks").GetInt64());
            Assert.Equal((int)e.Kind, row.GetProperty("kind").GetInt32());
            Assert.Equal(e.Attempt, row.GetProperty("attempt").GetInt32());
            Assert.Equal(e.LeaseToken, row.GetProperty("lease_token").GetInt64());
            Assert.Equal(queue, row.GetProperty("queue").GetString());
            Assert.Equal(e.Tenant, Nullable(row, "tenant"));
            Assert.Equal(e.WorkerId, Nullable(row, "worker"));
            Assert.Equal(e.Error, Nullable(row, "error"));
        }
    }

    private static string? Nullable(JsonElement row, string name) =>
        row.GetProperty(name).ValueKind == JsonValueKind.Null ? null : row.GetProperty(name).GetString();

    /// <summary>Runs the Python side against the fixture's server; a missing driver fails with how to install it.</summary>
    private async Task<string> RunAsync(string mode, params string[] args)
    {
        Assert.True(File.Exists(Python), $"{Python} is missing: apt-get install -y python3 python3-cassandra (scripts/services.sh up installs it)");
        var hostPort = fixture.ContactPoint.Split(',')[0];
        var colon = hostPort.LastIndexOf(':');
        var start = new ProcessStartInfo(Python, [Path.Combine(AppContext.BaseDirectory, "Interop", "datastax_interop.py"), mode, hostPort[..colon], hostPort[(colon + 1)..], .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(Ct);
        var stderr = process.StandardError.ReadToEndAsync(Ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        var error = await stderr;
        Assert.False(error.Contains("No module named 'cassandra'", StringComparison.Ordinal),
            "Debian's DataStax driver is missing: apt-get install -y python3-cassandra (scripts/services.sh up installs it)");
        Assert.True(process.ExitCode == 0, $"datastax_interop.py {mode} failed ({process.ExitCode}): {error}");
        return await stdout;
    }
}
