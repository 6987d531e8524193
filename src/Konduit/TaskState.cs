namespace Konduit;

/// <summary>The lifecycle state of a task. Numeric values are persisted by stores: never renumber.</summary>
public enum TaskState
{
    /// <summary>Waiting to be leased; includes tasks scheduled to run in the future.</summary>
    Pending = 0,

    /// <summary>Held by a worker under a lease.</summary>
    Running = 1,

    /// <summary>Completed successfully (terminal).</summary>
    Succeeded = 2,

    /// <summary>Dead-lettered: a non-retryable failure or attempts exhausted (terminal; can be redriven).</summary>
    Failed = 3,

    /// <summary>Canceled by a caller (terminal; can be redriven).</summary>
    Canceled = 4,
}

/// <summary>Helpers for <see cref="TaskState"/>.</summary>
public static class TaskStateExtensions
{
    /// <summary>The states no worker will ever act on again without a redrive.</summary>
    public static IReadOnlyList<TaskState> TerminalStates { get; } = [TaskState.Succeeded, TaskState.Failed, TaskState.Canceled];

    /// <summary>The states a cancel acts on (<see cref="ITaskStore.CancelAsync"/>, <see cref="ITaskStore.CancelManyAsync"/>).</summary>
    public static IReadOnlyList<TaskState> CancelableStates { get; } = [TaskState.Pending, TaskState.Running];

    /// <summary>The states a redrive acts on (<see cref="ITaskStore.RedriveAsync"/>, <see cref="ITaskStore.RedriveManyAsync"/>).</summary>
    public static IReadOnlyList<TaskState> RedrivableStates { get; } = [TaskState.Failed, TaskState.Canceled];

    /// <summary>True for <see cref="TaskState.Succeeded"/>, <see cref="TaskState.Failed"/> and <see cref="TaskState.Canceled"/>.</summary>
    public static bool IsTerminal(this TaskState state) => state is TaskState.Succeeded or TaskState.Failed or TaskState.Canceled;
}
