using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Konduit.Hosting;

/// <summary>
/// Returned by <c>AddKonduit</c> and <c>AddKonduitStore</c>: adapters register their components on it
/// (<see cref="KonduitComponentBuilderExtensions.AddComponent{TService, TOptions}"/>), the runtime adds handlers.
/// </summary>
public interface IKonduitBuilder
{
    /// <summary>The service collection.</summary>
    IServiceCollection Services { get; }

    /// <summary>The <c>Konduit</c> configuration section given to <c>AddKonduit</c>.</summary>
    IConfiguration Configuration { get; }

    /// <summary>The components registered on this service collection, of every kind.</summary>
    KonduitComponentRegistry Components { get; }
}
