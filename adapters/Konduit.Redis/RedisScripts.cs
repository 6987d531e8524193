using System.Security.Cryptography;
using System.Text;

namespace Konduit.Redis;

/// <summary>
/// The store's Lua scripts, loaded once from the embedded <c>RedisScripts.lua</c> (<c>-- name: X</c> blocks, each
/// prefixed with the <c>Common</c> block). Scripts are invoked by SHA1 (<c>EVALSHA</c>); see
/// <see cref="RedisTaskStore"/> for the <c>NOSCRIPT</c> reload.
/// </summary>
internal sealed class RedisScripts
{
    public static RedisScripts Instance { get; } = Load();

    private RedisScripts(IReadOnlyDictionary<string, RedisScript> all)
    {
        All = all;
        Enqueue = all[nameof(Enqueue)];
        Lease = all[nameof(Lease)];
        Heartbeat = all[nameof(Heartbeat)];
        HeartbeatMany = all[nameof(HeartbeatMany)];
        Complete = all[nameof(Complete)];
        CompleteAndLease = all[nameof(CompleteAndLease)];
        Fail = all[nameof(Fail)];
        Reclaim = all[nameof(Reclaim)];
        ExpireLease = all[nameof(ExpireLease)];
        Cancel = all[nameof(Cancel)];
        Redrive = all[nameof(Redrive)];
        LoadTasks = all["Load"];
        Purge = all[nameof(Purge)];
        Stats = all[nameof(Stats)];
    }

    /// <summary>Every script by name (the test checks each one is used and compiles).</summary>
    public IReadOnlyDictionary<string, RedisScript> All { get; }

    public RedisScript Enqueue { get; }
    public RedisScript Lease { get; }
    public RedisScript Heartbeat { get; }
    public RedisScript HeartbeatMany { get; }
    public RedisScript Complete { get; }
    public RedisScript CompleteAndLease { get; }
    public RedisScript Fail { get; }
    public RedisScript Reclaim { get; }
    public RedisScript ExpireLease { get; }
    public RedisScript Cancel { get; }
    public RedisScript Redrive { get; }
    public RedisScript LoadTasks { get; }
    public RedisScript Purge { get; }
    public RedisScript Stats { get; }

    /// <summary>Splits the resource into named blocks (text before the first block is a header comment).</summary>
    internal static IReadOnlyDictionary<string, string> ParseBlocks(string text)
    {
        var blocks = new Dictionary<string, string>(StringComparer.Ordinal);
        string? name = null;
        var body = new StringBuilder();
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith("-- name: ", StringComparison.Ordinal))
            {
                if (name is not null) blocks.Add(name, body.ToString());
                name = line["-- name: ".Length..].Trim();
                body.Clear();
                continue;
            }
            if (name is not null) body.Append(line).Append('\n');
        }
        if (name is not null) blocks.Add(name, body.ToString());
        return blocks;
    }

    private static RedisScripts Load()
    {
        using var stream = typeof(RedisScripts).Assembly.GetManifestResourceStream("Konduit.Redis.RedisScripts.lua")
            ?? throw new InvalidOperationException("Embedded resource Konduit.Redis.RedisScripts.lua is missing.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var blocks = ParseBlocks(reader.ReadToEnd());
        var common = blocks["Common"];
        var scripts = blocks
            .Where(b => b.Key != "Common")
            .ToDictionary(b => b.Key, b => new RedisScript(b.Key, common + b.Value), StringComparer.Ordinal);
        return new RedisScripts(scripts);
    }
}

/// <summary>One script: its text and the SHA1 that <c>EVALSHA</c> names it by.</summary>
internal sealed class RedisScript
{
    public RedisScript(string name, string text)
    {
        Name = name;
        Text = text;
#pragma warning disable CA5350 // SHA1 is what Redis names scripts by; not a security use.
        Sha1Bytes = SHA1.HashData(Encoding.UTF8.GetBytes(text));
        Sha1 = Convert.ToHexStringLower(Sha1Bytes);
#pragma warning restore CA5350
    }

    public string Name { get; }
    public string Text { get; }
    public string Sha1 { get; }

    /// <summary>The SHA1 as bytes (what <c>ScriptEvaluateAsync</c> sends as <c>EVALSHA</c>'s hex argument).</summary>
#pragma warning disable CA1819 // Internal, read-only by convention; avoids a copy per call.
    public byte[] Sha1Bytes { get; }
#pragma warning restore CA1819
}
