using Konduit.Hosting;
using Konduit.Postgres;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the PostgreSQL store with Konduit's hosting runtime.</summary>
public static class PostgresKonduitBuilderExtensions
{
    /// <summary>The store name selected by <c>"Konduit:Store": "Postgres"</c>.</summary>
    public const string StoreName = "Postgres";

    /// <summary>
    /// Registers the store <c>Postgres</c>: a <see cref="PostgresTaskStore"/> configured by <c>Konduit:Postgres</c>
    /// (<see cref="PostgresTaskStoreOptions"/>: <c>ConnectionString</c>, <c>Schema</c>, …, plus
    /// <see cref="PostgresKonduitOptions.MigrateOnStartup"/>). When the container has an <see cref="NpgsqlDataSource"/>
    /// (e.g. from <c>AddNpgsqlDataSource</c>) the store uses it and the connection string may be omitted.
    /// Nothing connects until the store is first used. Not needed in code when the application references this
    /// package and configures <c>"Store": "Postgres"</c>: <c>AddKonduit</c> finds it by name. Idempotent.
    /// </summary>
    public static IKonduitBuilder AddPostgresStore(this IKonduitBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddOptions<PostgresKonduitOptions>().Bind(builder.Configuration.GetSection(StoreName));
        return builder.AddStore(StoreName, new KonduitStoreDefinition<PostgresTaskStoreOptions>
        {
            Factory = static (services, options) => new PostgresTaskStore(options, services.GetService<NpgsqlDataSource>()),
            Validate = static (services, options, path) =>
                string.IsNullOrWhiteSpace(options.ConnectionString) && services.GetService<NpgsqlDataSource>() is null
                    ? [$"{path}:ConnectionString is required when {path[..path.LastIndexOf(':')]}:Store is '{StoreName}' (or register an NpgsqlDataSource in the container)."]
                    : [],
            InitializeAsync = static (services, store, _, cancellationToken) =>
                services.GetRequiredService<IOptions<PostgresKonduitOptions>>().Value.MigrateOnStartup && store is PostgresTaskStore postgres
                    ? postgres.MigrateAsync(cancellationToken)
                    : Task.CompletedTask,
        });
    }
}

/// <summary>Hosting-only settings of the Postgres store, bound from <c>Konduit:Postgres</c> next to <see cref="PostgresTaskStoreOptions"/>.</summary>
public sealed class PostgresKonduitOptions
{
    /// <summary>Run <see cref="PostgresTaskStore.MigrateAsync"/> when the host starts, before any worker leases. Default false.</summary>
    public bool MigrateOnStartup { get; set; }
}
