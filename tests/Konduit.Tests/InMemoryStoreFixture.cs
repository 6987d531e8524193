using Konduit.InMemory;
using Konduit.Testing.Conformance;

namespace Konduit.Tests;

/// <summary>Runs the conformance suite against <see cref="InMemoryTaskStore"/>: every store is a fresh, empty instance.</summary>
public sealed class InMemoryStoreFixture : TaskStoreFixture
{
    private readonly List<InMemoryTaskStore> _stores = [];

    public override ValueTask<ITaskStore> CreateStoreAsync(Action<TaskStoreOptions>? configure = null)
    {
        var options = new InMemoryTaskStoreOptions();
        configure?.Invoke(options);
        var store = new InMemoryTaskStore(options);
        lock (_stores) _stores.Add(store);
        return ValueTask.FromResult<ITaskStore>(store);
    }

    public override async ValueTask DisposeAsync()
    {
        InMemoryTaskStore[] stores;
        lock (_stores) stores = [.. _stores];
        foreach (var store in stores) await store.DisposeAsync();
        await base.DisposeAsync();
    }
}
