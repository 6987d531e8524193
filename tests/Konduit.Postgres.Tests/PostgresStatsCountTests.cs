using Xunit;

namespace Konduit.Postgres.Tests;

/// <summary>
/// Terminal counts live in task_counts rows keyed by the writing backend's pid (migration 5, issue 15 item 4); the sweep
/// folds rows idle for PostgresQueries.FoldCountsIdle into slot 0 without changing any count.
/// </summary>
public sealed class PostgresStatsCountTests(PostgresStoreFixture fixture) : IClassFixture<PostgresStoreFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Folding_moves_idle_counter_rows_into_slot_zero_and_stats_stay_the_same()
    {
        var schema = PostgresStoreFixture.NewSchemaName();
        try
        {
            var store = fixture.CreatePostgresStore(schema);
            await store.MigrateAsync(Ct);
            await store.EnqueueManyAsync(Enumerable.Range(0, 3).Select(_ => new EnqueueRequest("q", [1])).ToArray(), Ct);
            foreach (var lease in await store.LeaseAsync("q", "w", 3, TimeSpan.FromMinutes(1), Ct)) await store.CompleteAsync(lease, null, Ct);
            // Rows of a connection that wrote last an hour ago (no backend has pid 2,000,000,000: pid_max is at most 2^22).
            await fixture.ScalarAsync<object>($"""
                INSERT INTO "{schema}".task_counts (queue, state, slot, tasks, touched_at)
                VALUES ('q', 2, 2000000000, 4, now() - interval '1 hour'), ('q', 3, 2000000000, 2, now() - interval '1 hour')
                """);
            var before = Assert.Single(await store.GetStatsAsync(Ct));
            Assert.Equal((7L, 2L), (before.Succeeded, before.Failed));

            // What the sweep (ReclaimExpiredAsync) runs once a minute per store.
            await store.FoldCountsAsync(Ct);

            Assert.Equal(before, Assert.Single(await store.GetStatsAsync(Ct)));
            Assert.Equal(0L, await fixture.ScalarAsync<long>($"SELECT count(*) FROM \"{schema}\".task_counts WHERE slot = 2000000000"));
            Assert.Equal(6L, await fixture.ScalarAsync<long>($"SELECT coalesce(sum(tasks), 0)::bigint FROM \"{schema}\".task_counts WHERE slot = 0"));
        }
        finally
        {
            await fixture.DropSchemaAsync(schema);
        }
    }
}
