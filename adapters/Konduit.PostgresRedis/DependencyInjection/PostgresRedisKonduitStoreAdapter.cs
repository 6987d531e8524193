using Konduit.Hosting;
using Konduit.PostgresRedis;
using Microsoft.Extensions.DependencyInjection;

// Lets "Konduit:Store": "PostgresRedis" select this store with no AddPostgresRedisStore() call (see AddKonduit).
[assembly: KonduitStoreAdapter(PostgresRedisKonduitBuilderExtensions.StoreName, typeof(PostgresRedisKonduitStoreAdapter))]

namespace Konduit.PostgresRedis;

/// <summary>Discovery entry point (see <see cref="KonduitStoreAdapterAttribute"/>).</summary>
internal sealed class PostgresRedisKonduitStoreAdapter : IKonduitStoreAdapter
{
    public void Register(IKonduitBuilder builder) => builder.AddPostgresRedisStore();
}
