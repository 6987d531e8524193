using Konduit.Hosting;
using Konduit.Postgres;
using Microsoft.Extensions.DependencyInjection;

// Lets "Konduit:Store": "Postgres" select this store with no AddPostgresStore() call (see AddKonduit).
[assembly: KonduitComponent(KonduitComponentKind.StoreKey, PostgresKonduitBuilderExtensions.StoreName, typeof(PostgresKonduitStoreAdapter))]

namespace Konduit.Postgres;

/// <summary>Discovery entry point (see <see cref="KonduitComponentAttribute"/>).</summary>
internal sealed class PostgresKonduitStoreAdapter : IKonduitComponentAdapter
{
    public void Register(IKonduitBuilder builder) => builder.AddPostgresStore();
}
