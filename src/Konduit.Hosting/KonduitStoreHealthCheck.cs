using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Konduit.Hosting;

/// <summary>
/// The <c>konduit-store</c> health check: the selected store answers a cheap query (one page of one task from a
/// queue that never holds tasks) within the health check's timeout. Data: the store's name.
/// </summary>
internal sealed class KonduitStoreHealthCheck : IHealthCheck
{
    private static readonly TaskQuery Probe = new() { Queue = "konduit.health-probe" };
    private static readonly PageRequest OneItem = new(Limit: 1);
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
            await store.QueryAsync(Probe, OneItem, cancellationToken).ConfigureAwait(false);
            return HealthCheckResult.Healthy($"Konduit store '{store.Name}' is reachable.", data);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            return new HealthCheckResult(context.Registration.FailureStatus, $"Konduit store '{store.Name}' is unreachable: {ex.Message}", ex, data);
        }
    }
}
