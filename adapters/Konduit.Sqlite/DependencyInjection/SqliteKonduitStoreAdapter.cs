using Konduit.Hosting;
using Konduit.Sqlite;
using Microsoft.Extensions.DependencyInjection;

// Lets "Konduit:Store": "Sqlite" select this store with no AddSqliteStore() call (see AddKonduit).
[assembly: KonduitComponent(KonduitComponentKind.StoreKey, SqliteKonduitBuilderExtensions.StoreName, typeof(SqliteKonduitStoreAdapter))]

namespace Konduit.Sqlite;

/// <summary>Discovery entry point (see <see cref="KonduitComponentAttribute"/>).</summary>
internal sealed class SqliteKonduitStoreAdapter : IKonduitComponentAdapter
{
    public void Register(IKonduitBuilder builder) => builder.AddSqliteStore();
}
