using System.Diagnostics.CodeAnalysis;

namespace Konduit.Hosting;

/// <summary>
/// Put on a store adapter's assembly so that <c>AddKonduit</c> can register the store from configuration
/// alone: when <c>Konduit:Store</c> names a store that no code registered, <c>AddKonduit</c> loads the assembly
/// <c>Konduit.&lt;Store&gt;</c> (which the application references as a package), finds this attribute with
/// a matching <see cref="StoreName"/> and calls <see cref="IKonduitStoreAdapter.Register"/> on a new instance
/// of <see cref="AdapterType"/>.
/// </summary>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
public sealed class KonduitStoreAdapterAttribute : Attribute
{
    /// <summary>Creates the attribute.</summary>
    /// <param name="storeName">The store name used in <c>Konduit:Store</c>.</param>
    /// <param name="adapterType">A type implementing <see cref="IKonduitStoreAdapter"/> with a public parameterless constructor.</param>
    public KonduitStoreAdapterAttribute(
        string storeName,
        [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] Type adapterType)
    {
        StoreName = storeName;
        AdapterType = adapterType;
    }

    /// <summary>The store name used in <c>Konduit:Store</c>.</summary>
    public string StoreName { get; }

    /// <summary>The <see cref="IKonduitStoreAdapter"/> implementation.</summary>
    [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)]
    public Type AdapterType { get; }
}

/// <summary>An adapter's registration entry point, found through <see cref="KonduitStoreAdapterAttribute"/>.</summary>
public interface IKonduitStoreAdapter
{
    /// <summary>Registers the store, exactly as the adapter's own <c>Add…Store()</c> extension does.</summary>
    void Register(IKonduitBuilder builder);
}
