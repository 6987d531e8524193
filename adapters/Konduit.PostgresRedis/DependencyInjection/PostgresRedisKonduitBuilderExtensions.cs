using Konduit.RedisStartup;
using Konduit;
using Konduit.Hosting;
using Konduit.PostgresRedis;
using Microsoft.Extensions.Options;
using Npgsql;
using StackExchange.Redis;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the Postgres + Redis hybrid store with Konduit.</summary>
public static class PostgresRedisKonduitBuilderExtensions
{
    /// <summary>The store name selected by <c>"Konduit:Store": "PostgresRedis"</c>.</summary>
    public const string StoreName = "PostgresRedis";

    /// <summary>
    /// Registers the store <c>PostgresRedis</c>: a <see cref="PostgresRedisTaskStore"/> configured by
    /// <c>Konduit:PostgresRedis</c> (<see cref="PostgresRedisTaskStoreOptions"/>: <c>ConnectionString</c>,
    /// <c>Schema</c>, <c>RedisConfiguration</c>, <c>KeyPrefix</c>, …, plus
    /// <see cref="PostgresRedisKonduitOptions.MigrateOnStartup"/>). An <see cref="NpgsqlDataSource"/> or an
    /// <see cref="IConnectionMultiplexer"/> in the container is used instead of the matching setting. Nothing
    /// connects until the store is first used or the host starts, whose start-up step checks both servers (a failure
    /// names <c>ConnectionString</c> or <c>RedisConfiguration</c>) and then migrates when asked to. Not needed in code
    /// when the application references this package and configures <c>"Store": "PostgresRedis"</c>: <c>AddKonduit</c>
    /// finds it by name. Idempotent.
    /// </summary>
    public static IKonduitBuilder AddPostgresRedisStore(this IKonduitBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddOptions<PostgresRedisKonduitOptions>().Bind(builder.Configuration.GetSection(StoreName));
        return builder.AddComponent(KonduitComponentKind.Store, StoreName, new KonduitComponentDefinition<ITaskStore, PostgresRedisTaskStoreOptions>
        {
            Factory = static (services, options) => new PostgresRedisTaskStore(
                options, services.GetService<NpgsqlDataSource>(), services.GetService<IConnectionMultiplexer>()),
            Validate = static (services, options, path) =>
                KonduitValidation.Check(path, options.Validate).Concat(ValidateOptions(
                    options, path, services.GetService<NpgsqlDataSource>() is not null, services.GetService<IConnectionMultiplexer>() is not null)),
            StartAsync = static async (context, store, options, cancellationToken) =>
            {
                await PostgresStartupCheck.ConnectAsync(context, options.ConnectionString, cancellationToken).ConfigureAwait(false);
                await RedisStartupCheck.PingAsync(context, options.RedisConfiguration, "RedisConfiguration", cancellationToken).ConfigureAwait(false);
                if (context.Services.GetRequiredService<IOptions<PostgresRedisKonduitOptions>>().Value.MigrateOnStartup)
                    await ((PostgresRedisTaskStore)store).MigrateAsync(cancellationToken).ConfigureAwait(false);
            },
            MigrateAsync = static (_, store, _, cancellationToken) => ((PostgresRedisTaskStore)store).MigrateAsync(cancellationToken),
            AlsoBoundFromSection = [typeof(PostgresRedisKonduitOptions)],
        });
    }

    private static List<string> ValidateOptions(PostgresRedisTaskStoreOptions options, string path, bool hasDataSource, bool hasMultiplexer)
    {
        var errors = new List<string>();
        var storeKey = KonduitValidation.SelectorKey(path, KonduitComponentKind.Store);
        if (string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            if (!hasDataSource)
                errors.Add($"{path}:ConnectionString is required when {storeKey} is '{StoreName}' (or register an NpgsqlDataSource in the container).");
        }
        else
        {
            try
            {
                _ = new NpgsqlConnectionStringBuilder(options.ConnectionString);
            }
            catch (ArgumentException ex)
            {
                // Npgsql's message names the keyword, never its value (which may be the password).
                errors.Add($"{path}:ConnectionString is not a valid PostgreSQL connection string: {KonduitValidation.Describe(ex)}.");
            }
        }
        if (string.IsNullOrWhiteSpace(options.RedisConfiguration))
        {
            if (!hasMultiplexer)
                errors.Add($"{path}:RedisConfiguration is required when {storeKey} is '{StoreName}' (or register an IConnectionMultiplexer in the container).");
        }
        else
        {
            try
            {
                ConfigurationOptions.Parse(options.RedisConfiguration);
            }
            catch (ArgumentException ex)
            {
                errors.Add($"{path}:RedisConfiguration is not a valid StackExchange.Redis configuration string: {KonduitValidation.Describe(ex)}");
            }
        }
        return errors;
    }
}

/// <summary>Hosting-only settings of the hybrid store, bound from <c>Konduit:PostgresRedis</c> next to <see cref="PostgresRedisTaskStoreOptions"/>.</summary>
public sealed class PostgresRedisKonduitOptions
{
    /// <summary>Run <see cref="PostgresRedisTaskStore.MigrateAsync"/> when the host starts, before any worker leases. Default false.</summary>
    public bool MigrateOnStartup { get; set; }
}
