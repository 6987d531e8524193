using Konduit.Hosting;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Konduit.Testing.Conformance;
using Xunit;

namespace Konduit.Sqlite.Tests;

/// <summary>The SQLite store under the runtime: selected by configuration, fed through the client inside a caller's transaction.</summary>
public sealed class SqliteRuntimeTests(SqliteStoreFixture fixture) : IClassFixture<SqliteStoreFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public sealed class CompletingHandler : ITaskHandler
    {
        public Task HandleAsync(TaskContext context, CancellationToken cancellationToken) => Task.CompletedTask;
    }

    [Fact]
    public async Task The_client_enqueues_in_a_sqlite_transaction_and_a_worker_runs_only_what_was_committed()
    {
        var queue = "sqlite.rt." + Guid.NewGuid().ToString("N");
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Konduit:Store"] = "Sqlite",
            ["Konduit:Sqlite:ConnectionString"] = fixture.ConnectionString,
            [$"Konduit:Queues:{queue}:PollInterval"] = "00:00:00.020",
            [$"Konduit:Queues:{queue}:MaxPollInterval"] = "00:00:00.100",
        });
        builder.Services.AddKonduit(builder.Configuration.GetSection("Konduit")).AddHandler<CompletingHandler>(queue);
        using var host = builder.Build();
        await host.StartAsync(Ct);
        var client = host.Services.GetRequiredService<IKonduitClient>();
        var store = host.Services.GetRequiredService<ITaskStore>();
        await using var connection = new SqliteConnection(fixture.ConnectionString);
        await connection.OpenAsync(Ct);

        Guid rolledBack, committed;
        await using (var tx = connection.BeginTransaction())
        {
            rolledBack = (await client.EnqueueAsync(client.CreateRequest(queue, [1]), tx, Ct)).TaskId;
            await tx.RollbackAsync(Ct);
        }
        await using (var tx = connection.BeginTransaction())
        {
            committed = (await client.EnqueueAsync(client.CreateRequest(queue, [2]), tx, Ct)).TaskId;
            await tx.CommitAsync(Ct);
        }

        await Await.Until(async () => (await store.GetAsync(committed, Ct)).State == TaskState.Succeeded,
            TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(20), "the committed task is run by the worker");
        await Assert.ThrowsAsync<TaskNotFoundException>(() => store.GetAsync(rolledBack, Ct));
        await host.StopAsync(Ct);
    }
}
