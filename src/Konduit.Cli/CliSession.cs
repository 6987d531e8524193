using Konduit.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Konduit.Cli;

/// <summary>Where the CLI's configuration comes from, as given on the command line.</summary>
internal sealed record CliSettings(string? ConfigFile, string? Store, string? Connection);

/// <summary>
/// The configured store of one CLI invocation, through the runtime's admin registration (<c>AddKonduitStore</c>: no
/// workers, no sweeper). Disposing it flushes the event recorder, so transitions the CLI caused reach the event log.
/// </summary>
internal sealed class CliSession : IAsyncDisposable
{
    /// <summary>The Konduit section; the same name the runtime reads.</summary>
    public const string SectionName = "Konduit";

    // The key "--connection" sets, per store: each store names its connection setting after its client library.
    private static readonly Dictionary<string, string> ConnectionKeys = new(StringComparer.OrdinalIgnoreCase)
    {
        ["Postgres"] = "ConnectionString",
        ["Redis"] = "Configuration",
        ["PostgresRedis"] = "ConnectionString",
        ["Sqlite"] = "ConnectionString",
    };

    private readonly ServiceProvider _services;

    private CliSession(ServiceProvider services, KonduitOptions options)
    {
        _services = services;
        Options = options;
    }

    /// <summary>The validated Konduit options (store and event-log selection, queues).</summary>
    public KonduitOptions Options { get; }

    /// <summary>The selected store (recording into the event log when one is configured).</summary>
    public ITaskStore Store => _services.GetRequiredService<ITaskStore>();

    /// <summary>The store's start-up step and migration.</summary>
    public IKonduitStoreStartup Startup => _services.GetRequiredService<IKonduitStoreStartup>();

    /// <summary>The configured event log, or null when <c>Konduit:EventLog</c> is not set.</summary>
    public ITaskEventLog? EventLog => string.IsNullOrWhiteSpace(Options.EventLog) ? null : _services.GetRequiredService<TaskEventRecorder>().Log;

    /// <summary>The selected store component (its name as registered, and whether it has a schema).</summary>
    public KonduitComponent StoreComponent => Component(KonduitComponentKind.Store, Options.Store)!;

    /// <summary>The selected event-log component (for its migration), or null.</summary>
    public KonduitComponent? EventLogComponent => Component(KonduitComponentKind.EventLog, Options.EventLog);

    private KonduitComponent? Component(KonduitComponentKind kind, string? name) =>
        string.IsNullOrWhiteSpace(name) || !_services.GetRequiredService<KonduitComponentRegistry>().TryGet(kind, name, out var component)
            ? null
            : component;

    /// <summary>The container, for component steps that take it.</summary>
    public IServiceProvider Services => _services;

    /// <summary>The configuration the CLI reads: appsettings.json (or --config), Konduit__ environment variables, then --store / --connection.</summary>
    public static IConfigurationRoot BuildConfiguration(CliContext context, CliSettings settings)
    {
        var builder = new ConfigurationBuilder().SetBasePath(context.WorkingDirectory);
        if (settings.ConfigFile is { } file)
        {
            var path = Path.GetFullPath(file, context.WorkingDirectory);
            if (!File.Exists(path)) throw new CliException(ExitCodes.Configuration, $"--config: the file '{path}' does not exist.");
            builder.AddJsonFile(path, optional: false);
        }
        else
        {
            // As a host reads it (Host.CreateApplicationBuilder): appsettings.json, then the environment's own file.
            builder.AddJsonFile("appsettings.json", optional: true);
            if (EnvironmentName(context) is { } environment) builder.AddJsonFile($"appsettings.{environment}.json", optional: true);
        }

        // Environment variables as AddEnvironmentVariables maps them (Konduit__Store -> Konduit:Store), read from the
        // context so that in-process tests can set their own.
        var fromEnvironment = context.Environment
            .Where(e => e.Key.StartsWith(SectionName + "__", StringComparison.OrdinalIgnoreCase))
            .Select(e => KeyValuePair.Create(e.Key.Replace("__", ConfigurationPath.KeyDelimiter, StringComparison.Ordinal), (string?)e.Value));
        builder.AddInMemoryCollection(fromEnvironment);

        var overrides = new Dictionary<string, string?>();
        if (settings.Store is { } store) overrides[$"{SectionName}:Store"] = store;
        if (settings.Connection is { } connection)
        {
            var selected = settings.Store ?? builder.Build()[$"{SectionName}:Store"];
            if (string.IsNullOrWhiteSpace(selected))
                throw new CliException(ExitCodes.Configuration, "--connection needs a store: pass --store or set Konduit:Store.");
            if (!ConnectionKeys.TryGetValue(selected, out var key))
                throw new CliException(ExitCodes.Configuration,
                    $"--connection: store '{selected}' has no connection setting the CLI knows; set its key in the configuration (known: {string.Join(", ", ConnectionKeys.Keys)}).");
            overrides[$"{SectionName}:{selected}:{key}"] = connection;
        }
        builder.AddInMemoryCollection(overrides);
        return builder.Build();
    }

    /// <summary>Builds the container and validates the Konduit section (a failure is a configuration error).</summary>
    public static CliSession Open(CliContext context, CliSettings settings)
    {
        var configuration = BuildConfiguration(context, settings);
        var section = configuration.GetSection(SectionName);
        if (string.IsNullOrWhiteSpace(section["Store"]))
        {
            throw new CliException(ExitCodes.Configuration,
                $"no store is configured: set Konduit:Store in appsettings.json (looked in {context.WorkingDirectory}), Konduit__Store in the environment, or pass --store.");
        }

        var services = new ServiceCollection();
        services.AddKonduitStore(section);
        var provider = services.BuildServiceProvider();
        try
        {
            var options = provider.GetRequiredService<IOptions<KonduitOptions>>().Value;
            return new CliSession(provider, options);
        }
        catch
        {
            provider.Dispose();
            throw;
        }
    }

    private static string? EnvironmentName(CliContext context) =>
        context.Environment.TryGetValue("DOTNET_ENVIRONMENT", out var dotnet) && dotnet.Length > 0 ? dotnet
        : context.Environment.TryGetValue("ASPNETCORE_ENVIRONMENT", out var aspnet) && aspnet.Length > 0 ? aspnet
        : null;

    public ValueTask DisposeAsync() => _services.DisposeAsync();
}
