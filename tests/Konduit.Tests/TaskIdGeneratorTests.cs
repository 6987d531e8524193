using System.Collections.Concurrent;
using Xunit;

namespace Konduit.Tests;

public sealed class TaskIdGeneratorTests
{
    [Fact]
    public void Ids_are_strictly_increasing_over_100k_calls()
    {
        var previous = TaskIdGenerator.NewId();
        for (var i = 0; i < 100_000; i++)
        {
            var next = TaskIdGenerator.NewId();
            Assert.True(previous.CompareTo(next) < 0, $"id #{i} {next} is not greater than {previous}");
            previous = next;
        }
    }

    [Fact]
    public void Ids_stay_increasing_when_the_counter_of_one_millisecond_is_exhausted()
    {
        // 5,000 ids stamped with the same instant: more than the 4,096 a millisecond's counter holds.
        var instant = DateTimeOffset.UtcNow.AddSeconds(-1);
        var ids = Enumerable.Range(0, 5000).Select(_ => TaskIdGenerator.NewId(instant)).ToList();

        Assert.Equal(ids.Order().ToList(), ids);
        Assert.Equal(ids.Count, ids.Distinct().Count());
    }

    [Fact]
    public async Task Ids_from_many_threads_are_unique()
    {
        var ids = new ConcurrentBag<Guid>();
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
        {
            for (var i = 0; i < 20_000; i++) ids.Add(TaskIdGenerator.NewId());
        }, TestContext.Current.CancellationToken)));

        Assert.Equal(160_000, ids.Distinct().Count());
    }

    [Fact]
    public void Ids_carry_the_uuid_v7_version_and_rfc_variant_bits()
    {
        for (var i = 0; i < 1000; i++)
        {
            var bytes = TaskIdGenerator.NewId().ToByteArray(bigEndian: true);
            Assert.Equal(0x7, bytes[6] >> 4);
            Assert.Equal(0b10, bytes[8] >> 6);
        }
        Assert.Equal(7, TaskIdGenerator.NewId().Version);
    }

    [Fact]
    public void Ids_embed_the_unix_millisecond_timestamp_big_endian()
    {
        var instant = DateTimeOffset.UtcNow.AddMinutes(-5);
        var bytes = TaskIdGenerator.NewId(instant).ToByteArray(bigEndian: true);
        long millis = 0;
        for (var i = 0; i < 6; i++) millis = (millis << 8) | bytes[i];

        // Monotonicity may push the stamp later than asked, never earlier.
        Assert.True(millis >= instant.ToUnixTimeMilliseconds());
        Assert.True(millis <= DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 1);
    }

    [Fact]
    public void Id_order_matches_the_byte_order_postgres_sorts_by()
    {
        var ids = Enumerable.Range(0, 100).Select(_ => TaskIdGenerator.NewId()).ToList();
        var byBytes = ids.OrderBy(id => Convert.ToHexString(id.ToByteArray(bigEndian: true)), StringComparer.Ordinal).ToList();

        Assert.Equal(ids, byBytes);
    }
}
