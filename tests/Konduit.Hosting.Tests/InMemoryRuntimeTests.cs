using Konduit.InMemory;

namespace Konduit.Hosting.Tests;

/// <summary>The runtime tests over <see cref="InMemoryTaskStore"/> (fast; a new store per test).</summary>
public sealed class InMemoryRuntimeTests : RuntimeTests
{
    protected override TestStore CreateStore() => new(new InMemoryTaskStore());
}
