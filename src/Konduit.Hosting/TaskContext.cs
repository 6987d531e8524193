using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Konduit.Hosting;

/// <summary>What a handler knows about the task it is working.</summary>
public sealed class TaskContext
{
    internal TaskContext(TaskLease lease, IServiceProvider services)
    {
        Lease = lease;
        Services = services;
    }

    /// <summary>The lease as granted (heartbeats extend it; the fencing token stays the same).</summary>
    public TaskLease Lease { get; }

    /// <summary>The task id.</summary>
    public Guid TaskId => Lease.TaskId;

    /// <summary>The queue.</summary>
    public string Queue => Lease.Queue;

    /// <summary>1-based attempt number.</summary>
    public int Attempt => Lease.Attempt;

    /// <summary>The task's maximum number of attempts.</summary>
    public int MaxAttempts => Lease.MaxAttempts;

    /// <summary>True when a failure of this attempt dead-letters the task.</summary>
    public bool IsLastAttempt => Lease.Attempt >= Lease.MaxAttempts;

    /// <summary>The tenant, if any.</summary>
    public string? Tenant => Lease.Tenant;

    /// <summary>The task headers (trace context, correlation ids).</summary>
    public IReadOnlyDictionary<string, string> Headers => Lease.Headers;

    /// <summary>The raw payload.</summary>
    public ReadOnlyMemory<byte> Payload => Lease.Payload;

    /// <summary>The DI scope created for this task.</summary>
    public IServiceProvider Services { get; }

    /// <summary>Optional result bytes stored with the task when it completes.</summary>
    public byte[]? Result { get; set; }

    /// <summary>Deserializes the payload as UTF-8 JSON (source-generated metadata).</summary>
    public T? GetPayload<T>(JsonTypeInfo<T> typeInfo) => Lease.GetPayload(typeInfo);

    /// <summary>Deserializes the payload as UTF-8 JSON.</summary>
    [RequiresUnreferencedCode("Uses reflection-based JSON serialization; prefer the JsonTypeInfo overload for trimming.")]
    [RequiresDynamicCode("Uses reflection-based JSON serialization; prefer the JsonTypeInfo overload for AOT.")]
    public T? GetPayload<T>(JsonSerializerOptions? options = null) => Lease.GetPayload<T>(options);
}
