using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Konduit.Hosting;

/// <summary>Returned by <c>AddKonduit</c>: registers handlers, and lets store adapters register themselves.</summary>
public interface IKonduitBuilder
{
    /// <summary>The service collection.</summary>
    IServiceCollection Services { get; }

    /// <summary>The <c>Konduit</c> configuration section given to <c>AddKonduit</c>.</summary>
    IConfiguration Configuration { get; }

    /// <summary>
    /// Runs <typeparamref name="THandler"/> for every task of <paramref name="queue"/>: one hosted worker per
    /// queue, configured by <c>Konduit:Queues:&lt;queue&gt;</c>. The handler is resolved from a new DI scope per task
    /// (registered as scoped unless already registered). One handler per queue.
    /// </summary>
    /// <exception cref="ArgumentException">The queue name is invalid (1–128 characters of <c>[A-Za-z0-9._:-]</c>).</exception>
    /// <exception cref="InvalidOperationException">The queue already has a handler.</exception>
    IKonduitBuilder AddHandler<THandler>(string queue) where THandler : class, ITaskHandler;
}
