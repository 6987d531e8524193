using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Konduit.Hosting;

/// <summary>What an event-log adapter tells the core when it registers itself (see <see cref="KonduitEventLogRegistrationExtensions"/>).</summary>
/// <typeparam name="TOptions">The adapter's options, bound from <c>Konduit:&lt;Name&gt;EventLog</c>.</typeparam>
public sealed class KonduitEventLogDefinition<TOptions> where TOptions : class
{
    /// <summary>Creates the log (once per container, only when selected). Must not connect eagerly.</summary>
    public required Func<IServiceProvider, TOptions, ITaskEventLog> Factory { get; init; }

    /// <summary>Optional start-up work (e.g. migrations), run by the recorder's flusher and retried until it succeeds.</summary>
    public Func<IServiceProvider, ITaskEventLog, TOptions, CancellationToken, Task>? InitializeAsync { get; init; }

    /// <summary>
    /// Optional periodic upkeep, e.g. deleting expired events where the backend has no native TTL. Run on every node
    /// every <see cref="KonduitOptions.EventLogMaintenanceInterval"/>, so it must be safe to run concurrently.
    /// </summary>
    public Func<IServiceProvider, ITaskEventLog, TOptions, CancellationToken, Task>? MaintainAsync { get; init; }
}

/// <summary>For event-log adapters: register a named event log with the core.</summary>
public static class KonduitEventLogRegistrationExtensions
{
    /// <summary>
    /// Registers the event log <paramref name="name"/> (case-insensitive), selected by <c>Konduit:EventLog</c>. Its
    /// options are bound from <c>Konduit:&lt;name&gt;EventLog</c>. Idempotent.
    /// </summary>
    /// <returns>The builder.</returns>
    public static IKonduitBuilder AddEventLog<TOptions>(this IKonduitBuilder builder, string name, KonduitEventLogDefinition<TOptions> definition)
        where TOptions : class
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(definition);
        var konduit = KonduitBuilderExtensions.AsKonduitBuilder(builder);
        if (konduit.Registry.EventLogs.ContainsKey(name)) return builder;
        konduit.Services.AddOptions<TOptions>().Bind(builder.Configuration.GetSection(name + "EventLog"));
        konduit.Registry.EventLogs.Add(name, new EventLogRegistration(
            name,
            sp => definition.Factory(sp, Options(sp)),
            definition.InitializeAsync is { } init ? (sp, log, ct) => init(sp, log, Options(sp), ct) : null,
            definition.MaintainAsync is { } maintain ? (sp, log, ct) => maintain(sp, log, Options(sp), ct) : null));
        return builder;

        static TOptions Options(IServiceProvider sp) => sp.GetRequiredService<IOptions<TOptions>>().Value;
    }
}

/// <summary>
/// Put on an event-log adapter's assembly so that <c>"Konduit:EventLog": "&lt;Name&gt;"</c> alone registers it:
/// <c>AddKonduit</c> loads <c>Konduit.&lt;Name&gt;</c> and runs <see cref="IKonduitEventLogAdapter.Register"/>.
/// </summary>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
public sealed class KonduitEventLogAdapterAttribute : Attribute
{
    /// <summary>Creates the attribute.</summary>
    public KonduitEventLogAdapterAttribute(
        string eventLogName,
        [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] Type adapterType)
    {
        EventLogName = eventLogName;
        AdapterType = adapterType;
    }

    /// <summary>The name used in <c>Konduit:EventLog</c>.</summary>
    public string EventLogName { get; }

    /// <summary>The <see cref="IKonduitEventLogAdapter"/> implementation.</summary>
    [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)]
    public Type AdapterType { get; }
}

/// <summary>An event-log adapter's registration entry point, found through <see cref="KonduitEventLogAdapterAttribute"/>.</summary>
public interface IKonduitEventLogAdapter
{
    /// <summary>Registers the event log, exactly as the adapter's own <c>Add…EventLog()</c> extension does.</summary>
    void Register(IKonduitBuilder builder);
}

internal static class KonduitEventLogDiscovery
{
    public static bool TryRegister(IKonduitBuilder builder, string name)
    {
        if (!name.All(char.IsAsciiLetterOrDigit)) return false;
        Assembly? assembly = AppDomain.CurrentDomain.GetAssemblies()
            .FirstOrDefault(a => string.Equals(a.GetName().Name, "Konduit." + name, StringComparison.OrdinalIgnoreCase));
        if (assembly is null)
        {
            try
            {
                assembly = Assembly.Load(new AssemblyName("Konduit." + name));
            }
            catch (Exception ex) when (ex is FileNotFoundException or FileLoadException or BadImageFormatException)
            {
                return false;
            }
        }
        foreach (var attribute in assembly.GetCustomAttributes<KonduitEventLogAdapterAttribute>())
        {
            if (!string.Equals(attribute.EventLogName, name, StringComparison.OrdinalIgnoreCase)) continue;
            ((IKonduitEventLogAdapter)Activator.CreateInstance(attribute.AdapterType)!).Register(builder);
            return true;
        }
        return false;
    }
}
