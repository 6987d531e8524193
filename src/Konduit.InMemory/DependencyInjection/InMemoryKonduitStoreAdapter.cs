using Konduit.Hosting;
using Konduit.InMemory;
using Microsoft.Extensions.DependencyInjection;

// Lets "Konduit:Store": "InMemory" select this store with no AddInMemoryStore() call (see AddKonduit).
[assembly: KonduitStoreAdapter(InMemoryKonduitBuilderExtensions.StoreName, typeof(InMemoryKonduitStoreAdapter))]

namespace Konduit.InMemory;

/// <summary>Discovery entry point (see <see cref="KonduitStoreAdapterAttribute"/>).</summary>
internal sealed class InMemoryKonduitStoreAdapter : IKonduitStoreAdapter
{
    public void Register(IKonduitBuilder builder) => builder.AddInMemoryStore();
}
