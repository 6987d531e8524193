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

        foreach (var kind in KonduitComponentHost.Kinds)
        {
            var selected = KonduitComponentHost.SelectedName(options, kind);
            if (selected is null)
            {
                if (kind.Required)
                    failures.Add($"{p}:{kind.Key} is required: set it to one of {Choices(_registry, kind)}.");
                continue;
            }
            if (!_registry.Components.TryGet(kind, selected, out var component))
            {
                failures.Add(UnknownComponent(_registry, kind, selected));
                continue;
            }
            try
            {
                failures.AddRange(component.Validate(_services, $"{p}:{component.SectionName}"));
            }
            catch (InvalidOperationException ex)
            {
                // The component's options could not be bound (the configuration check names the key first).
                failures.Add($"{p}:{component.SectionName}: {ex.Message}");
            }
        }

        if (options.QueueStatsInterval is { } statsInterval && statsInterval <= TimeSpan.Zero)
            failures.Add($"{p}:QueueStatsInterval must be positive, or empty to turn the queue gauges off; got {statsInterval}.");
        if (options.SweepInterval <= TimeSpan.Zero)
            failures.Add($"{p}:SweepInterval must be positive; got {options.SweepInterval}.");
        if (options.PurgeFinishedAfter < TimeSpan.Zero)
            failures.Add($"{p}:PurgeFinishedAfter must be zero or positive (or absent to keep finished tasks); got {options.PurgeFinishedAfter}.");
        if (options.EventLogMaintenanceInterval <= TimeSpan.Zero)
            failures.Add($"{p}:EventLogMaintenanceInterval must be positive; got {options.EventLogMaintenanceInterval}.");
        if (options.MaintenanceInterval <= TimeSpan.Zero)
            failures.Add($"{p}:MaintenanceInterval must be positive; got {options.MaintenanceInterval}.");
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
                failures.Add($"{key}: '{queue}' is not a valid queue name: {KonduitValidation.Describe(ex)}");
            }
            ValidateQueue(key, queueOptions, failures);
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    internal const int MaxLeaseCallsInFlight = 16;

    internal static void ValidateQueue(string key, KonduitQueueOptions q, List<string> failures)
    {
        if (q.Concurrency < 1)
            failures.Add($"{key}:Concurrency must be at least 1; got {q.Concurrency}.");
        if (q.MaxBatchSize is < 1 or > TaskValidation.MaxLeaseCount)
            failures.Add($"{key}:MaxBatchSize must be between 1 and {TaskValidation.MaxLeaseCount}; got {q.MaxBatchSize}.");
        if (q.LeaseCallsInFlight is < 1 or > MaxLeaseCallsInFlight)
            failures.Add($"{key}:LeaseCallsInFlight must be between 1 and {MaxLeaseCallsInFlight} (or unset: automatic); got {q.LeaseCallsInFlight}.");

        var leaseOk = double.IsFinite(q.LeaseSeconds) && q.LeaseSeconds > 0 && q.LeaseSeconds <= TaskValidation.MaxLeaseDuration.TotalSeconds;
        if (!leaseOk)
            failures.Add($"{key}:LeaseSeconds must be positive and at most {TaskValidation.MaxLeaseDuration.TotalSeconds:0} (one day); got {Format(q.LeaseSeconds)}.");

        if (q.ExecutionTimeout is { } limit && limit <= TimeSpan.Zero)
            failures.Add($"{key}:ExecutionTimeout must be positive (or unset: no limit); got {limit}.");
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
                failures.Add($"{key}:Retry:{ex.ParamName}: {KonduitValidation.Describe(ex)}");
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

    /// <summary>The message for a selected name no adapter registered: lists what the application can select.</summary>
    internal static string UnknownComponent(KonduitRegistry registry, KonduitComponentKind kind, string? name)
    {
        var what = kind.Key switch
        {
            KonduitComponentKind.StoreKey => "store",
            KonduitComponentKind.EventLogKey => "event log",
            KonduitComponentKind.HeartbeatsKey => "heartbeat channel",
            _ => kind.Key + " component",
        };
        return $"{registry.SectionPath}:{kind.Key} = '{name}' is not a registered {what}. Allowed values: {Choices(registry, kind)}. " +
               $"Reference the adapter package (assembly Konduit.{name}) or call its registration (e.g. Add{name}{(kind.Key == KonduitComponentKind.StoreKey ? "Store" : kind.Key)}()).";
    }

    /// <summary>The names registered for <paramref name="kind"/> and those the application's Konduit.* assemblies declare.</summary>
    private static string Choices(KonduitRegistry registry, KonduitComponentKind kind)
    {
        var names = registry.Components.NamesOf(kind).Concat(KonduitComponentDiscovery.AvailableNames(kind))
            .Distinct(StringComparer.OrdinalIgnoreCase).Order(StringComparer.OrdinalIgnoreCase).ToList();
        return names.Count == 0
            ? $"(none: the application references no adapter of this kind; add a package such as Konduit.InMemory)"
            : string.Join(", ", names);
    }

    private static string Format(double value) => value.ToString(CultureInfo.InvariantCulture);
}
