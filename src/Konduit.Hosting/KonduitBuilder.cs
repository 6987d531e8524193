using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace Konduit.Hosting;

internal sealed class KonduitBuilder : IKonduitBuilder
{
    public KonduitBuilder(IServiceCollection services, IConfiguration configuration, KonduitRegistry registry)
    {
        Services = services;
        Configuration = configuration;
        Registry = registry;
    }

    public IServiceCollection Services { get; }

    public IConfiguration Configuration { get; }

    public KonduitComponentRegistry Components => Registry.Components;

    public KonduitRegistry Registry { get; }

    public KonduitBuilder AddHandlerCore(string queue, Type handlerType, Func<IServiceProvider, TaskContext, CancellationToken, Task> invoke)
    {
        TaskValidation.ValidateQueue(queue, nameof(queue));
        if (!Registry.HasRuntime)
        {
            throw new InvalidOperationException(
                $"Cannot add a handler for queue '{queue}': AddKonduitStore registers the store only, with no workers. Call AddKonduit to run handlers.");
        }
        if (Registry.Handlers.TryGetValue(queue, out var existing))
        {
            throw new InvalidOperationException(
                $"Queue '{queue}' already has a handler ({existing.HandlerType.Name}); a queue has one handler. Cannot add {handlerType.Name}.");
        }
        var registration = new HandlerRegistration(queue, handlerType, invoke);
        Registry.Handlers.Add(queue, registration);
        // One hosted worker per queue. A factory registration, because AddHostedService<T> dedupes by type.
        Services.AddSingleton<IHostedService>(sp => ActivatorUtilities.CreateInstance<QueueWorker>(sp, registration));
        return this;
    }

    public static KonduitBuilder From(IKonduitBuilder builder) =>
        builder as KonduitBuilder
        ?? new KonduitBuilder(builder.Services, builder.Configuration,
            KonduitRegistry.Find(builder.Services) ?? throw new InvalidOperationException("Call AddKonduit before registering handlers."));
}
