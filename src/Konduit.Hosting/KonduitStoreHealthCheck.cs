using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Konduit.Hosting;

/// <summary>
/// The <c>konduit-store</c> health check: the selected store's <see cref="ITaskStore.ProbeAsync"/> within the health
/// check's timeout. Healthy when every server answers, Degraded when the store runs without one of them (the hybrid
/// without Redis), the registration's failure status when it cannot serve. Data: the store's name.
/// </summary>
internal sealed class KonduitStoreHealthCheck : IHealthCheck
{
    private readonly IServiceProvider _services;

    public KonduitStoreHealthCheck(IServiceProvider services) => _services = services;

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        ITaskStore store;
        try
        {
            store = _services.GetRequiredService<ITaskStore>();
        }
        catch (Exception ex)
        {
            return new HealthCheckResult(context.Registration.FailureStatus, "The Konduit store could not be created.", ex);
        }

        var data = new Dictionary<string, object> { ["store"] = store.Name };
        try
        {
            var degraded = await store.ProbeAsync(cancellationToken).ConfigureAwait(false);
            return degraded is null
                ? HealthCheckResult.Healthy($"Konduit store '{store.Name}' is reachable.", data)
                : HealthCheckResult.Degraded($"Konduit store '{store.Name}' is degraded: {degraded}", data: data);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            return new HealthCheckResult(context.Registration.FailureStatus, $"Konduit store '{store.Name}' is unreachable: {ex.Message}", ex, data);
        }
    }
}
