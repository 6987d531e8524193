namespace Konduit.Tests.Shared;

/// <summary>
/// A lock across test processes on one shared server, so that a test which stops that server (an outage test) and a
/// test in another module that needs it up never overlap. scripts/test.sh runs the chaos module beside the others, so
/// a module-level "one at a time" no longer keeps them apart. It is an exclusive OS file lock (flock, through
/// <see cref="FileShare.None"/>): the kernel drops it when the holding process dies, so a killed test run never leaves
/// it behind.
/// </summary>
internal sealed class SharedServerLock : IAsyncDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(5);
    private readonly FileStream _file;

    private SharedServerLock(FileStream file) => _file = file;

    /// <summary>Waits (at most five minutes) until no other test process holds the lock for <paramref name="server"/>.</summary>
    /// <param name="server">The server's identity, e.g. its host:port; one lock file per server under the temp directory.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    public static async Task<SharedServerLock> AcquireAsync(string server, CancellationToken cancellationToken)
    {
        var name = string.Concat(server.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-'));
        var path = Path.Combine(Path.GetTempPath(), $"konduit-shared-{name}.lock");
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            try
            {
                return new SharedServerLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                // Held by another test process: the flock has no wait-with-timeout in .NET, so poll for its release.
                await Task.Delay(TimeSpan.FromMilliseconds(250), cancellationToken);
            }
            catch (IOException e)
            {
                throw new TimeoutException($"another test process has held {path} for over {Patience.TotalMinutes:0} minutes (a stuck outage test?)", e);
            }
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _file.DisposeAsync();
}
