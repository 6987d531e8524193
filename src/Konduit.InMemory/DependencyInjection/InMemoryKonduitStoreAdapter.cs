using Konduit.Hosting;
using Konduit.InMemory;
using Microsoft.Extensions.DependencyInjection;

// Lets "Konduit:Store": "InMemory" select this store with no AddInMemoryStore() call (see AddKonduit).
[assembly: KonduitComponent(KonduitComponentKind.StoreKey, InMemoryKonduitBuilderExtensions.StoreName, typeof(InMemoryKonduitStoreAdapter))]

namespace Konduit.InMemory;

/// <summary>Discovery entry point (see <see cref="KonduitComponentAttribute"/>).</summary>
internal sealed class InMemoryKonduitStoreAdapter : IKonduitComponentAdapter
{
    public void Register(IKonduitBuilder builder) => builder.AddInMemoryStore();
}
