using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Konduit.Hosting;

/// <summary>Handler registration: what the worker runtime runs for each queue.</summary>
public static class KonduitBuilderExtensions
{
    /// <summary>
    /// Runs <typeparamref name="THandler"/> for every task of <paramref name="queue"/>: one hosted worker per
    /// queue, configured by <c>Konduit:Queues:&lt;queue&gt;</c>. The handler is resolved from a new DI scope per task
    /// (registered as scoped unless already registered). One handler per queue.
    /// </summary>
    /// <exception cref="ArgumentException">The queue name is invalid (1–128 characters of <c>[A-Za-z0-9._:-]</c>).</exception>
    /// <exception cref="InvalidOperationException">The queue already has a handler, or the builder came from <c>AddKonduitStore</c> (no runtime).</exception>
    public static IKonduitBuilder AddHandler<THandler>(this IKonduitBuilder builder, string queue) where THandler : class, ITaskHandler
    {
        ArgumentNullException.ThrowIfNull(builder);
        var konduit = KonduitBuilder.From(builder);
        konduit.AddHandlerCore(queue, typeof(THandler),
            static (services, context, ct) => services.GetRequiredService<THandler>().HandleAsync(context, ct));
        konduit.Services.TryAddScoped<THandler>();
        return builder;
    }

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
        var konduit = KonduitBuilder.From(builder);
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
        konduit.Services.TryAddScoped<THandler>();
        return konduit;
    }
}
