using System.ComponentModel;
using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using Konduit.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Konduit.Cli.Tests;

/// <summary>
/// docs/configuration.md against the options classes (issue 17): every key the configuration binder binds, for the
/// runtime and for every registered store and event log, has a row with its real default, and no row names a key
/// that does not exist. Keys are found by reflection the way the start-up check finds them.
/// </summary>
public sealed partial class ConfigurationDocsTests
{
    private const string StorePlaceholder = "<Store>";
    private const string QueuePlaceholder = "<queue>";

    [Fact]
    public void Every_key_of_every_options_class_is_documented_with_its_default_and_nothing_else_is()
    {
        var expected = ExpectedKeys();
        var documented = DocumentedKeys();

        var missing = expected.Keys.Except(documented.Keys).Order(StringComparer.Ordinal).ToList();
        var extra = documented.Keys.Except(expected.Keys).Order(StringComparer.Ordinal).ToList();
        Assert.True(missing.Count == 0 && extra.Count == 0,
            $"docs/configuration.md is out of date.\nMissing rows: {string.Join(", ", missing)}\nRows for keys that do not exist: {string.Join(", ", extra)}");

        var wrong = expected
            .Where(e => !DefaultMatches(e.Value, documented[e.Key]))
            .Select(e => $"{e.Key}: documented `{documented[e.Key]}`, code says `{Format(e.Value)}`")
            .ToList();
        Assert.True(wrong.Count == 0, "Wrong defaults in docs/configuration.md:\n" + string.Join("\n", wrong));
    }

    [Fact]
    public void The_timespan_format_the_doc_describes_is_the_one_configuration_binds()
    {
        // "5" is five days, as docs/configuration.md warns; "00:00:30" is thirty seconds.
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["SweepInterval"] = "5",
            ["ShutdownGracePeriod"] = "00:00:30",
            ["EventLogMaintenanceInterval"] = "00:00:00.250",
        }).Build();
        var options = configuration.Get<KonduitOptions>()!;
        Assert.Equal(TimeSpan.FromDays(5), options.SweepInterval);
        Assert.Equal(TimeSpan.FromSeconds(30), options.ShutdownGracePeriod);
        Assert.Equal(TimeSpan.FromMilliseconds(250), options.EventLogMaintenanceInterval);
        Assert.Contains("\"5\"` means five days", File.ReadAllText(DocPath), StringComparison.Ordinal);
    }

    private static string DocPath => Path.Combine(AppContext.BaseDirectory, "docs", "configuration.md");

    /// <summary>Key → default value, for the runtime's options and every component the repository ships.</summary>
    private static Dictionary<string, object?> ExpectedKeys()
    {
        var keys = new Dictionary<string, object?>(StringComparer.Ordinal);
        Walk(keys, "Konduit", typeof(KonduitOptions), new KonduitOptions());

        var services = new ServiceCollection();
        var builder = services.AddKonduitStore(new ConfigurationBuilder().Build().GetSection("Konduit"));
        builder.AddPostgresStore().AddRedisStore().AddPostgresRedisStore().AddInMemoryStore().AddSqliteStore()
            .AddPostgresEventLog().AddCassandraEventLog().AddInMemoryEventLog();
        var registry = KonduitComponentRegistry.Find(services)!;
        Assert.Equal(8, registry.All.Count);
        foreach (var component in registry.All)
        {
            foreach (var type in component.SettingsTypes)
                Walk(keys, $"Konduit:{component.SectionName}", type, Activator.CreateInstance(type));
        }
        return keys;
    }

    private static void Walk(Dictionary<string, object?> keys, string path, Type type, object? defaults)
    {
        foreach (var property in Settings(type))
        {
            // Settings every store shares are documented once, under Konduit:<Store>.
            var prefix = property.DeclaringType == typeof(TaskStoreOptions) ? Regex.Replace(path, "[^:]+$", StorePlaceholder) : path;
            var key = $"{prefix}:{property.Name}";
            var value = defaults is null ? null : property.GetValue(defaults);
            var propertyType = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (IsScalar(propertyType))
            {
                keys[key] = value;
            }
            else if (DictionaryValueType(propertyType) is { } element)
            {
                Walk(keys, $"{key}:{QueuePlaceholder}", element, Activator.CreateInstance(element));
            }
            else
            {
                Walk(keys, key, propertyType, value ?? Activator.CreateInstance(propertyType));
            }
        }
    }

    // What the binder binds: public instance properties it can set, or read-only ones it binds into (as KonduitConfigurationCheck).
    private static IEnumerable<PropertyInfo> Settings(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetIndexParameters().Length == 0 && p.GetMethod is { IsPublic: true }
                        && (p.SetMethod is { IsPublic: true } || !IsScalar(Nullable.GetUnderlyingType(p.PropertyType) ?? p.PropertyType)));

    private static bool IsScalar(Type type) =>
        type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal)
        || TypeDescriptor.GetConverter(type).CanConvertFrom(typeof(string));

    private static Type? DictionaryValueType(Type type) =>
        type.GetInterfaces().Append(type).FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IDictionary<,>))?.GetGenericArguments()[1];

    /// <summary>Key → default cell of every table row of docs/configuration.md.</summary>
    private static Dictionary<string, string> DocumentedKeys()
    {
        var rows = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (Match match in RowPattern().Matches(File.ReadAllText(DocPath)))
            Assert.True(rows.TryAdd(match.Groups["key"].Value, match.Groups["default"].Value), $"{match.Groups["key"].Value} has two rows.");
        Assert.NotEmpty(rows);
        return rows;
    }

    private static bool DefaultMatches(object? value, string documented)
    {
        if (value is double number)
        {
            var parts = documented.Split('/');
            var parsed = parts.Length == 2
                ? double.Parse(parts[0], CultureInfo.InvariantCulture) / double.Parse(parts[1], CultureInfo.InvariantCulture)
                : double.Parse(documented, CultureInfo.InvariantCulture);
            return Math.Abs(parsed - number) < 1e-12;
        }
        if (value is TimeSpan span) return TimeSpan.TryParse(documented, CultureInfo.InvariantCulture, out var doc) && doc == span;
        return Format(value) == documented;
    }

    private static string Format(object? value) => value switch
    {
        null => "(none)",
        bool b => b ? "true" : "false",
        TimeSpan t => t.ToString("c", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    [GeneratedRegex(@"^\| `(?<key>Konduit:[^`]+)` \| `(?<default>[^`]*)` \|", RegexOptions.Multiline)]
    private static partial Regex RowPattern();
}
