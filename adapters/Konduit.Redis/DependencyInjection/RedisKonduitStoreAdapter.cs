using Konduit.Hosting;
using Konduit.Redis;
using Microsoft.Extensions.DependencyInjection;

// Lets "Konduit:Store": "Redis" select this store with no AddRedisStore() call (see AddKonduit).
[assembly: KonduitComponent(KonduitComponentKind.StoreKey, RedisKonduitBuilderExtensions.StoreName, typeof(RedisKonduitStoreAdapter))]

namespace Konduit.Redis;

/// <summary>Discovery entry point (see <see cref="KonduitComponentAttribute"/>).</summary>
internal sealed class RedisKonduitStoreAdapter : IKonduitComponentAdapter
{
    public void Register(IKonduitBuilder builder) => builder.AddRedisStore();
}
