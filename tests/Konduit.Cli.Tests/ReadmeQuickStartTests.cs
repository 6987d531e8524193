using System.Diagnostics;
using System.Reflection;
using System.Text.RegularExpressions;
using Konduit.Postgres;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Xunit;
using static Konduit.Cli.Tests.CliTestKit;

namespace Konduit.Cli.Tests;

/// <summary>
/// The README's quick start, copied from README.md and run (issue 17: it cannot rot): its C# block is compiled as the
/// Program.cs of a console app (with the SDK's implicit usings), its JSON block is the app's appsettings.json, and the
/// program runs in-process against the shared Postgres in a fresh schema, so <c>MigrateOnStartup</c> must be in the JSON
/// for the task to be handled.
/// </summary>
public sealed partial class ReadmeQuickStartTests
{
    // What `dotnet new console` gives a project (ImplicitUsings=enable, Microsoft.NET.Sdk).
    private const string ImplicitUsings = """
        global using global::System;
        global using global::System.Collections.Generic;
        global using global::System.IO;
        global using global::System.Linq;
        global using global::System.Net.Http;
        global using global::System.Threading;
        global using global::System.Threading.Tasks;
        """;

    [Fact]
    public void The_quick_start_is_at_most_15_lines_of_user_code()
    {
        var (code, _) = QuickStart();
        var lines = code.Split('\n').Select(l => l.Trim()).Count(l => l.Length > 0 && !l.StartsWith("//", StringComparison.Ordinal));
        Assert.True(lines <= 15, $"The README's quick start has {lines} lines of code (issue 17: at most 15).");
    }

    [Fact]
    public async Task The_quick_start_handles_the_task_it_enqueues()
    {
        var (code, json) = QuickStart();
        Assert.Contains("MigrateOnStartup", json, StringComparison.Ordinal);
        Assert.Contains("AddHandler<", code, StringComparison.Ordinal);
        Assert.Contains("IKonduitClient", code, StringComparison.Ordinal);
        var entryPoint = Compile(code);

        var connectionString = await PostgresAsync();
        var schema = "konduit_readme_" + Guid.NewGuid().ToString("N")[..8];
        var dir = AppDirectory(json);
        await using var store = new PostgresTaskStore(new PostgresTaskStoreOptions { ConnectionString = connectionString, Schema = schema });
        using var hosts = new HostCapture();
        Task? program = null;
        try
        {
            // The README's connection string names a server the test does not have: point it at the test server and a
            // fresh schema from the command line, as a user could; everything else is the README's.
            string[] args =
            [
                "--contentRoot", dir,
                $"--Konduit:Postgres:ConnectionString={connectionString}",
                $"--Konduit:Postgres:Schema={schema}",
                "--Logging:LogLevel:Default=Warning",
            ];
            program = Task.Run(() => entryPoint.Invoke(null, [args]), Ct);

            await Testing.Conformance.Await.Until(async () =>
                {
                    if (program.IsCompleted) await program; // a crash of the program fails here, with its exception
                    if (hosts.Host is null) return false;
                    try
                    {
                        var page = await store.QueryAsync(new TaskQuery { Queue = "emails" }, cancellationToken: Ct);
                        return page.Items.Count == 1 && page.Items[0].State == TaskState.Succeeded;
                    }
                    catch (KonduitException)
                    {
                        return false; // the host has not migrated the schema yet
                    }
                },
                TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(100), "the quick start's task to succeed");

            hosts.Host!.Services.GetService<IHostApplicationLifetime>()!.StopApplication();
            await program.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        }
        finally
        {
            // A failed wait must not leave the program's host running in the test process.
            if (program is { IsCompleted: false }) hosts.Host?.Services.GetService<IHostApplicationLifetime>()?.StopApplication();
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync(CancellationToken.None); // clean up even when the test was canceled
            await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE", connection);
            await drop.ExecuteNonQueryAsync(CancellationToken.None);
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The first C# and the first JSON block under "## Quick start".</summary>
    private static (string Code, string Json) QuickStart()
    {
        var readme = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "docs", "README.md"));
        var start = readme.IndexOf("## Quick start", StringComparison.Ordinal);
        Assert.True(start >= 0, "README.md has no '## Quick start' section.");
        var section = readme[start..];
        var end = section.IndexOf("\n## ", 3, StringComparison.Ordinal);
        if (end > 0) section = section[..end];
        string Block(string language)
        {
            var match = Regex.Match(section, $"```{language}\\n(?<code>.*?)```", RegexOptions.Singleline);
            Assert.True(match.Success, $"The quick start has no ```{language} block.");
            return match.Groups["code"].Value;
        }
        return (Block("csharp"), Block("json"));
    }

    private static MethodInfo Compile(string code)
    {
        // The test's own references stand in for the packages the README names (Konduit.Hosting, Konduit.Postgres,
        // Microsoft.Extensions.Hosting): load them, then reference every assembly of the process and the framework.
        _ = typeof(Host).Assembly;
        _ = typeof(PostgresTaskStore).Assembly;
        _ = typeof(Hosting.IKonduitClient).Assembly;
        _ = typeof(ServiceCollectionServiceExtensions).Assembly;
        var paths = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Concat(AppDomain.CurrentDomain.GetAssemblies().Where(a => !a.IsDynamic && a.Location.Length > 0).Select(a => a.Location))
            .Concat(Directory.GetFiles(AppContext.BaseDirectory, "*.dll"))
            .DistinctBy(Path.GetFileName, StringComparer.OrdinalIgnoreCase);
        var references = paths.Where(IsManaged).Select(p => MetadataReference.CreateFromFile(p)).ToList();

        var parse = new CSharpParseOptions(LanguageVersion.Latest);
        var compilation = CSharpCompilation.Create("ReadmeQuickStart." + Guid.NewGuid().ToString("N")[..8],
            [CSharpSyntaxTree.ParseText(ImplicitUsings, parse), CSharpSyntaxTree.ParseText(code, parse, path: "Program.cs")],
            references,
            new CSharpCompilationOptions(OutputKind.ConsoleApplication, nullableContextOptions: NullableContextOptions.Enable));
        using var image = new MemoryStream();
        var emitted = compilation.Emit(image);
        var errors = emitted.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        Assert.True(emitted.Success, "The README's quick start does not compile:\n" + string.Join("\n", errors));
        var assembly = Assembly.Load(image.ToArray());
        return assembly.EntryPoint!;
    }

    private static bool IsManaged(string path)
    {
        try
        {
            AssemblyName.GetAssemblyName(path);
            return true;
        }
        catch (BadImageFormatException)
        {
            return false;
        }
    }

    /// <summary>
    /// Catches the host the program builds, as EF Core's and ASP.NET Core's tooling do with top-level programs: the
    /// generic host announces "HostBuilt" on the <c>Microsoft.Extensions.Hosting</c> diagnostic listener.
    /// </summary>
    private sealed class HostCapture : IObserver<DiagnosticListener>, IObserver<KeyValuePair<string, object?>>, IDisposable
    {
        private readonly IDisposable _all;
        private readonly List<IDisposable> _subscriptions = [];

        public HostCapture() => _all = DiagnosticListener.AllListeners.Subscribe(this);

        public IHost? Host { get; private set; }

        public void OnNext(DiagnosticListener value)
        {
            if (value.Name == "Microsoft.Extensions.Hosting") lock (_subscriptions) _subscriptions.Add(value.Subscribe(this));
        }

        public void OnNext(KeyValuePair<string, object?> value)
        {
            if (value.Key == "HostBuilt" && value.Value is IHost host) Host ??= host;
        }

        public void OnCompleted() { }

        public void OnError(Exception error) { }

        public void Dispose()
        {
            _all.Dispose();
            lock (_subscriptions) foreach (var s in _subscriptions) s.Dispose();
        }
    }
}
