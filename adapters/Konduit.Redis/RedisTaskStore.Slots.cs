using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using StackExchange.Redis;

namespace Konduit.Redis;

// Finding a task's queue by id without a store-wide key (issue 16, ADR 004 "Finding a task by id"): the id carries
// its queue's hash slot in its last 14 bits, and an id -> queue hash per slot lives under a base that hashes to that
// same slot, so enqueue and purge keep it in the queue's own script and a lookup goes to the queue's node.
public sealed partial class RedisTaskStore
{
    /// <summary>Redis Cluster's number of hash slots.</summary>
    internal const int SlotCount = 16384;

    private readonly ConcurrentDictionary<string, int> _queueSlots = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<int, RedisKey> _idBases = new();

    /// <summary>The hash slot of <paramref name="queue"/>'s keys (of its hash tag <c>prefix:queue</c>).</summary>
    internal int QueueSlot(string queue) => _queueSlots.GetOrAdd(queue, static (q, prefix) => HashSlot(prefix + ":" + q), _prefix);

    /// <summary>
    /// The base <c>{prefix#n}</c> of the id map of <paramref name="slot"/>: the smallest n whose tag hashes to that slot
    /// (found by trying n = 0, 1, …: about 16k CRCs, once per slot and process). '#' cannot occur in a queue name, so
    /// the base never names a queue.
    /// </summary>
    internal RedisKey IdsBase(int slot) => _idBases.GetOrAdd(slot, static (s, prefix) =>
    {
        for (var n = 0; ; n++)
        {
            var tag = prefix + "#" + n.ToString(CultureInfo.InvariantCulture);
            if (HashSlot(tag) == s) return "{" + tag + "}";
        }
    }, _prefix);

    /// <summary>The key of the id -> queue hash of the tasks whose ids carry <paramref name="slot"/>.</summary>
    internal RedisKey IdsKey(int slot) => IdsBase(slot).Append(":ids");

    /// <summary>A new task id for <paramref name="queue"/>: time-ordered, with the queue's slot in its last 14 bits.</summary>
    internal Guid NewTaskId(string queue) => WithSlot(TaskIdGenerator.NewId(), QueueSlot(queue));

    /// <summary><paramref name="id"/> with its last 14 bits (random bits of a UUIDv7) replaced by <paramref name="slot"/>.</summary>
    internal static Guid WithSlot(Guid id, int slot)
    {
        Span<byte> bytes = stackalloc byte[16];
        id.TryWriteBytes(bytes, bigEndian: true, out _);
        bytes[14] = (byte)((bytes[14] & 0xC0) | (slot >> 8));
        bytes[15] = (byte)slot;
        return new Guid(bytes, bigEndian: true);
    }

    /// <summary>The slot an id carries (any Guid yields one; an id this store never made finds nothing there).</summary>
    internal static int SlotOf(Guid id)
    {
        Span<byte> bytes = stackalloc byte[16];
        id.TryWriteBytes(bytes, bigEndian: true, out _);
        return ((bytes[14] & 0x3F) << 8) | bytes[15];
    }

    /// <summary>Redis Cluster's key slot of a hash tag: CRC16 (XMODEM) of its bytes, mod 16384.</summary>
    internal static int HashSlot(string tag)
    {
        var bytes = Encoding.UTF8.GetBytes(tag);
        ushort crc = 0;
        foreach (var b in bytes)
        {
            crc ^= (ushort)(b << 8);
            for (var i = 0; i < 8; i++) crc = (crc & 0x8000) != 0 ? (ushort)((crc << 1) ^ 0x1021) : (ushort)(crc << 1);
        }
        return crc % SlotCount;
    }
}
