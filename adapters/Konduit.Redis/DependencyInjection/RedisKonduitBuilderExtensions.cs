using Konduit.Hosting;
using Konduit.Redis;
using StackExchange.Redis;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the Redis store with Konduit's hosting runtime.</summary>
public static class RedisKonduitBuilderExtensions
{
    /// <summary>The store name selected by <c>"Konduit:Store": "Redis"</c>.</summary>
    public const string StoreName = "Redis";

    /// <summary>
    /// Registers the store <c>Redis</c>: a <see cref="RedisTaskStore"/> configured by <c>Konduit:Redis</c>
    /// (<see cref="RedisTaskStoreOptions"/>: <c>Configuration</c>, <c>KeyPrefix</c>, …). When the container has an
    /// <see cref="IConnectionMultiplexer"/> the store uses it and <c>Configuration</c> may be omitted. Nothing
    /// connects until the store is first used. Not needed in code when the application references this package
    /// and configures <c>"Store": "Redis"</c>: <c>AddKonduit</c> finds it by name. Idempotent.
    /// </summary>
    public static IKonduitBuilder AddRedisStore(this IKonduitBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddStore(StoreName, new KonduitStoreDefinition<RedisTaskStoreOptions>
        {
            Factory = static (services, options) => new RedisTaskStore(options, services.GetService<IConnectionMultiplexer>()),
            Validate = static (services, options, path) => ValidateOptions(options, path, services.GetService<IConnectionMultiplexer>() is not null),
        });
    }

    private static IEnumerable<string> ValidateOptions(RedisTaskStoreOptions options, string path, bool hasMultiplexer)
    {
        if (string.IsNullOrWhiteSpace(options.Configuration))
        {
            if (!hasMultiplexer)
                yield return $"{path}:Configuration is required when {path[..path.LastIndexOf(':')]}:Store is '{StoreName}' (or register an IConnectionMultiplexer in the container).";
            yield break;
        }
        string? error = null;
        try
        {
            ConfigurationOptions.Parse(options.Configuration);
        }
        catch (ArgumentException ex)
        {
            error = $"{path}:Configuration is not a valid StackExchange.Redis configuration string: {ex.Message}";
        }
        if (error is not null) yield return error;
    }
}
