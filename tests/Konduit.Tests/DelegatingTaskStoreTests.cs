using Konduit.InMemory;
using Konduit.Testing.Conformance;
using Xunit;

namespace Konduit.Tests;

/// <summary>A decorator that overrides nothing: it must behave exactly like the store it wraps.</summary>
public sealed class PassThroughStore(ITaskStore inner) : DelegatingTaskStore(inner);

/// <summary>The in-memory store behind a <see cref="PassThroughStore"/>, so the suite checks that every member is forwarded.</summary>
public sealed class DelegatingStoreFixture : TaskStoreFixture
{
    public override ValueTask<ITaskStore> CreateStoreAsync(Action<TaskStoreOptions>? configure = null)
    {
        var options = new InMemoryTaskStoreOptions();
        configure?.Invoke(options);
        return ValueTask.FromResult<ITaskStore>(Track(new PassThroughStore(new InMemoryTaskStore(options))));
    }

    // In-memory data lives in its process: the other node is a second decorator over the same inner store.
    public override ValueTask<ITaskStore> CreateOtherNodeAsync(ITaskStore store) =>
        ValueTask.FromResult<ITaskStore>(new PassThroughStore(((PassThroughStore)store).Inner));
}

// The areas whose every call goes through a different ITaskStore member, through the pass-through decorator.
public sealed class DelegatingEnqueueTests(DelegatingStoreFixture f) : EnqueueConformance<DelegatingStoreFixture>(f);
public sealed class DelegatingHeartbeatTests(DelegatingStoreFixture f) : HeartbeatConformance<DelegatingStoreFixture>(f);
public sealed class DelegatingFencingTests(DelegatingStoreFixture f) : FencingConformance<DelegatingStoreFixture>(f);
public sealed class DelegatingCancelRedriveTests(DelegatingStoreFixture f) : CancelRedriveConformance<DelegatingStoreFixture>(f);
public sealed class DelegatingPurgeTests(DelegatingStoreFixture f) : PurgeConformance<DelegatingStoreFixture>(f);
public sealed class DelegatingPauseTests(DelegatingStoreFixture f) : PauseConformance<DelegatingStoreFixture>(f);
public sealed class DelegatingCompleteAndLeaseTests(DelegatingStoreFixture f) : CompleteAndLeaseConformance<DelegatingStoreFixture>(f);
public sealed class DelegatingBulkTests(DelegatingStoreFixture f) : BulkConformance<DelegatingStoreFixture>(f);
public sealed class DelegatingCapabilitiesTests(DelegatingStoreFixture f) : CapabilitiesConformance<DelegatingStoreFixture>(f);

public sealed class DelegatingTaskStoreTests
{
    [Fact]
    public void Every_contract_member_is_overridable()
    {
        var map = typeof(DelegatingTaskStore).GetInterfaceMap(typeof(ITaskStore));
        Assert.All(map.TargetMethods, m => Assert.True(m.IsVirtual && !m.IsFinal, $"{m.Name} is not overridable"));
    }

    [Fact]
    public async Task Disposing_disposes_the_inner_store_unless_told_otherwise()
    {
        var owned = new InMemoryTaskStore();
        await new PassThroughStore(owned).DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => owned.GetStatsAsync(TestContext.Current.CancellationToken));

        var borrowed = new InMemoryTaskStore();
        await new Borrowing(borrowed).DisposeAsync();
        Assert.Empty(await borrowed.GetStatsAsync(TestContext.Current.CancellationToken));
    }

    private sealed class Borrowing(ITaskStore inner) : DelegatingTaskStore(inner, ownsInner: false);
}
