using System.Globalization;
using System.Text;

namespace Konduit.Redis;

/// <summary>
/// The task hash's packed field <c>i</c> (issue 16, ADR 004 "Packed immutable fields"): everything that never changes
/// after enqueue, so a lease reads one field instead of five and the hash has fewer entries to scan.
/// Layout: <c>&lt;created µs&gt;,&lt;max&gt;,&lt;#tenant&gt;,&lt;tenant&gt;&lt;#headers&gt;,&lt;headers JSON&gt;&lt;retry&gt;</c>, where
/// <c>#</c> is a UTF-8 byte length (what Lua's <c>#</c> and <c>string.sub</c> count) and retry is
/// <see cref="WriteRetry"/>'s compact form, or JSON when the lease script built the pack from a hash written before
/// the pack (<see cref="RedisJson.WriteRetryPolicy"/>), or empty. The enqueue script prepends the created time.
/// </summary>
internal static class RedisPack
{
    /// <summary>The client's part of the pack: everything after the created time and its comma.</summary>
    public static string WriteTail(int maxAttempts, string? tenant, string headersJson, RetryPolicy? retry)
    {
        tenant ??= "";
        return string.Create(CultureInfo.InvariantCulture,
            $"{maxAttempts},{Encoding.UTF8.GetByteCount(tenant)},{tenant}{Encoding.UTF8.GetByteCount(headersJson)},{headersJson}{WriteRetry(retry)}");
    }

    /// <summary>Reads a whole pack (as the lease and load scripts return it).</summary>
    public static Fields Read(ReadOnlySpan<byte> pack)
    {
        var pos = 0;
        var created = Number(pack, ref pos);
        var max = (int)Number(pack, ref pos);
        var tenantLength = (int)Number(pack, ref pos);
        var tenant = Encoding.UTF8.GetString(pack.Slice(pos, tenantLength));
        pos += tenantLength;
        var headersLength = (int)Number(pack, ref pos);
        var headers = Encoding.UTF8.GetString(pack.Slice(pos, headersLength));
        pos += headersLength;
        return new Fields(created, max, tenant.Length == 0 ? null : tenant, headers, Encoding.UTF8.GetString(pack[pos..]));
    }

    /// <summary>A retry policy as <c>initial ticks:max ticks:multiplier:jitter</c> (exact: ticks and round-trip doubles), or "".</summary>
    public static string WriteRetry(RetryPolicy? policy) => policy is null
        ? ""
        : string.Create(CultureInfo.InvariantCulture,
            $"{policy.InitialDelay.Ticks}:{policy.MaxDelay.Ticks}:{policy.Multiplier:R}:{policy.Jitter:R}");

    /// <summary>Reads <see cref="WriteRetry"/>'s form, the JSON of a hash from before the pack, or "" (none).</summary>
    public static RetryPolicy? ReadRetry(string? value)
    {
        if (string.IsNullOrEmpty(value)) return null;
        if (value[0] == '{') return RedisJson.ReadRetryPolicy(value);
        var parts = value.Split(':');
        return new RetryPolicy
        {
            InitialDelay = TimeSpan.FromTicks(long.Parse(parts[0], CultureInfo.InvariantCulture)),
            MaxDelay = TimeSpan.FromTicks(long.Parse(parts[1], CultureInfo.InvariantCulture)),
            Multiplier = double.Parse(parts[2], CultureInfo.InvariantCulture),
            Jitter = double.Parse(parts[3], CultureInfo.InvariantCulture),
        };
    }

    // Digits up to the next ',' (which is skipped).
    private static long Number(ReadOnlySpan<byte> pack, ref int pos)
    {
        long value = 0;
        while (pack[pos] != (byte)',') value = (value * 10) + (pack[pos++] - (byte)'0');
        pos++;
        return value;
    }

    /// <summary>The unpacked fields; <see cref="HeadersJson"/> and <see cref="Retry"/> are "" when absent.</summary>
    public readonly record struct Fields(long CreatedMicros, int MaxAttempts, string? Tenant, string HeadersJson, string Retry);
}
