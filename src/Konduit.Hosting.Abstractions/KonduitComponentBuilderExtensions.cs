using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Konduit.Hosting;

/// <summary>For adapters: register a named component of any kind with the core.</summary>
public static class KonduitComponentBuilderExtensions
{
    /// <summary>
    /// Registers component <paramref name="name"/> (case-insensitive) of <paramref name="kind"/>. Its options
    /// <typeparamref name="TOptions"/> are bound from <c>Konduit:&lt;kind.SectionName(name)&gt;</c>; nothing is created,
    /// checked or started unless configuration selects it (<c>Konduit:&lt;kind.Key&gt;</c> = <paramref name="name"/>).
    /// Idempotent: a second registration of the same kind and name is ignored, so an adapter's <c>Add…()</c> may be
    /// called explicitly and by discovery (<see cref="KonduitComponentAttribute"/>).
    /// </summary>
    /// <returns>The builder.</returns>
    /// <exception cref="ArgumentException"><paramref name="name"/> is not 1–64 ASCII letters and digits.</exception>
    public static IKonduitBuilder AddComponent<TService, TOptions>(this IKonduitBuilder builder, KonduitComponentKind kind, string name,
        KonduitComponentDefinition<TService, TOptions> definition)
        where TService : class
        where TOptions : class
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(kind);
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(definition);
        // Names become assembly names in discovery and section names in configuration: plain identifiers only.
        if (!KonduitComponentRegistry.IsIdentifier(name))
            throw new ArgumentException($"A component name must be 1–64 ASCII letters and digits; got '{name}'.", nameof(name));
        if (builder.Components.TryGet(kind, name, out _)) return builder;

        var sectionPath = $"{builder.Components.SectionPath}:{kind.SectionName(name)}";
        builder.Services.AddOptions<TOptions>().Bind(builder.Configuration.GetSection(kind.SectionName(name)));
        builder.Components.TryAdd(new KonduitComponent(
            kind,
            name,
            typeof(TService),
            [typeof(TOptions), .. definition.AlsoBoundFromSection],
            sp => definition.Factory(sp, Options(sp)),
            (sp, path) => definition.Validate is { } validate ? [.. validate(sp, Options(sp), path)] : [],
            Erase(definition.StartAsync, sectionPath),
            Erase(definition.MigrateAsync, sectionPath),
            Erase(definition.MaintainAsync, sectionPath)));
        return builder;

        static TOptions Options(IServiceProvider sp) => sp.GetRequiredService<IOptions<TOptions>>().Value;

        static Func<IServiceProvider, object, CancellationToken, Task>? Erase(Func<KonduitComponentContext, TService, TOptions, CancellationToken, Task>? step, string path) =>
            step is null ? null : (sp, instance, ct) => step(new KonduitComponentContext(sp, path), (TService)instance, Options(sp), ct);
    }
}
