using System.Globalization;
using System.Text.RegularExpressions;

namespace Konduit.Cli;

/// <summary>Parsing of the CLI's own value formats: durations (<c>7d</c>, <c>1h30m</c>), times, states, ids.</summary>
internal static partial class CliParsing
{
    /// <summary>
    /// A positive duration: one or more of number + unit (<c>ms</c>, <c>s</c>, <c>m</c>, <c>h</c>, <c>d</c>, <c>w</c>),
    /// e.g. <c>90s</c>, <c>1h30m</c>, <c>7d</c>; or a .NET TimeSpan with colons (<c>01:30:00</c>).
    /// </summary>
    public static TimeSpan ParseDuration(string option, string text)
    {
        var value = text.Trim();
        if (value.Contains(':', StringComparison.Ordinal)
            && TimeSpan.TryParse(value, CultureInfo.InvariantCulture, out var span) && span > TimeSpan.Zero)
        {
            return span;
        }
        var match = DurationPattern().Match(value);
        if (!match.Success)
            throw CliException.Usage($"{option}: '{text}' is not a duration; use a number and a unit (ms, s, m, h, d, w), e.g. 30s, 24h, 7d, 1h30m.");
        var total = TimeSpan.Zero;
        foreach (Capture part in match.Groups["part"].Captures)
        {
            var unitAt = part.Value.IndexOfAny(['m', 's', 'h', 'd', 'w']);
            var number = double.Parse(part.Value[..unitAt], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture);
            total += part.Value[unitAt..] switch
            {
                "ms" => TimeSpan.FromMilliseconds(number),
                "s" => TimeSpan.FromSeconds(number),
                "m" => TimeSpan.FromMinutes(number),
                "h" => TimeSpan.FromHours(number),
                "d" => TimeSpan.FromDays(number),
                _ => TimeSpan.FromDays(7 * number),
            };
        }
        if (total <= TimeSpan.Zero) throw CliException.Usage($"{option}: '{text}' must be longer than zero.");
        return total;
    }

    /// <summary>An instant: ISO 8601 (<c>2026-12-01T10:00:00Z</c>; no offset means UTC), or <c>+duration</c> from now.</summary>
    public static DateTimeOffset ParseInstant(string option, string text, TimeProvider time)
    {
        var value = text.Trim();
        if (value.StartsWith('+')) return time.GetUtcNow() + ParseDuration(option, value[1..]);
        if (DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var instant))
            return instant;
        throw CliException.Usage($"{option}: '{text}' is not a time; use ISO 8601 (2026-12-01T10:00:00Z) or +duration (+10m).");
    }

    /// <summary>Task states by name, case-insensitive; several as repeated options or comma-separated.</summary>
    public static IReadOnlyCollection<TaskState>? ParseStates(string option, IEnumerable<string>? values)
    {
        if (values is null) return null;
        var states = new List<TaskState>();
        foreach (var name in values.SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
        {
            if (!Enum.TryParse<TaskState>(name, ignoreCase: true, out var state) || !Enum.IsDefined(state) || int.TryParse(name, out _))
                throw CliException.Usage($"{option}: '{name}' is not a state; use {StateNames}.");
            if (!states.Contains(state)) states.Add(state);
        }
        return states.Count == 0 ? null : states;
    }

    public static string StateNames => string.Join(", ", Enum.GetNames<TaskState>().Select(n => n.ToLowerInvariant()));

    public static Guid ParseTaskId(string text) =>
        Guid.TryParse(text, out var id) ? id : throw CliException.Usage($"'{text}' is not a task id (a UUID such as 0193a2b4-…).");

    [GeneratedRegex(@"^(?<part>\d+(\.\d+)?(ms|s|m|h|d|w))+\z", RegexOptions.CultureInvariant)]
    private static partial Regex DurationPattern();
}
