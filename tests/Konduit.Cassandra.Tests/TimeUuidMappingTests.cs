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
