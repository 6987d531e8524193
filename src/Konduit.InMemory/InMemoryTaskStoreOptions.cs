namespace Konduit.InMemory;

/// <summary>
/// Options of <see cref="InMemoryTaskStore"/>. It has no settings beyond the common ones
/// (<see cref="TaskStoreOptions.MaxPayloadBytes"/>, <see cref="TaskStoreOptions.DefaultRetryPolicy"/>).
/// </summary>
public sealed class InMemoryTaskStoreOptions : TaskStoreOptions
{
}
