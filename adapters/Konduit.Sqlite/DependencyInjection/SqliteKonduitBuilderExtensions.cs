using Konduit;
using Konduit.Hosting;
using Konduit.Sqlite;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the SQLite store with Konduit.</summary>
public static class SqliteKonduitBuilderExtensions
{
    /// <summary>The store name selected by <c>"Konduit:Store": "Sqlite"</c>.</summary>
    public const string StoreName = "Sqlite";

    /// <summary>
    /// Registers the store <c>Sqlite</c>: a <see cref="SqliteTaskStore"/> (using the container's <see cref="TimeProvider"/>)
    /// configured by <c>Konduit:Sqlite</c> (<see cref="SqliteTaskStoreOptions"/>: <c>ConnectionString</c>, <c>BusyTimeout</c>,
    /// plus <see cref="SqliteKonduitOptions.MigrateOnStartup"/>). Nothing opens the file until the store is first used or
    /// the host starts, whose start-up step checks that the file opens (a failure names
    /// <c>Konduit:Sqlite:ConnectionString</c>) after migrating when asked to. Not needed in code when the application
    /// references this package and configures <c>"Store": "Sqlite"</c>: <c>AddKonduit</c> finds it by name. Idempotent.
    /// </summary>
    public static IKonduitBuilder AddSqliteStore(this IKonduitBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddOptions<SqliteKonduitOptions>().Bind(builder.Configuration.GetSection(StoreName));
        return builder.AddComponent(KonduitComponentKind.Store, StoreName, new KonduitComponentDefinition<ITaskStore, SqliteTaskStoreOptions>
        {
            Factory = static (services, options) => new SqliteTaskStore(options, services.GetService<TimeProvider>()),
            Validate = static (_, options, path) => KonduitValidation.Check(path, options.Validate),
            StartAsync = static async (context, store, _, cancellationToken) =>
            {
                var sqlite = (SqliteTaskStore)store;
                if (context.Services.GetRequiredService<IOptions<SqliteKonduitOptions>>().Value.MigrateOnStartup)
                    await sqlite.MigrateAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    await sqlite.ProbeAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is KonduitException && !cancellationToken.IsCancellationRequested)
                {
                    throw new KonduitStartupException(context.Key("ConnectionString"), $"cannot use the SQLite database: {ex.Message}", ex);
                }
            },
            MigrateAsync = static (_, store, _, cancellationToken) => ((SqliteTaskStore)store).MigrateAsync(cancellationToken),
            AlsoBoundFromSection = [typeof(SqliteKonduitOptions)],
        });
    }
}

/// <summary>Hosting-only settings of the SQLite store, bound from <c>Konduit:Sqlite</c> next to <see cref="SqliteTaskStoreOptions"/>.</summary>
public sealed class SqliteKonduitOptions
{
    /// <summary>Run <see cref="SqliteTaskStore.MigrateAsync"/> when the host starts, before any worker leases. Default false.</summary>
    public bool MigrateOnStartup { get; set; }
}
