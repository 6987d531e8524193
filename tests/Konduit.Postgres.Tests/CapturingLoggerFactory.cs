using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Konduit.Postgres.Tests;

/// <summary>
/// Records every message logged through it (all levels), so a test can count what Npgsql did: Npgsql logs
/// "Command execution completed … : {CommandText}" once per command it executed on a data source built with
/// <c>UseLoggerFactory</c>.
/// </summary>
internal sealed class CapturingLoggerFactory : ILoggerFactory
{
    private readonly ConcurrentQueue<(string Category, string Message)> _messages = new();

    private readonly ConcurrentQueue<(string Category, Exception Exception)> _exceptions = new();

    public IReadOnlyList<(string Category, string Message)> Messages => [.. _messages];

    /// <summary>The exceptions logged with a message (any level), by logger category.</summary>
    public IReadOnlyList<(string Category, Exception Exception)> Exceptions => [.. _exceptions];

    public void Clear() => _messages.Clear();

    /// <summary>The commands and batches Npgsql reported as executed since the last <see cref="Clear"/>.</summary>
    public IReadOnlyList<string> Executed() =>
    [
        .. _messages.Select(m => m.Message)
            .Where(m => m.StartsWith("Command execution completed", StringComparison.Ordinal)
                        || m.StartsWith("Batch execution completed", StringComparison.Ordinal)),
    ];

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

    public void Dispose()
    {
    }

    private sealed class Logger(CapturingLoggerFactory owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            owner._messages.Enqueue((category, formatter(state, exception)));
            if (exception is not null) owner._exceptions.Enqueue((category, exception));
        }
    }
}
