using System.Diagnostics.CodeAnalysis;

namespace Konduit.Hosting;

/// <summary>
/// Put on an adapter's assembly, once per component it provides, so that configuration alone selects it: when
/// <c>Konduit:&lt;Kind&gt;</c> names a component that no code registered, the core loads assembly
/// <c>Konduit.&lt;Name&gt;</c> (present when the application references the adapter package), finds this attribute
/// with a matching kind and name and calls <see cref="IKonduitComponentAdapter.Register"/> on a new
/// <see cref="AdapterType"/>.
/// </summary>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
public sealed class KonduitComponentAttribute : Attribute
{
    /// <summary>Creates the attribute.</summary>
    /// <param name="kind">The kind's key, e.g. <see cref="KonduitComponentKind.StoreKey"/>.</param>
    /// <param name="name">The name used in configuration, e.g. <c>Postgres</c>.</param>
    /// <param name="adapterType">An <see cref="IKonduitComponentAdapter"/> with a public parameterless constructor.</param>
    public KonduitComponentAttribute(
        string kind,
        string name,
        [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] Type adapterType)
    {
        Kind = kind;
        Name = name;
        AdapterType = adapterType;
    }

    /// <summary>The kind's key (<c>Store</c>, <c>EventLog</c>, <c>Heartbeats</c>, …).</summary>
    public string Kind { get; }

    /// <summary>The name used in configuration.</summary>
    public string Name { get; }

    /// <summary>The <see cref="IKonduitComponentAdapter"/> implementation.</summary>
    [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)]
    public Type AdapterType { get; }
}

/// <summary>An adapter's registration entry point for one component, found through <see cref="KonduitComponentAttribute"/>.</summary>
public interface IKonduitComponentAdapter
{
    /// <summary>Registers the component, exactly as the adapter's own <c>Add…()</c> extension does.</summary>
    void Register(IKonduitBuilder builder);
}
