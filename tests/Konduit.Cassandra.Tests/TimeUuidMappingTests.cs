using Konduit.Cassandra.Cql;
using Konduit.Cassandra.EventLog;

namespace Konduit.Cassandra.Tests;

public sealed class TimeUuidMappingTests
{
    [Fact]
    public void An_event_id_maps_to_a_timeuuid_of_its_time_and_back_unchanged()
    {
        var time = new DateTimeOffset(2024, 5, 6, 7, 8, 9, 123, TimeSpan.Zero);
        for (var i = 0; i < 1000; i++)
        {
            var id = TaskEventId.NewId(time);
            var timeUuid = TimeUuidMapping.ToTimeUuid(id);
            Assert.Equal(time, new DateTimeOffset(CqlTimeUuid.GetTimestamp(timeUuid).UtcTicks / TimeSpan.TicksPerMillisecond * TimeSpan.TicksPerMillisecond, TimeSpan.Zero));
            Assert.Equal(id, TimeUuidMapping.ToEventId(timeUuid));
        }
    }

    [Fact]
    public void Ids_of_one_millisecond_keep_their_order_as_timeuuids()
    {
        var time = DateTimeOffset.UtcNow;
        var a = TaskEventId.NewId(time);
        var b = TaskEventId.NewId(time);
        Assert.True(CqlTimeUuid.GetTimestamp(TimeUuidMapping.ToTimeUuid(a)) < CqlTimeUuid.GetTimestamp(TimeUuidMapping.ToTimeUuid(b)));
    }
}

public sealed class CassandraOrderTests(CassandraFixture fixture) : IClassFixture<CassandraFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_comparer_orders_timeuuids_of_one_instant_as_the_server_clusters_them()
    {
        await fixture.Session.ExecuteAsync("CREATE TABLE ordered (p int, t timeuuid, PRIMARY KEY (p, t))", null, new CqlQueryOptions { Prepare = false }, Ct);
        var at = DateTimeOffset.UtcNow;
        // One instant, tails whose bytes have the high bit set and clear: signed and unsigned orders disagree.
        var ids = Enumerable.Range(0, 64).Select(_ => CqlTimeUuid.Create(at)).ToList();
        foreach (var id in ids)
            await fixture.Session.ExecuteAsync("INSERT INTO ordered (p, t) VALUES (?, ?)", [1, id], cancellationToken: Ct);

        var server = new List<Guid>();
        await foreach (var row in fixture.Session.QueryAsync("SELECT t FROM ordered WHERE p = ?", [1], cancellationToken: Ct))
            server.Add(row.Get<Guid>(0));

        Assert.Equal(server, ids.Order(CassandraTimeUuidOrder.Instance));
        Assert.NotEqual(server, ids.Order(TaskEventId.Comparer));
    }
}

public sealed class TableOptionsTests
{
    [Theory]
    [InlineData("2.1.0", "SizeTieredCompactionStrategy")]
    [InlineData("2.1.1", "DateTieredCompactionStrategy")]
    [InlineData("2.2.19", "DateTieredCompactionStrategy")]
    [InlineData("3.0.7", "DateTieredCompactionStrategy")]
    [InlineData("3.0.8", "TimeWindowCompactionStrategy")]
    [InlineData("3.7", "DateTieredCompactionStrategy")]
    [InlineData("3.11.4", "TimeWindowCompactionStrategy")]
    [InlineData("4.0-beta1", "TimeWindowCompactionStrategy")]
    [InlineData("5.0.2", "TimeWindowCompactionStrategy")]
    public void The_compaction_strategy_drops_whole_expired_SSTables_where_the_version_has_one(string release, string strategy)
    {
        var options = TableOptions.For(TableOptions.ParseRelease(release), 30 * 86400, 300);
        Assert.Equal(strategy, options.StrategyName);
        Assert.Equal(3 * 3600, options.GcGraceSeconds);
    }

    [Fact]
    public void Thirty_days_get_one_day_windows_and_no_time_to_live_keeps_size_tiered()
    {
        Assert.Contains("'compaction_window_unit': 'HOURS', 'compaction_window_size': '30'", TableOptions.For(new Version(4, 1, 0), 30 * 86400, 300).Compaction, StringComparison.Ordinal);
        Assert.Equal("SizeTieredCompactionStrategy", TableOptions.For(new Version(4, 1, 0), null, 300).StrategyName);
    }
}
