using Konduit.InMemory;
using Konduit.Testing.Conformance;

namespace Konduit.Tests;

/// <summary>Runs the conformance suite (and the benchmarks) against <see cref="InMemoryTaskStore"/>: every store is a fresh, empty instance.</summary>
public sealed class InMemoryStoreFixture : TaskStoreFixture
{
    public override ValueTask<ITaskStore> CreateStoreAsync(Action<TaskStoreOptions>? configure = null)
    {
        var options = new InMemoryTaskStoreOptions();
        configure?.Invoke(options);
        return ValueTask.FromResult<ITaskStore>(Track(new InMemoryTaskStore(options)));
    }

    // The in-memory store's data lives in its process: its only "other node" is the store itself.
    public override ValueTask<ITaskStore> CreateOtherNodeAsync(ITaskStore store) => ValueTask.FromResult<ITaskStore>(new SameStore(store));

    private sealed class SameStore(ITaskStore inner) : DelegatingTaskStore(inner, ownsInner: false);
}
