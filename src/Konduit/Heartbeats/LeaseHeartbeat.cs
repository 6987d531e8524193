using Konduit.Storage;

namespace Konduit.Heartbeats;

/// <summary>
/// One message of a heartbeat channel: the worker holding lease (<see cref="TaskId"/>, <see cref="LeaseToken"/>) is
/// alive at <see cref="SentAt"/> (or, with <see cref="Released"/>, has recorded the lease's outcome and stops sending).
/// </summary>
/// <param name="TaskId">The task.</param>
/// <param name="LeaseToken">The lease's fencing token.</param>
/// <param name="WorkerId">The worker that holds the lease.</param>
/// <param name="SentAt">When the worker sent it (the worker's clock: informational, monitors judge by their own clock).</param>
/// <param name="Extension">The store lease length the worker renews to (the ceiling); lets a monitor tell a lease the
/// worker renewed in the store (its fallback) from a dead one.</param>
/// <param name="Released">True on the last message of a lease: stop tracking it.</param>
public sealed record LeaseHeartbeat(Guid TaskId, long LeaseToken, string WorkerId, DateTimeOffset SentAt, TimeSpan Extension, bool Released = false)
{
    /// <summary>Checks every field; throws <see cref="ArgumentException"/> naming the bad one.</summary>
    public void Validate()
    {
        if (TaskId == Guid.Empty) throw new ArgumentException("The task id must not be empty.", nameof(TaskId));
        if (LeaseToken <= 0) throw new ArgumentOutOfRangeException(nameof(LeaseToken), LeaseToken, "The lease token must be positive.");
        ArgumentNullException.ThrowIfNull(WorkerId, nameof(WorkerId));
        if (WorkerId.Length is 0 or > TaskValidation.MaxNameLength)
            throw new ArgumentException($"Worker id must be 1–{TaskValidation.MaxNameLength} characters; got {WorkerId.Length}.", nameof(WorkerId));
        if (TaskValidation.IndexOfUnstorableChar(WorkerId) >= 0)
            throw new ArgumentException("Worker id contains NUL or an unpaired surrogate.", nameof(WorkerId));
        if (Extension <= TimeSpan.Zero || Extension > TaskValidation.MaxLeaseDuration)
            throw new ArgumentOutOfRangeException(nameof(Extension), Extension, $"The extension must be positive and at most {TaskValidation.MaxLeaseDuration}.");
    }
}
