using Konduit;
using Konduit.Hosting;
using Konduit.Postgres;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the PostgreSQL store with Konduit.</summary>
public static class PostgresKonduitBuilderExtensions
{
    /// <summary>The store name selected by <c>"Konduit:Store": "Postgres"</c>.</summary>
    public const string StoreName = "Postgres";

    /// <summary>
    /// Registers the store <c>Postgres</c>: a <see cref="PostgresTaskStore"/> configured by <c>Konduit:Postgres</c>
    /// (<see cref="PostgresTaskStoreOptions"/>: <c>ConnectionString</c>, <c>Schema</c>, …, plus
    /// <see cref="PostgresKonduitOptions.MigrateOnStartup"/>). When the container has an <see cref="NpgsqlDataSource"/>
    /// (e.g. from <c>AddNpgsqlDataSource</c>) the store uses it and the connection string may be omitted.
    /// Nothing connects until the store is first used or the host starts, whose start-up step checks that the server
    /// accepts the configured credentials (a failure names <c>Konduit:Postgres:ConnectionString</c>) and then
    /// migrates when asked to. Not needed in code when the application references this package and configures
    /// <c>"Store": "Postgres"</c>: <c>AddKonduit</c> finds it by name. Idempotent.
    /// </summary>
    public static IKonduitBuilder AddPostgresStore(this IKonduitBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddOptions<PostgresKonduitOptions>().Bind(builder.Configuration.GetSection(StoreName));
        return builder.AddComponent(KonduitComponentKind.Store, StoreName, new KonduitComponentDefinition<ITaskStore, PostgresTaskStoreOptions>
        {
            Factory = static (services, options) => new PostgresTaskStore(options, services.GetService<NpgsqlDataSource>()),
            Validate = static (services, options, path) =>
                KonduitValidation.Check(path, options.Validate)
                    .Concat(PostgresStartupCheck.ValidateConnectionString(options.ConnectionString, path, services.GetService<NpgsqlDataSource>() is not null)),
            StartAsync = static async (context, store, options, cancellationToken) =>
            {
                await PostgresStartupCheck.ConnectAsync(context, options.ConnectionString, cancellationToken).ConfigureAwait(false);
                if (context.Services.GetRequiredService<IOptions<PostgresKonduitOptions>>().Value.MigrateOnStartup)
                    await ((PostgresTaskStore)store).MigrateAsync(cancellationToken).ConfigureAwait(false);
            },
            MigrateAsync = static (_, store, _, cancellationToken) => ((PostgresTaskStore)store).MigrateAsync(cancellationToken),
            AlsoBoundFromSection = [typeof(PostgresKonduitOptions)],
        });
    }
}

/// <summary>Hosting-only settings of the Postgres store, bound from <c>Konduit:Postgres</c> next to <see cref="PostgresTaskStoreOptions"/>.</summary>
public sealed class PostgresKonduitOptions
{
    /// <summary>Run <see cref="PostgresTaskStore.MigrateAsync"/> when the host starts, before any worker leases. Default false.</summary>
    public bool MigrateOnStartup { get; set; }
}

/// <summary>
/// Start-up checks of a PostgreSQL connection: the string parses, and the server accepts it. Public for adapters that
/// build on the Postgres store (the Postgres+Redis hybrid), so the check exists once.
/// </summary>
public static class PostgresStartupCheck
{
    // The cheapest round trip that proves the server accepted the connection and the credentials.
    private const string PingSql = "SELECT 1";

    /// <summary>
    /// The configuration errors of <paramref name="connectionString"/> at <paramref name="path"/>:<paramref name="setting"/>
    /// (missing without a registered data source, or not parsable), naming the key but never a value.
    /// </summary>
    public static IEnumerable<string> ValidateConnectionString(string? connectionString, string path, bool hasDataSource, string setting = "ConnectionString")
    {
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            if (!hasDataSource)
                return [$"{path}:{setting} is required when {KonduitValidation.SelectorKey(path, KonduitComponentKind.Store)} is '{path[(path.LastIndexOf(':') + 1)..]}' (or register an NpgsqlDataSource in the container)."];
            return [];
        }
        try
        {
            _ = new NpgsqlConnectionStringBuilder(connectionString);
            return [];
        }
        catch (ArgumentException ex)
        {
            // Npgsql's message names the keyword, never its value (which may be the password).
            return [$"{path}:{setting} is not a valid PostgreSQL connection string: {KonduitValidation.Describe(ex)}."];
        }
    }

    /// <summary>
    /// Opens one connection (the container's <see cref="NpgsqlDataSource"/> when there is one, else an unpooled one from
    /// <paramref name="connectionString"/>) and runs <c>SELECT 1</c>; a failure is a <see cref="KonduitStartupException"/>
    /// naming <paramref name="setting"/> and the host, port and user, never the password.
    /// </summary>
    public static async Task ConnectAsync(KonduitComponentContext context, string? connectionString, CancellationToken cancellationToken, string setting = "ConnectionString")
    {
        var dataSource = context.Services.GetService<NpgsqlDataSource>();
        var target = "the NpgsqlDataSource registered in the container";
        try
        {
            NpgsqlConnection connection;
            if (dataSource is not null)
            {
                connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            }
            else
            {
                // Unpooled: the check must not leave an idle connection next to the store's own pool.
                var builder = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false };
                target = $"PostgreSQL at {builder.Host}:{builder.Port} as user '{builder.Username}'";
                connection = new NpgsqlConnection(builder.ConnectionString);
                await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            }
            await using (connection.ConfigureAwait(false))
            {
                var ping = new NpgsqlCommand(PingSql, connection);
                await using (ping.ConfigureAwait(false))
                    await ping.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new KonduitStartupException(context.Key(setting), $"cannot connect to {target}: {ex.Message}", ex);
        }
    }
}
