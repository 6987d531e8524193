using System.Globalization;
using Microsoft.Extensions.Options;

namespace Konduit.Hosting;

/// <summary>Start-up validation of the Konduit section; every message names its configuration key.</summary>
internal sealed class KonduitOptionsValidator : IValidateOptions<KonduitOptions>
{
    private readonly IServiceProvider _services;
    private readonly KonduitRegistry _registry;

    public KonduitOptionsValidator(IServiceProvider services, KonduitRegistry registry)
    {
        _services = services;
        _registry = registry;
    }

    public ValidateOptionsResult Validate(string? name, KonduitOptions options)
    {
        if (name != Options.DefaultName) return ValidateOptionsResult.Skip;
        var p = _registry.SectionPath;
        var failures = new List<string>();

        if (string.IsNullOrWhiteSpace(options.Store))
        {
            failures.Add($"{p}:Store is required: set it to one of the registered stores: {_registry.RegisteredStoreNames}.");
        }
        else if (!_registry.Stores.TryGetValue(options.Store, out var store))
        {
            failures.Add(
                $"{p}:Store = '{options.Store}' is not a registered store. Allowed values: {_registry.RegisteredStoreNames}. " +
                $"Reference the adapter package (assembly Konduit.{options.Store}) or call its Add{options.Store}Store().");
        }
        else
        {
            failures.AddRange(store.Validate(_services, $"{p}:{store.Name}"));
        }

        if (options.SweepInterval <= TimeSpan.Zero)
            failures.Add($"{p}:SweepInterval must be positive; got {options.SweepInterval}.");
        if (options.PurgeFinishedAfter < TimeSpan.Zero)
            failures.Add($"{p}:PurgeFinishedAfter must be zero or positive (or absent to keep finished tasks); got {options.PurgeFinishedAfter}.");
        if (options.EventLogMaintenanceInterval <= TimeSpan.Zero)
            failures.Add($"{p}:EventLogMaintenanceInterval must be positive; got {options.EventLogMaintenanceInterval}.");
        if (options.ShutdownGracePeriod < TimeSpan.Zero)
            failures.Add($"{p}:ShutdownGracePeriod must not be negative; got {options.ShutdownGracePeriod}.");
        if (options.WorkerId is { Length: 0 or > 80 })
            failures.Add($"{p}:WorkerId must be 1–80 characters; got {options.WorkerId.Length}.");

        foreach (var (queue, queueOptions) in options.Queues)
        {
            var key = $"{p}:Queues:{queue}";
            try
            {
                TaskValidation.ValidateQueue(queue);
            }
            catch (ArgumentException ex)
            {
                failures.Add($"{key}: '{queue}' is not a valid queue name: {KonduitStoreRegistrationExtensions.StripParamSuffix(ex)}");
            }
            ValidateQueue(key, queueOptions, failures);
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    internal static void ValidateQueue(string key, KonduitQueueOptions q, List<string> failures)
    {
        if (q.Concurrency < 1)
            failures.Add($"{key}:Concurrency must be at least 1; got {q.Concurrency}.");
        if (q.MaxBatchSize is < 1 or > TaskValidation.MaxLeaseCount)
            failures.Add($"{key}:MaxBatchSize must be between 1 and {TaskValidation.MaxLeaseCount}; got {q.MaxBatchSize}.");

        var leaseOk = double.IsFinite(q.LeaseSeconds) && q.LeaseSeconds > 0 && q.LeaseSeconds <= TaskValidation.MaxLeaseDuration.TotalSeconds;
        if (!leaseOk)
            failures.Add($"{key}:LeaseSeconds must be positive and at most {TaskValidation.MaxLeaseDuration.TotalSeconds:0} (one day); got {Format(q.LeaseSeconds)}.");

        if (q.HeartbeatInterval is { } interval)
        {
            if (interval <= TimeSpan.Zero)
                failures.Add($"{key}:HeartbeatInterval must be positive; got {interval}.");
            else if (leaseOk && interval >= q.Lease)
                failures.Add($"{key}:HeartbeatInterval ({interval}) must be shorter than the lease ({key}:LeaseSeconds = {Format(q.LeaseSeconds)}): a lease must be renewed before it expires.");
        }
        else if (!(q.HeartbeatFraction > 0 && q.HeartbeatFraction < 1))
        {
            failures.Add($"{key}:HeartbeatFraction must be between 0 and 1 (exclusive) so the heartbeat interval is shorter than the lease ({key}:LeaseSeconds); got {Format(q.HeartbeatFraction)}.");
        }

        if (q.MaxAttempts is < 1)
            failures.Add($"{key}:MaxAttempts must be at least 1; got {q.MaxAttempts}.");
        if (q.Retry is { } retry)
        {
            try
            {
                retry.ToPolicy().Validate();
            }
            catch (ArgumentException ex)
            {
                failures.Add($"{key}:Retry:{ex.ParamName}: {KonduitStoreRegistrationExtensions.StripParamSuffix(ex)}");
            }
        }
        if (q.PollInterval <= TimeSpan.Zero)
            failures.Add($"{key}:PollInterval must be positive; got {q.PollInterval}.");
        else if (q.MaxPollInterval < q.PollInterval)
            failures.Add($"{key}:MaxPollInterval ({q.MaxPollInterval}) must be at least {key}:PollInterval ({q.PollInterval}).");
        // The worker waits for work up to this long, and stores refuse longer wait timeouts.
        else if (q.MaxPollInterval > TaskValidation.MaxWaitTimeout)
            failures.Add($"{key}:MaxPollInterval must be at most {TaskValidation.MaxWaitTimeout} (one day); got {q.MaxPollInterval}.");
    }

    private static string Format(double value) => value.ToString(CultureInfo.InvariantCulture);
}
