using Konduit.Hosting;
using Konduit.PostgresRedis;
using Microsoft.Extensions.DependencyInjection;

// Lets "Konduit:Store": "PostgresRedis" select this store with no AddPostgresRedisStore() call (see AddKonduit).
[assembly: KonduitComponent(KonduitComponentKind.StoreKey, PostgresRedisKonduitBuilderExtensions.StoreName, typeof(PostgresRedisKonduitStoreAdapter))]

namespace Konduit.PostgresRedis;

/// <summary>Discovery entry point (see <see cref="KonduitComponentAttribute"/>).</summary>
internal sealed class PostgresRedisKonduitStoreAdapter : IKonduitComponentAdapter
{
    public void Register(IKonduitBuilder builder) => builder.AddPostgresRedisStore();
}
