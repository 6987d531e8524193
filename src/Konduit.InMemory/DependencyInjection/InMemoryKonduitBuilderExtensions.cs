using Konduit;
using Konduit.Hosting;
using Konduit.InMemory;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the in-memory store with Konduit.</summary>
public static class InMemoryKonduitBuilderExtensions
{
    /// <summary>The store name selected by <c>"Konduit:Store": "InMemory"</c>.</summary>
    public const string StoreName = "InMemory";

    /// <summary>
    /// Registers the store <c>InMemory</c>: an <see cref="InMemoryTaskStore"/> (one per container, using the
    /// container's <see cref="TimeProvider"/>) configured by <c>Konduit:InMemory</c> (<see cref="InMemoryTaskStoreOptions"/>).
    /// Not needed in code when the application references this package and configures <c>"Store": "InMemory"</c>:
    /// <c>AddKonduit</c> finds it by name. Idempotent.
    /// </summary>
    public static IKonduitBuilder AddInMemoryStore(this IKonduitBuilder builder) =>
        builder.AddComponent(KonduitComponentKind.Store, StoreName, new KonduitComponentDefinition<ITaskStore, InMemoryTaskStoreOptions>
        {
            Factory = static (services, options) => new InMemoryTaskStore(options, services.GetService<TimeProvider>()),
            Validate = static (_, options, path) => KonduitValidation.Check(path, options.Validate),
        });
}
