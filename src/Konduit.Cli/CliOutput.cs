using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Konduit.Cli;

/// <summary>Writes results: Spectre.Console tables for people, or JSON (one document on stdout) with <c>--json</c>.</summary>
internal sealed class CliOutput
{
    private static readonly JsonWriterOptions JsonOptions = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private readonly CliContext _context;

    public CliOutput(CliContext context, bool json)
    {
        _context = context;
        Json = json;
        Console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(context.Out),
            Ansi = context.IsInteractive ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = context.IsInteractive ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = context.IsInteractive ? InteractionSupport.Yes : InteractionSupport.No,
        });
        // Redirected output has no width: keep a row of ids and times on one line instead of wrapping at 80 columns.
        if (!context.IsInteractive) Console.Profile.Width = 240;
    }

    /// <summary>Write JSON instead of tables.</summary>
    public bool Json { get; }

    public IAnsiConsole Console { get; }

    public CliContext Context => _context;

    /// <summary>A line of plain text (not markup).</summary>
    public void Line(string text) => Console.WriteLine(text);

    public void Write(IRenderable renderable) => Console.Write(renderable);

    /// <summary>Writes one JSON document to stdout.</summary>
    public void WriteJson(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, JsonOptions)) write(writer);
        _context.Out.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
        _context.Out.Flush();
    }

    public static Table Table(params string[] columns)
    {
        var table = new Table().Border(TableBorder.Rounded);
        foreach (var column in columns) table.AddColumn(new TableColumn(new Text(column)));
        return table;
    }

    /// <summary>Adds a row of plain-text cells (never parsed as markup: task data may hold brackets).</summary>
    public static void Row(Table table, params string?[] cells) => table.AddRow(cells.Select(c => (IRenderable)new Text(c ?? "")));

    public static string Time(DateTimeOffset? value) =>
        value is { } v ? v.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) : "";

    public static string Age(TimeSpan age)
    {
        if (age < TimeSpan.Zero) age = TimeSpan.Zero;
        return age.TotalSeconds < 60 ? $"{age.TotalSeconds:0}s"
            : age.TotalMinutes < 60 ? $"{(int)age.TotalMinutes}m{age.Seconds:00}s"
            : age.TotalHours < 48 ? $"{(int)age.TotalHours}h{age.Minutes:00}m"
            : $"{(int)age.TotalDays}d{age.Hours:00}h";
    }

    public static string StateName(TaskState state) => state.ToString().ToLowerInvariant();

    /// <summary>The first line of an error text, cut for a table cell.</summary>
    public static string Short(string? text, int max = 60)
    {
        if (string.IsNullOrEmpty(text)) return "";
        var line = text.Split('\n', 2)[0].TrimEnd('\r');
        return line.Length <= max ? line : line[..(max - 1)] + "…";
    }
}
