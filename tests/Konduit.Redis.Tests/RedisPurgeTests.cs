using System.Globalization;
using Konduit.Testing.Conformance;
using StackExchange.Redis;
using Xunit;

namespace Konduit.Redis.Tests;

/// <summary>
/// Purge of Completed tasks without a finish-time index (issue 16, ADR 004 "Purging Completed tasks"): the purge walks
/// the lex zset of Completed ids (<c>B:s2</c>) with a cursor and reads each task's finish time. Ids are client-clock
/// based, so the walk stops once ids pass cutoff + the skew recorded in <c>B:c</c>'s <c>sk</c>; a queue from before
/// the change has no <c>sk</c> and is walked whole, and the <c>B:f2</c> an older version wrote is drained.
/// </summary>
public sealed class RedisPurgeTests(RedisStoreFixture fixture) : IClassFixture<RedisStoreFixture>
{
    private static readonly TimeSpan LongLease = TimeSpan.FromMinutes(5);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static byte[] Bytes(string text) => System.Text.Encoding.UTF8.GetBytes(text);

    private IDatabase Db => fixture.Connection.GetDatabase();

    private static RedisKey Key(string prefix, string queue, string suffix) => "{" + prefix + ":" + queue + "}" + suffix;

    private static RedisKey TaskKey(string prefix, string queue, Guid id) => Key(prefix, queue, ":t:" + id.ToString("N"));

    /// <summary>The store clock: the server's TIME, in microseconds since the Unix epoch.</summary>
    private async Task<long> ServerMicrosAsync()
    {
        var reply = (RedisResult[])(await Db.ExecuteAsync("TIME"))!;
        return (long.Parse((string)reply[0]!, CultureInfo.InvariantCulture) * 1_000_000) + long.Parse((string)reply[1]!, CultureInfo.InvariantCulture);
    }

    /// <summary>Enqueues <paramref name="count"/> tasks to <paramref name="queue"/> and leases them all (oldest id first).</summary>
    private static async Task<List<TaskLease>> EnqueueAndLeaseAsync(RedisTaskStore store, string queue, int count)
    {
        for (var i = 0; i < count; i += 500)
            await store.EnqueueManyAsync([.. Enumerable.Range(i, Math.Min(500, count - i)).Select(n => new EnqueueRequest(queue, Bytes($"{n}")) { IdempotencyKey = "k" + Guid.NewGuid().ToString("N") })], Ct);
        var leases = new List<TaskLease>(count);
        while (leases.Count < count)
        {
            var got = await store.LeaseAsync(queue, "w", 1000, LongLease, Ct);
            Assert.NotEmpty(got);
            leases.AddRange(got);
        }
        return [.. leases.OrderBy(l => l.TaskId.ToString("N"), StringComparer.Ordinal)];
    }

    private static async Task CompleteAsync(RedisTaskStore store, IEnumerable<TaskLease> leases)
    {
        foreach (var chunk in leases.Chunk(500))
            Assert.Empty(await store.CompleteManyAsync([.. chunk.Select(l => new TaskCompletion(l))], Ct));
    }

    /// <summary>Rewrites the finish time of Completed tasks: as if they finished at <paramref name="finishedAtUs"/>, long before their ids' client clock.</summary>
    private async Task BackdateAsync(string prefix, string queue, IEnumerable<Guid> ids, long finishedAtUs)
    {
        foreach (var id in ids)
            await Db.HashSetAsync(TaskKey(prefix, queue, id), "fa", finishedAtUs.ToString(CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Completing_writes_no_finish_time_index_and_a_fresh_queue_records_its_id_skew()
    {
        var prefix = RedisStoreFixture.NewKeyPrefix();
        var store = fixture.CreateRedisStore(prefix);
        await CompleteAsync(store, await EnqueueAndLeaseAsync(store, "q", 3));

        Assert.False(await Db.KeyExistsAsync(Key(prefix, "q", ":f2")));
        Assert.Equal(3, await Db.SortedSetLengthAsync(Key(prefix, "q", ":s2")));
        // Same host, same clock: the ids ran at most a few milliseconds ahead of TIME (ids are millisecond-truncated, so
        // usually behind).
        var sk = (string?)await Db.HashGetAsync(Key(prefix, "q", ":c"), "sk");
        Assert.NotNull(sk);
        Assert.InRange(long.Parse(sk, CultureInfo.InvariantCulture), -2_000_000, 1_000_000);
    }

    [Fact]
    public async Task Purge_walks_more_than_500_completed_ids_with_a_cursor_and_deletes_exactly_those_finished_before_the_cutoff()
    {
        var prefix = RedisStoreFixture.NewKeyPrefix();
        var store = fixture.CreateRedisStore(prefix);
        var leases = await EnqueueAndLeaseAsync(store, "q", 1_300);
        // Interleaved by id: every second task finishes first, the others at least 1.5 s of store clock later.
        var early = leases.Where((_, i) => i % 2 == 0).ToList();
        var late = leases.Where((_, i) => i % 2 == 1).ToList();
        await CompleteAsync(store, early);
        var earlyDone = await ServerMicrosAsync();
        await Await.Until(async () => await ServerMicrosAsync() > earlyDone + 1_500_000, TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(50),
            "the store clock moves 1.5 s past the early completions");
        await CompleteAsync(store, late);

        // cutoff = TIME at purge - olderThan >= earlyDone, and below the late completions while the purge takes < 1.5 s.
        var olderThan = TimeSpan.FromTicks((await ServerMicrosAsync() - earlyDone) * 10);
        var purged = await store.PurgeAsync(olderThan, [TaskState.Succeeded], "q", Ct);

        Assert.Equal(early.Select(l => l.TaskId).Order(), purged.Select(p => p.TaskId).Order());
        Assert.All(purged, p => Assert.Equal(TaskState.Succeeded, p.State));
        Assert.Equal(late.Count, await Db.SortedSetLengthAsync(Key(prefix, "q", ":s2")));
        foreach (var lease in late.Take(5).Concat(late.TakeLast(5)))
            Assert.Equal(TaskState.Succeeded, (await store.GetAsync(lease.TaskId, Ct)).State);
        Assert.Equal(late.Count, Assert.Single(await store.GetStatsAsync(Ct)).Succeeded);

        Assert.Equal(late.Select(l => l.TaskId).Order(), (await store.PurgeAsync(TimeSpan.Zero, null, null, Ct)).Select(p => p.TaskId).Order());
        Assert.Empty(await fixture.KeysAsync(prefix));
    }

    [Fact]
    public async Task The_recorded_skew_bounds_the_walk_over_completed_ids()
    {
        var prefix = RedisStoreFixture.NewKeyPrefix();
        var store = fixture.CreateRedisStore(prefix);
        var leases = await EnqueueAndLeaseAsync(store, "q", 4);
        await CompleteAsync(store, leases);
        // Finished two hours before their ids' clock says they were made: impossible with the skew recorded (sk ~ 0),
        // so a purge of tasks older than one hour stops before these ids and deletes nothing.
        var ids = leases.Select(l => l.TaskId).ToList();
        await BackdateAsync(prefix, "q", ids, await ServerMicrosAsync() - (long)TimeSpan.FromHours(2).TotalMicroseconds);
        Assert.Empty(await store.PurgeAsync(TimeSpan.FromHours(1), null, null, Ct));

        // With the skew their ids really had (made by a client three hours ahead), the walk reaches them.
        await Db.HashSetAsync(Key(prefix, "q", ":c"), "sk", ((long)TimeSpan.FromHours(3).TotalMicroseconds).ToString(CultureInfo.InvariantCulture));
        Assert.Equal(ids.Order(), (await store.PurgeAsync(TimeSpan.FromHours(1), null, null, Ct)).Select(p => p.TaskId).Order());
        Assert.Empty(await fixture.KeysAsync(prefix));
    }

    [Fact]
    public async Task A_queue_from_before_the_change_has_no_skew_is_walked_whole_and_its_old_finish_time_index_drained()
    {
        var prefix = RedisStoreFixture.NewKeyPrefix();
        var store = fixture.CreateRedisStore(prefix);
        var leases = await EnqueueAndLeaseAsync(store, "q", 6);
        await CompleteAsync(store, leases);
        // The queue as an older version left it: no 'sk' in B:c, and B:f2 scored by finish time for the tasks it
        // completed (the first three). The last three were completed after the upgrade: in B:s2 only. All six finished
        // two hours before their ids' clock: an old queue's ids may have run ahead by any amount.
        var c = Key(prefix, "q", ":c");
        Assert.True(await Db.HashDeleteAsync(c, "sk"));
        var longAgo = await ServerMicrosAsync() - (long)TimeSpan.FromHours(2).TotalMicroseconds;
        var ids = leases.Select(l => l.TaskId).ToList();
        await BackdateAsync(prefix, "q", ids, longAgo);
        foreach (var id in ids.Take(3))
            await Db.SortedSetAddAsync(Key(prefix, "q", ":f2"), id.ToString("N"), longAgo);
        // A later task in the old queue: the enqueue does not pretend to know the skew, it marks it unknown.
        var recent = await EnqueueAndLeaseAsync(store, "q", 1);
        await CompleteAsync(store, recent);
        Assert.Equal("u", (string?)await Db.HashGetAsync(c, "sk"));

        var purged = await store.PurgeAsync(TimeSpan.FromHours(1), null, null, Ct);

        Assert.Equal(ids.Order(), purged.Select(p => p.TaskId).Order());
        Assert.False(await Db.KeyExistsAsync(Key(prefix, "q", ":f2")));
        Assert.Equal(TaskState.Succeeded, (await store.GetAsync(recent[0].TaskId, Ct)).State);
        Assert.Equal(1, Assert.Single(await store.GetStatsAsync(Ct)).Succeeded);
        Assert.Equal(recent[0].TaskId, Assert.Single(await store.PurgeAsync(TimeSpan.Zero, null, null, Ct)).TaskId);
        Assert.Empty(await fixture.KeysAsync(prefix));
    }
}
