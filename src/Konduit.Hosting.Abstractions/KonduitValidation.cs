namespace Konduit.Hosting;

/// <summary>Helpers for adapters' start-up checks: every message names the configuration key to fix.</summary>
public static class KonduitValidation
{
    /// <summary>
    /// Runs an options class's <c>Validate()</c> (which throws <see cref="ArgumentException"/>) and turns its failure
    /// into <c>&lt;sectionPath&gt;:&lt;ParamName&gt;: message</c>; empty when it passes.
    /// </summary>
    public static IEnumerable<string> Check(string sectionPath, Action validate)
    {
        ArgumentNullException.ThrowIfNull(validate);
        try
        {
            validate();
        }
        catch (ArgumentException ex)
        {
            return [ex.ParamName is { Length: > 0 } param ? $"{sectionPath}:{param}: {Describe(ex)}" : $"{sectionPath}: {Describe(ex)}"];
        }
        return [];
    }

    /// <summary>The message of <paramref name="exception"/> without the framework's " (Parameter 'x')" suffix.</summary>
    public static string Describe(ArgumentException exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        var message = exception.Message;
        var suffix = $" (Parameter '{exception.ParamName}')";
        var at = message.IndexOf(suffix, StringComparison.Ordinal);
        return at >= 0 ? message[..at] : message;
    }

    /// <summary>The configuration path of the key that selects a component in <paramref name="sectionPath"/> (<c>Konduit:Postgres</c> → <c>Konduit:Store</c>).</summary>
    public static string SelectorKey(string sectionPath, KonduitComponentKind kind)
    {
        ArgumentNullException.ThrowIfNull(sectionPath);
        ArgumentNullException.ThrowIfNull(kind);
        var at = sectionPath.LastIndexOf(':');
        return (at >= 0 ? sectionPath[..at] + ":" : "") + kind.Key;
    }
}

/// <summary>
/// A component's start-up step found that it cannot work: the server does not answer, refuses the credentials, or a
/// setting cannot be used. The message is one line that names the configuration key to fix and never holds a secret.
/// </summary>
public sealed class KonduitStartupException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="configurationKey">The key to fix, e.g. <c>Konduit:Postgres:ConnectionString</c>.</param>
    /// <param name="problem">What is wrong, one line, without secrets.</param>
    /// <param name="innerException">The driver's error.</param>
    public KonduitStartupException(string configurationKey, string problem, Exception? innerException = null)
        : base($"{configurationKey}: {OneLine(problem)}", innerException)
    {
        ConfigurationKey = configurationKey;
    }

    /// <summary>The configuration key to fix.</summary>
    public string ConfigurationKey { get; }

    private static string OneLine(string text) => string.Join(' ', text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
