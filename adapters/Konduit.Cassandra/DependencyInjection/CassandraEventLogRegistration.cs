using Konduit;
using Konduit.Cassandra;
using Konduit.Hosting;

// Lets "Konduit:EventLog": "Cassandra" select this event log with no AddCassandraEventLog() call.
[assembly: KonduitComponent(KonduitComponentKind.EventLogKey, Microsoft.Extensions.DependencyInjection.CassandraEventLogKonduitBuilderExtensions.EventLogName, typeof(CassandraEventLogAdapter))]

namespace Microsoft.Extensions.DependencyInjection
{
    /// <summary>Registers the Cassandra event log with Konduit.</summary>
    public static class CassandraEventLogKonduitBuilderExtensions
    {
        /// <summary>The name selected by <c>"Konduit:EventLog": "Cassandra"</c>.</summary>
        public const string EventLogName = "Cassandra";

        /// <summary>
        /// Registers the event log <c>Cassandra</c>: a <see cref="CassandraTaskEventLog"/> configured by
        /// <c>Konduit:CassandraEventLog</c> (<see cref="CassandraTaskEventLogOptions"/>). With
        /// <see cref="CassandraTaskEventLogOptions.MigrateOnStartup"/> its keyspace and tables are created in the background
        /// at start-up (retried while the cluster is unreachable). Nothing connects until first use. Idempotent.
        /// </summary>
        public static IKonduitBuilder AddCassandraEventLog(this IKonduitBuilder builder) =>
            builder.AddComponent(KonduitComponentKind.EventLog, EventLogName, new KonduitComponentDefinition<ITaskEventLog, CassandraTaskEventLogOptions>
            {
                Factory = static (_, options) => new CassandraTaskEventLog(options),
                Validate = static (_, options, path) => KonduitValidation.Check(path, options.Validate),
                StartAsync = static (_, log, options, cancellationToken) =>
                    options.MigrateOnStartup ? ((CassandraTaskEventLog)log).MigrateAsync(cancellationToken) : Task.CompletedTask,
                MigrateAsync = static (_, log, _, cancellationToken) => ((CassandraTaskEventLog)log).MigrateAsync(cancellationToken),
            });
    }
}

namespace Konduit.Cassandra
{
    /// <summary>Discovery entry point (see <see cref="KonduitComponentAttribute"/>).</summary>
    internal sealed class CassandraEventLogAdapter : IKonduitComponentAdapter
    {
        public void Register(IKonduitBuilder builder) => Microsoft.Extensions.DependencyInjection.CassandraEventLogKonduitBuilderExtensions.AddCassandraEventLog(builder);
    }
}
