using Xunit;

namespace Konduit.Testing.Conformance;

/// <summary>Condition polling shared by the suites: what tests use instead of sleeps.</summary>
public static class Await
{
    /// <summary>
    /// Polls <paramref name="condition"/> every <paramref name="pollInterval"/> until it returns true, failing the
    /// test with <paramref name="because"/> when <paramref name="deadline"/> passes first.
    /// </summary>
    public static async Task Until(Func<Task<bool>> condition, TimeSpan deadline, TimeSpan pollInterval, string because)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var giveUpAt = DateTimeOffset.UtcNow + deadline;
        while (true)
        {
            if (await condition()) return;
            if (DateTimeOffset.UtcNow > giveUpAt)
                Assert.Fail($"Not true within {deadline.TotalSeconds:0.###} s: {because}");
            // A poll interval, not a sleep standing in for a condition.
            await Task.Delay(pollInterval, TestContext.Current.CancellationToken);
        }
    }
}
