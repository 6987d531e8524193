using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using Xunit;

namespace Konduit.Architecture.Tests;

/// <summary>What a shipped assembly is; an assembly may be more than one component (Konduit.Postgres is a store and an event log).</summary>
[Flags]
public enum Role
{
    /// <summary>src/Konduit: the store and event-log contracts.</summary>
    Core = 1,

    /// <summary>The registration package adapters build on (IKonduitBuilder, the component mechanism).</summary>
    Registration = 2,

    /// <summary>src/Konduit.Hosting: workers, sweeper, client, health checks; composes the components.</summary>
    Runtime = 4,

    /// <summary>An <c>ITaskStore</c> adapter.</summary>
    Store = 8,

    /// <summary>An <c>ITaskEventLog</c> adapter.</summary>
    EventLog = 16,

    /// <summary>A heartbeat channel adapter (lease renewal off the store, e.g. Kafka).</summary>
    HeartbeatChannel = 32,

    /// <summary>The conformance suites adapter authors test against.</summary>
    TestKit = 64,
}

/// <summary>
/// The package boundaries of issue 11 and ADR 008, checked on the built assemblies' metadata (what the compiler
/// really referenced, not what a csproj claims).
/// </summary>
public sealed class DependencyRulesTests
{
    /// <summary>Every shipped assembly and what it is. A new shipped assembly must be added here (a test says so).</summary>
    public static readonly IReadOnlyDictionary<string, Role> Shipped = new Dictionary<string, Role>(StringComparer.Ordinal)
    {
        ["Konduit"] = Role.Core,
        ["Konduit.Hosting.Abstractions"] = Role.Registration,
        ["Konduit.Hosting"] = Role.Runtime,
        ["Konduit.OpenTelemetry"] = Role.Runtime,
        ["Konduit.Testing.Conformance"] = Role.TestKit,
        ["Konduit.InMemory"] = Role.Store | Role.EventLog,
        ["Konduit.Postgres"] = Role.Store | Role.EventLog,
        ["Konduit.Redis"] = Role.Store,
        ["Konduit.PostgresRedis"] = Role.Store,
        ["Konduit.Sqlite"] = Role.Store,
        ["Konduit.Cassandra"] = Role.EventLog,
        ["Konduit.Kafka"] = Role.HeartbeatChannel,
    };

    private const Role Adapter = Role.Store | Role.EventLog | Role.HeartbeatChannel;

    /// <summary>
    /// The rules, one line each: the assemblies a rule applies to, and the references it forbids them.
    /// </summary>
    public static readonly IReadOnlyList<Rule> Rules =
    [
        new("no adapter references the runtime",
            from => Is(from, Adapter), to => Is(to, Role.Runtime)),
        new("the core references no adapter (nor anything else of Konduit)",
            from => Is(from, Role.Core), to => Shipped.ContainsKey(to)),
        new("event logs and heartbeat channels reference no store",
            from => Is(from, Role.EventLog | Role.HeartbeatChannel) && !Is(from, Role.Store), to => Is(to, Role.Store)),
        new("the Postgres store references no Redis",
            from => from == "Konduit.Postgres", to => to is "Konduit.Redis" or "StackExchange.Redis"),
        new("the registration package references neither the runtime nor any adapter",
            from => Is(from, Role.Registration), to => Is(to, Role.Runtime | Adapter)),
    ];

    public static TheoryData<string> RuleNames() => [.. Rules.Select(r => r.Name)];

    [Theory]
    [MemberData(nameof(RuleNames))]
    public void Rule_holds_for_every_shipped_assembly(string rule)
    {
        var check = Rules.Single(r => r.Name == rule);
        var broken = Shipped.Keys
            .Where(check.AppliesTo)
            .SelectMany(from => References(from).Where(check.Forbids).Select(to => $"{from} -> {to}"))
            .ToList();
        Assert.True(broken.Count == 0, $"Rule \"{rule}\" is broken by: {string.Join(", ", broken)}");
    }

    [Fact]
    public void Every_shipped_assembly_has_a_role()
    {
        // Konduit.*.dll next to the tests that is neither a test project nor listed: a new package without a role.
        var unlisted = Directory.EnumerateFiles(AppContext.BaseDirectory, "Konduit*.dll")
            .Select(Path.GetFileNameWithoutExtension)
            .Where(name => !name!.EndsWith(".Tests", StringComparison.Ordinal) && !Shipped.ContainsKey(name))
            .ToList();
        Assert.True(unlisted.Count == 0, $"Give these assemblies a role in {nameof(Shipped)}: {string.Join(", ", unlisted)}");
        Assert.All(Shipped.Keys, name => Assert.True(File.Exists(PathOf(name)), $"{name}.dll is not built next to the tests: reference its project."));
    }

    private static bool Is(string assembly, Role role) => Shipped.TryGetValue(assembly, out var has) && (has & role) != 0;

    private static string PathOf(string assembly) => Path.Combine(AppContext.BaseDirectory, assembly + ".dll");

    /// <summary>The assembly references in the built file's metadata (no loading, no reflection over types).</summary>
    private static List<string> References(string assembly)
    {
        using var stream = File.OpenRead(PathOf(assembly));
        using var pe = new PEReader(stream);
        var metadata = pe.GetMetadataReader();
        return [.. metadata.AssemblyReferences.Select(h => metadata.GetString(metadata.GetAssemblyReference(h).Name))];
    }
}

/// <summary>One dependency rule: which assemblies it applies to and which references it forbids them.</summary>
public sealed record Rule(string Name, Func<string, bool> AppliesTo, Func<string, bool> Forbids);
