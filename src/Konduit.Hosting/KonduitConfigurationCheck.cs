using System.Collections;
using System.ComponentModel;
using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace Konduit.Hosting;

/// <summary>
/// Checks the Konduit section before it is bound (issue 13, item 9): every key must be a setting of
/// <see cref="KonduitOptions"/> or lie in the section of a component, and every value must convert to its
/// setting's type. The configuration binder cannot be trusted with either: it ignores unknown keys and, inside
/// dictionaries such as <c>Queues</c>, swallows a conversion error by dropping the whole entry. Each failure names
/// its full key.
/// </summary>
internal static class KonduitConfigurationCheck
{
    public static List<string> Run(KonduitRegistry registry)
    {
        var failures = new List<string>();
        IReadOnlyList<KonduitComponentAttribute>? available = null;
        foreach (var child in registry.Configuration.GetChildren())
        {
            if (FindSetting([typeof(KonduitOptions)], child.Key) is { } setting)
            {
                CheckValue(child, setting.PropertyType, failures);
                continue;
            }
            var components = registry.Components.All.Where(c => string.Equals(c.SectionName, child.Key, StringComparison.OrdinalIgnoreCase)).ToList();
            if (components.Count > 0)
            {
                CheckSection(child, [.. components.SelectMany(c => c.SettingsTypes).Distinct()], failures);
                continue;
            }
            // The section of a component the application ships but did not register (not selected): allowed, so
            // that a configuration file can hold the settings of stores it may switch to. Found only when needed.
            available ??= KonduitComponentDiscovery.Available();
            if (available.Any(a => KonduitComponentHost.Kinds.Any(k => string.Equals(k.Key, a.Kind, StringComparison.OrdinalIgnoreCase)
                    && string.Equals(k.SectionName(a.Name), child.Key, StringComparison.OrdinalIgnoreCase))))
                continue;
            var known = typeof(KonduitOptions).GetProperties().Select(p => p.Name)
                .Concat(registry.Components.All.Select(c => c.SectionName));
            failures.Add($"{child.Path} is not a Konduit setting nor the section of a registered component{Suggest(child.Key, known)}.");
        }
        return failures;
    }

    private static void CheckSection(IConfigurationSection section, IReadOnlyList<Type> types, List<string> failures)
    {
        foreach (var child in section.GetChildren())
        {
            if (FindSetting(types, child.Key) is { } setting)
                CheckValue(child, setting.PropertyType, failures);
            else
                failures.Add($"{child.Path} is not a known setting{Suggest(child.Key, types.SelectMany(Settings).Select(p => p.Name))}.");
        }
    }

    private static void CheckValue(IConfigurationSection section, Type type, List<string> failures)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (IsScalar(type))
        {
            if (section.Value is null)
            {
                if (section.GetChildren().Any()) failures.Add($"{section.Path} must be a single value ({Describe(type)}), not a section.");
                return;
            }
            // The binder leaves a setting at its default for an empty value.
            if (section.Value.Length == 0) return;
            try
            {
                TypeDescriptor.GetConverter(type).ConvertFromInvariantString(section.Value);
            }
#pragma warning disable CA1031 // Converters throw anything (FormatException, OverflowException, ArgumentException, …): each is a bad value.
            catch (Exception)
#pragma warning restore CA1031
            {
                failures.Add($"{section.Path} = '{section.Value}' is not a valid {Describe(type)}.");
            }
            return;
        }
        if (type == typeof(object) || typeof(IConfiguration).IsAssignableFrom(type)) return;
        if (ElementType(type) is { } element)
        {
            foreach (var child in section.GetChildren()) CheckValue(child, element, failures);
            return;
        }
        CheckSection(section, [type], failures);
    }

    private static PropertyInfo? FindSetting(IReadOnlyList<Type> types, string key) =>
        types.SelectMany(Settings).FirstOrDefault(p => string.Equals(p.Name, key, StringComparison.OrdinalIgnoreCase));

    // What the binder binds: public instance properties it can set, or read-only ones it binds into (collections, objects).
    private static IEnumerable<PropertyInfo> Settings(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetIndexParameters().Length == 0 && p.GetMethod is { IsPublic: true }
                        && (p.SetMethod is { IsPublic: true } || !IsScalar(Nullable.GetUnderlyingType(p.PropertyType) ?? p.PropertyType)));

    private static bool IsScalar(Type type) =>
        type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal)
        || TypeDescriptor.GetConverter(type).CanConvertFrom(typeof(string));

    private static Type? ElementType(Type type)
    {
        if (type.IsArray) return type.GetElementType();
        var dictionary = type.GetInterfaces().Append(type).FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IDictionary<,>));
        if (dictionary is not null) return dictionary.GetGenericArguments()[1];
        var enumerable = type.GetInterfaces().Append(type).FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEnumerable<>));
        return enumerable is not null && typeof(IEnumerable).IsAssignableFrom(type) ? enumerable.GetGenericArguments()[0] : null;
    }

    private static string Describe(Type type) =>
        type == typeof(TimeSpan) ? "duration (e.g. 00:00:30)"
        : type == typeof(bool) ? "boolean (true or false)"
        : type.IsEnum ? $"{type.Name} ({string.Join(", ", Enum.GetNames(type))})"
        : type == typeof(int) || type == typeof(long) ? "whole number"
        : type == typeof(double) || type == typeof(decimal) ? "number"
        : type.Name;

    private static string Suggest(string key, IEnumerable<string> known)
    {
        var best = known.Distinct(StringComparer.OrdinalIgnoreCase)
            .Select(k => (Name: k, Distance: Distance(key.ToUpperInvariant(), k.ToUpperInvariant())))
            .Where(c => c.Distance <= Math.Max(1, key.Length / 4))
            .OrderBy(c => c.Distance)
            .FirstOrDefault();
        return best.Name is null ? "" : $" (did you mean '{best.Name}'?)";
    }

    private static int Distance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++) previous[j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }
}
