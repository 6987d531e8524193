using Konduit;
using Konduit.Hosting;
using Konduit.Postgres;
using Microsoft.Extensions.Options;
using Npgsql;

// Lets "Konduit:EventLog": "Postgres" select this event log with no AddPostgresEventLog() call.
[assembly: KonduitComponent(KonduitComponentKind.EventLogKey, Microsoft.Extensions.DependencyInjection.PostgresEventLogKonduitBuilderExtensions.EventLogName, typeof(PostgresEventLogAdapter))]

namespace Microsoft.Extensions.DependencyInjection
{
    /// <summary>Registers the PostgreSQL event log with Konduit.</summary>
    public static class PostgresEventLogKonduitBuilderExtensions
    {
        /// <summary>The name selected by <c>"Konduit:EventLog": "Postgres"</c>.</summary>
        public const string EventLogName = "Postgres";

        /// <summary>
        /// Registers the event log <c>Postgres</c>: a <see cref="PostgresTaskEventLog"/> configured by <c>Konduit:PostgresEventLog</c>
        /// (<see cref="PostgresTaskEventLogOptions"/>; without a connection string it uses the container's
        /// <see cref="NpgsqlDataSource"/>, else the store's <c>Konduit:Postgres:ConnectionString</c>). Its table is created
        /// in the background at start-up (<see cref="PostgresTaskEventLog.MigrateAsync"/>, idempotent); with a
        /// <c>TimeToLive</c>, expired events are deleted every <c>Konduit:EventLogMaintenanceInterval</c>. Idempotent.
        /// </summary>
        public static IKonduitBuilder AddPostgresEventLog(this IKonduitBuilder builder)
        {
            ArgumentNullException.ThrowIfNull(builder);
            return builder.AddComponent(KonduitComponentKind.EventLog, EventLogName, new KonduitComponentDefinition<ITaskEventLog, PostgresTaskEventLogOptions>
            {
                Factory = static (services, options) =>
                {
                    var dataSource = string.IsNullOrWhiteSpace(options.ConnectionString) ? services.GetService<NpgsqlDataSource>() : null;
                    if (dataSource is null && string.IsNullOrWhiteSpace(options.ConnectionString))
                        options.ConnectionString = services.GetService<IOptions<PostgresTaskStoreOptions>>()?.Value.ConnectionString;
                    return new PostgresTaskEventLog(options, dataSource);
                },
                StartAsync = static (_, log, _, cancellationToken) => ((PostgresTaskEventLog)log).MigrateAsync(cancellationToken),
                MigrateAsync = static (_, log, _, cancellationToken) => ((PostgresTaskEventLog)log).MigrateAsync(cancellationToken),
                // PostgreSQL has no row TTL: expired events are deleted by the runtime's periodic upkeep.
                MaintainAsync = static async (_, log, options, cancellationToken) =>
                {
                    if (options.TimeToLive is not null) await ((PostgresTaskEventLog)log).DeleteExpiredAsync(cancellationToken).ConfigureAwait(false);
                },
            });
        }
    }
}

namespace Konduit.Postgres
{
    /// <summary>Discovery entry point (see <see cref="KonduitComponentAttribute"/>).</summary>
    internal sealed class PostgresEventLogAdapter : IKonduitComponentAdapter
    {
        public void Register(IKonduitBuilder builder) => Microsoft.Extensions.DependencyInjection.PostgresEventLogKonduitBuilderExtensions.AddPostgresEventLog(builder);
    }
}
