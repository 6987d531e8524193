using System.Data;
using System.Data.Common;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Xunit;
using static Konduit.Hosting.Tests.TestKit;

namespace Konduit.Hosting.Tests;

/// <summary>
/// Transactional enqueue through <see cref="IKonduitClient"/> (issue 17): trace context at the call, and the Enqueued
/// event, the enqueue metric and the wake-up only once the caller's transaction commits, never for a rollback.
/// </summary>
public sealed class TransactionalEnqueueClientTests(PostgresRuntimeFixture fixture) : IClassFixture<PostgresRuntimeFixture>
{
    private const string EnqueuedMetric = "konduit.tasks.enqueued";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_committed_enqueue_gets_trace_context_and_its_event_and_metric_only_after_the_commit()
    {
        var queue = NewQueue();
        using var activities = new ActivityCollector(queue);
        using var host = PostgresHost(queue);
        using var metrics = new MetricCollector(host);
        var client = host.Services.GetRequiredService<IKonduitClient>();
        var recorder = host.Services.GetRequiredService<TaskEventRecorder>();
        await using var connection = new NpgsqlConnection(fixture.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var tx = await connection.BeginTransactionAsync(Ct);

        var id = (await client.EnqueueAsync(client.CreateRequest(queue, [1]), tx, Ct)).TaskId;

        // Open transaction: another connection sees no task, and nothing is recorded or counted yet.
        await Assert.ThrowsAsync<TaskNotFoundException>(() => fixture.Store.GetAsync(id, Ct));
        await recorder.FlushAsync(Ct);
        Assert.Empty(await recorder.Log.ReadTaskHistoryAsync(id, Ct));
        Assert.Equal(0, metrics.Sum(EnqueuedMetric, queue));

        await tx.CommitAsync(Ct);

        await Eventually(async () =>
        {
            await recorder.FlushAsync(Ct);
            return (await recorder.Log.ReadTaskHistoryAsync(id, Ct)).Count > 0;
        }, "the Enqueued event after the commit");
        Assert.Equal([TaskEventKind.Enqueued], (await recorder.Log.ReadTaskHistoryAsync(id, Ct)).Select(e => e.Kind));
        await Eventually(() => metrics.Sum(EnqueuedMetric, queue) == 1, "the enqueue metric after the commit");
        var span = Assert.Single(activities.Activities);
        var headers = (await fixture.Store.GetAsync(id, Ct)).Headers;
        Assert.NotNull(headers);
        Assert.Contains(span.TraceId.ToHexString(), headers["traceparent"], StringComparison.Ordinal);
        Assert.Equal(id.ToString(), span.GetTagItem("messaging.message.id"));
    }

    [Fact]
    public async Task A_rolled_back_enqueue_gets_no_event_and_no_metric()
    {
        var queue = NewQueue();
        using var host = PostgresHost(queue);
        using var metrics = new MetricCollector(host);
        var client = host.Services.GetRequiredService<IKonduitClient>();
        var recorder = host.Services.GetRequiredService<TaskEventRecorder>();
        await using var connection = new NpgsqlConnection(fixture.ConnectionString);
        await connection.OpenAsync(Ct);

        Guid rolledBack;
        await using (var tx = await connection.BeginTransactionAsync(Ct))
        {
            rolledBack = (await client.EnqueueAsync(client.CreateRequest(queue, [1]), tx, Ct)).TaskId;
            await tx.RollbackAsync(Ct);
        }
        // Npgsql reuses a connection's transaction object: the next transaction must not confirm the first.
        IReadOnlyList<EnqueueResult> committed;
        await using (var tx = await connection.BeginTransactionAsync(Ct))
        {
            committed = await client.EnqueueManyAsync([client.CreateRequest(queue, [2]), client.CreateRequest(queue, [3])], tx, Ct);
            await tx.CommitAsync(Ct);
        }

        await Eventually(async () =>
        {
            await recorder.FlushAsync(Ct);
            foreach (var r in committed)
                if ((await recorder.Log.ReadTaskHistoryAsync(r.TaskId, Ct)).Count == 0) return false;
            return true;
        }, "the Enqueued events of the committed batch");
        await Eventually(() => metrics.Sum(EnqueuedMetric, queue) == 2, "the committed batch in the metric");
        await recorder.FlushAsync(Ct);
        Assert.Empty(await recorder.Log.ReadTaskHistoryAsync(rolledBack, Ct));
        await Assert.ThrowsAsync<TaskNotFoundException>(() => fixture.Store.GetAsync(rolledBack, Ct));
        Assert.Equal(2, metrics.Sum(EnqueuedMetric, queue));
        // The rolled-back task is still watched (it can never be seen); the committed one is done.
        Assert.Equal(1, host.Services.GetRequiredService<EnqueueCommitWatcher>().Pending);
    }

    [Fact]
    public async Task A_committed_enqueue_wakes_this_nodes_idle_worker()
    {
        var queue = NewQueue();
        var ran = new TaskCompletionSource<Guid>(TaskCreationOptions.RunContinuationsAsynchronously);
        // A long poll interval: only a wake-up (the store's NOTIFY or the client's local signal) leases the task soon.
        using var host = BuildHost(PostgresConfig(queue, ($"Konduit:Queues:{queue}:PollInterval", "00:01:00"), ($"Konduit:Queues:{queue}:MaxPollInterval", "00:01:00")),
            null, k => k.AddHandler<DelegateHandler>(queue), s => s.AddSingleton(new HandlerBody((c, _) => { ran.TrySetResult(c.TaskId); return Task.CompletedTask; })));
        await host.StartAsync(Ct);
        var client = host.Services.GetRequiredService<IKonduitClient>();
        await using var connection = new NpgsqlConnection(fixture.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var tx = await connection.BeginTransactionAsync(Ct);

        var id = (await client.EnqueueAsync(client.CreateRequest(queue, [1]), tx, Ct)).TaskId;
        await tx.CommitAsync(Ct);

        Assert.Equal(id, await Within(ran.Task, "the committed task to run before the next poll"));
        await host.StopAsync(Ct);
    }

    [Fact]
    public async Task A_store_without_the_capability_refuses_with_NotSupportedException_and_stays_unchanged()
    {
        var queue = NewQueue();
        using var host = BuildHost(Config(queue, "InMemory"), null, _ => { });
        var client = host.Services.GetRequiredService<IKonduitClient>();
        await using var tx = new ForeignTransaction();

        var error = await Assert.ThrowsAsync<NotSupportedException>(() => client.EnqueueAsync(client.CreateRequest(queue, [1]), tx, Ct));

        Assert.Contains(nameof(StoreCapabilities.TransactionalEnqueue), error.Message, StringComparison.Ordinal);
        Assert.Empty((await client.Store.QueryAsync(new TaskQuery { Queue = queue }, null, Ct)).Items);
    }

    [Fact]
    public async Task Another_providers_transaction_is_refused_with_ArgumentException_and_the_store_stays_unchanged()
    {
        var queue = NewQueue();
        using var host = PostgresHost(queue);
        var client = host.Services.GetRequiredService<IKonduitClient>();
        await using var tx = new ForeignTransaction();

        var error = await Assert.ThrowsAsync<ArgumentException>(() => client.EnqueueAsync(client.CreateRequest(queue, [1]), tx, Ct));

        Assert.Equal("transaction", error.ParamName);
        Assert.Empty((await fixture.Store.QueryAsync(new TaskQuery { Queue = queue }, null, Ct)).Items);
    }

    private IHost PostgresHost(string queue) => BuildHost(PostgresConfig(queue), null, _ => { });

    private Dictionary<string, string?> PostgresConfig(string queue, params (string Key, string? Value)[] extra) =>
        Config(queue, "Postgres",
        [
            ("Konduit:Postgres:ConnectionString", fixture.ConnectionString),
            ("Konduit:Postgres:Schema", fixture.Schema),
            ("Konduit:EventLog", "InMemory"),
            .. extra,
        ]);

    /// <summary>A transaction of no provider the stores know.</summary>
    private sealed class ForeignTransaction : DbTransaction
    {
        public override IsolationLevel IsolationLevel => IsolationLevel.ReadCommitted;

        protected override DbConnection? DbConnection => null;

        public override void Commit()
        {
        }

        public override void Rollback()
        {
        }
    }
}
