using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Konduit.Hosting;

/// <summary>Typed-payload handler registration.</summary>
public static class KonduitBuilderExtensions
{
    /// <summary>
    /// Runs <typeparamref name="THandler"/> for every task of <paramref name="queue"/>, deserializing the JSON payload
    /// with <paramref name="typeInfo"/> (source-generated). A payload that does not deserialize dead-letters the task.
    /// </summary>
    public static IKonduitBuilder AddHandler<THandler, TPayload>(this IKonduitBuilder builder, string queue, JsonTypeInfo<TPayload> typeInfo)
        where THandler : class, ITaskHandler<TPayload>
    {
        ArgumentNullException.ThrowIfNull(typeInfo);
        return AddTyped<THandler, TPayload>(builder, queue, payload => JsonSerializer.Deserialize(payload.Span, typeInfo));
    }

    /// <summary>
    /// Runs <typeparamref name="THandler"/> for every task of <paramref name="queue"/>, deserializing the JSON payload
    /// by reflection. A payload that does not deserialize dead-letters the task.
    /// </summary>
    [RequiresUnreferencedCode("Uses reflection-based JSON serialization; prefer the JsonTypeInfo overload for trimming.")]
    [RequiresDynamicCode("Uses reflection-based JSON serialization; prefer the JsonTypeInfo overload for AOT.")]
    public static IKonduitBuilder AddHandler<THandler, TPayload>(this IKonduitBuilder builder, string queue, JsonSerializerOptions? options = null)
        where THandler : class, ITaskHandler<TPayload> =>
        AddTyped<THandler, TPayload>(builder, queue, payload => JsonSerializer.Deserialize<TPayload>(payload.Span, options));

    private static KonduitBuilder AddTyped<THandler, TPayload>(IKonduitBuilder builder, string queue, Func<ReadOnlyMemory<byte>, TPayload?> deserialize)
        where THandler : class, ITaskHandler<TPayload>
    {
        ArgumentNullException.ThrowIfNull(builder);
        var konduit = AsKonduitBuilder(builder);
        konduit.Services.TryAddScoped<THandler>();
        konduit.AddHandlerCore(queue, typeof(THandler), (services, context, ct) =>
        {
            TPayload payload;
            try
            {
                payload = deserialize(context.Payload)!;
            }
            catch (JsonException ex)
            {
                throw new NonRetryableException($"The payload of task {context.TaskId} is not valid JSON for {typeof(TPayload).Name}: {ex.Message}", ex);
            }
            return services.GetRequiredService<THandler>().HandleAsync(payload, context, ct);
        });
        return konduit;
    }

    internal static KonduitBuilder AsKonduitBuilder(IKonduitBuilder builder) =>
        builder as KonduitBuilder
        ?? new KonduitBuilder(builder.Services, builder.Configuration,
            KonduitRegistry.Find(builder.Services) ?? throw new InvalidOperationException("Call AddKonduit before registering handlers or stores."));
}

/// <summary>For store adapters: register a named store with the core.</summary>
public static class KonduitStoreRegistrationExtensions
{
    /// <summary>
    /// Registers the store <paramref name="name"/> (case-insensitive). Its options <typeparamref name="TOptions"/> are
    /// bound from <c>Konduit:&lt;name&gt;</c> and validated at start-up only when <c>Konduit:Store</c> selects it.
    /// Idempotent: a second registration of the same name is ignored, so an adapter's <c>Add…Store()</c> may be
    /// called explicitly and by discovery (<see cref="KonduitStoreAdapterAttribute"/>).
    /// </summary>
    /// <returns>The builder.</returns>
    public static IKonduitBuilder AddStore<TOptions>(this IKonduitBuilder builder, string name, KonduitStoreDefinition<TOptions> definition)
        where TOptions : TaskStoreOptions
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(definition);
        var konduit = KonduitBuilderExtensions.AsKonduitBuilder(builder);
        if (konduit.Registry.Stores.ContainsKey(name)) return builder;

        konduit.Services.AddOptions<TOptions>().Bind(builder.Configuration.GetSection(name));
        konduit.Registry.Stores.Add(name, new StoreRegistration(
            name,
            sp => definition.Factory(sp, Options(sp)),
            (sp, path) => ValidateStore(sp, Options(sp), path, definition),
            definition.InitializeAsync is { } init ? (sp, store, ct) => init(sp, store, Options(sp), ct) : null));
        return builder;

        static TOptions Options(IServiceProvider sp) => sp.GetRequiredService<IOptions<TOptions>>().Value;
    }

    private static IEnumerable<string> ValidateStore<TOptions>(IServiceProvider sp, TOptions options, string path, KonduitStoreDefinition<TOptions> definition)
        where TOptions : TaskStoreOptions
    {
        var failures = new List<string>();
        try
        {
            options.Validate();
        }
        catch (ArgumentException ex)
        {
            failures.Add($"{path}:{ex.ParamName}: {StripParamSuffix(ex)}");
        }
        if (definition.Validate is { } validate) failures.AddRange(validate(sp, options, path));
        return failures;
    }

    internal static string StripParamSuffix(ArgumentException ex)
    {
        var message = ex.Message;
        var suffix = $" (Parameter '{ex.ParamName}')";
        var at = message.IndexOf(suffix, StringComparison.Ordinal);
        return at >= 0 ? message[..at] : message;
    }
}
