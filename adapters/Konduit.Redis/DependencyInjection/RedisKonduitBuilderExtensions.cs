using Konduit.RedisStartup;
using Konduit;
using Konduit.Hosting;
using Konduit.Redis;
using StackExchange.Redis;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the Redis store with Konduit.</summary>
public static class RedisKonduitBuilderExtensions
{
    /// <summary>The store name selected by <c>"Konduit:Store": "Redis"</c>.</summary>
    public const string StoreName = "Redis";

    /// <summary>
    /// Registers the store <c>Redis</c>: a <see cref="RedisTaskStore"/> configured by <c>Konduit:Redis</c>
    /// (<see cref="RedisTaskStoreOptions"/>: <c>Configuration</c>, <c>KeyPrefix</c>, …). When the container has an
    /// <see cref="IConnectionMultiplexer"/> the store uses it and <c>Configuration</c> may be omitted. Nothing
    /// connects until the store is first used or the host starts, whose start-up step checks that Redis answers
    /// (a failure names <c>Konduit:Redis:Configuration</c>). Not needed in code when the application references this
    /// package and configures <c>"Store": "Redis"</c>: <c>AddKonduit</c> finds it by name. Idempotent.
    /// </summary>
    public static IKonduitBuilder AddRedisStore(this IKonduitBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddComponent(KonduitComponentKind.Store, StoreName, new KonduitComponentDefinition<ITaskStore, RedisTaskStoreOptions>
        {
            Factory = static (services, options) => new RedisTaskStore(options, services.GetService<IConnectionMultiplexer>()),
            Validate = static (services, options, path) =>
                KonduitValidation.Check(path, options.Validate)
                    .Concat(ValidateConnection(options.Configuration, path, "Configuration", services.GetService<IConnectionMultiplexer>() is not null)),
            StartAsync = static (context, _, options, cancellationToken) =>
                RedisStartupCheck.PingAsync(context, options.Configuration, "Configuration", cancellationToken, options.TlsCertificateAuthorityPath),
        });
    }

    internal static IEnumerable<string> ValidateConnection(string? configuration, string path, string setting, bool hasMultiplexer)
    {
        if (string.IsNullOrWhiteSpace(configuration))
        {
            if (!hasMultiplexer)
                yield return $"{path}:{setting} is required when {KonduitValidation.SelectorKey(path, KonduitComponentKind.Store)} is '{path[(path.LastIndexOf(':') + 1)..]}' (or register an IConnectionMultiplexer in the container).";
            yield break;
        }
        string? error = null;
        try
        {
            ConfigurationOptions.Parse(configuration);
        }
        catch (ArgumentException ex)
        {
            error = $"{path}:{setting} is not a valid StackExchange.Redis configuration string: {KonduitValidation.Describe(ex)}";
        }
        if (error is not null) yield return error;
    }
}
