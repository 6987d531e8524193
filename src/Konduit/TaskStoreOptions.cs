namespace Konduit;

/// <summary>Settings every store honours. Adapter options classes derive from this.</summary>
public class TaskStoreOptions
{
    /// <summary>Largest accepted payload in bytes. Default 1 MiB.</summary>
    public int MaxPayloadBytes { get; set; } = TaskValidation.DefaultMaxPayloadBytes;

    /// <summary>Retry policy used when neither the failure, the queue nor the task names one.</summary>
    public RetryPolicy DefaultRetryPolicy { get; set; } = RetryPolicy.Default;

    /// <summary>Throws <see cref="ArgumentException"/> when a setting is out of range.</summary>
    public virtual void Validate()
    {
        if (MaxPayloadBytes <= 0)
            throw new ArgumentOutOfRangeException(nameof(MaxPayloadBytes), MaxPayloadBytes, "MaxPayloadBytes must be positive.");
        ArgumentNullException.ThrowIfNull(DefaultRetryPolicy, nameof(DefaultRetryPolicy));
        DefaultRetryPolicy.Validate();
    }
}
