using Konduit;
using Konduit.Hosting;
using Konduit.InMemory;

// Lets "Konduit:EventLog": "InMemory" select this event log with no AddInMemoryEventLog() call.
[assembly: KonduitComponent(KonduitComponentKind.EventLogKey, Microsoft.Extensions.DependencyInjection.InMemoryEventLogKonduitBuilderExtensions.EventLogName, typeof(InMemoryEventLogAdapter))]

namespace Microsoft.Extensions.DependencyInjection
{
    /// <summary>Registers the in-memory event log with Konduit.</summary>
    public static class InMemoryEventLogKonduitBuilderExtensions
    {
        /// <summary>The name selected by <c>"Konduit:EventLog": "InMemory"</c>.</summary>
        public const string EventLogName = "InMemory";

        /// <summary>Registers the event log <c>InMemory</c> (<see cref="InMemoryTaskEventLog"/>, options from <c>Konduit:InMemoryEventLog</c>). Idempotent.</summary>
        public static IKonduitBuilder AddInMemoryEventLog(this IKonduitBuilder builder) =>
            builder.AddComponent(KonduitComponentKind.EventLog, EventLogName, new KonduitComponentDefinition<ITaskEventLog, InMemoryTaskEventLogOptions>
            {
                Factory = static (services, options) => new InMemoryTaskEventLog(options, services.GetService<TimeProvider>()),
            });
    }
}

namespace Konduit.InMemory
{
    /// <summary>Discovery entry point (see <see cref="KonduitComponentAttribute"/>).</summary>
    internal sealed class InMemoryEventLogAdapter : IKonduitComponentAdapter
    {
        public void Register(IKonduitBuilder builder) => Microsoft.Extensions.DependencyInjection.InMemoryEventLogKonduitBuilderExtensions.AddInMemoryEventLog(builder);
    }
}
