using StackExchange.Redis;

namespace Konduit.Redis;

// Query (secondary indexes read newest first, keyset-paged by id, merged across sets and queues), stats (per-queue counters) and purge.
public sealed partial class RedisTaskStore
{
    private const int PurgeLimit = 500;
    private const int QueryChunk = 128;
    private static readonly string[] AllStateSets = [":sl", ":s2", ":s3", ":s4"];

    /// <summary>The query index (lex zset of ids) holding the tasks of a state: <c>:sl</c> for Pending and Running.</summary>
    private static string StateSetSuffix(TaskState state) => state is TaskState.Pending or TaskState.Running ? ":sl" : ":s" + (int)state;

    /// <inheritdoc />
    public async Task<TaskPage> QueryAsync(TaskQuery filter, PageRequest? page = null, CancellationToken cancellationToken = default)
    {
        try
        {
            TaskValidation.ValidateQuery(filter, page);
            page ??= PageRequest.First;
            cancellationToken.ThrowIfCancellationRequested();
            var db = await DatabaseAsync().ConfigureAwait(false);
            IEnumerable<string> queues = filter.Queue is { } only
                ? [only]
                : (await db.SetMembersAsync(_queuesKey).ConfigureAwait(false)).Select(q => (string)q!);
            var states = filter.States is { Count: > 0 } s ? s.Distinct().ToArray() : null;

            // The most selective secondary index per queue (state sets, else the tenant's set, else every state set), each read
            // newest first below the cursor; merged by id across queues and states.
            // A finish-time bound matches terminal tasks only: the live set (Pending and Running) cannot hold a match.
            var finishedOnly = filter.FinishedFrom is not null || filter.FinishedTo is not null;
            var sources = new List<IdSource>();
            foreach (var queue in queues)
            {
                var b = QueueBase(queue);
                // Pending and Running share one set (a lease moves no index entry); the loaded state is filtered below.
                if (states is not null)
                {
                    foreach (var suffix in states.Where(st => !finishedOnly || st.IsTerminal()).Select(StateSetSuffix).Distinct())
                        sources.Add(new IdSource(queue, b.Append(suffix)));
                }
                else if (filter.Tenant is { } tenant) sources.Add(new IdSource(queue, b.Append(":n:" + tenant)));
                else
                {
                    foreach (var suffix in AllStateSets.Where(suffix => !finishedOnly || suffix != ":sl"))
                        sources.Add(new IdSource(queue, b.Append(suffix)));
                }
            }
            var cursor = page.After is { } after ? Hex(after) : null;
            foreach (var source in sources) source.Cursor = cursor;

            var items = new List<TaskSnapshot>(page.Limit + 1);
            while (items.Count <= page.Limit)
            {
                cancellationToken.ThrowIfCancellationRequested();
                // Take the next ids in global (descending) order, then load them per queue in one script each.
                var want = page.Limit + 1 - items.Count;
                var next = new List<(string Queue, string Id)>(want);
                while (next.Count < want)
                {
                    IdSource? best = null;
                    foreach (var source in sources)
                    {
                        if (!await source.EnsureAsync(db).ConfigureAwait(false)) continue;
                        if (best is null || string.CompareOrdinal(source.Head, best.Head) > 0) best = source;
                    }
                    if (best is null) break;
                    var id = best.Take();
                    // The same id can head two state sources only if it moved between reads: take it once.
                    foreach (var source in sources)
                        if (source != best && source.HasHead && source.Head == id) source.Take();
                    next.Add((best.Queue, id));
                }
                if (next.Count == 0) break;
                var loaded = new Dictionary<string, TaskSnapshot?>(StringComparer.Ordinal);
                foreach (var group in next.GroupBy(n => n.Queue, StringComparer.Ordinal))
                {
                    var ids = group.Select(g => g.Id).ToArray();
                    var snapshots = await LoadAsync(db, group.Key, ids).ConfigureAwait(false);
                    for (var i = 0; i < ids.Length; i++) loaded[ids[i]] = snapshots[i];
                }
                foreach (var (_, id) in next)
                {
                    if (loaded[id] is not { } task) continue;
                    if (states is not null && !states.Contains(task.State)) continue;
                    if (filter.Tenant is not null && !string.Equals(task.Tenant, filter.Tenant, StringComparison.Ordinal)) continue;
                    if (filter.EnqueuedFrom is { } from && task.EnqueuedAt < from) continue;
                    if (filter.EnqueuedTo is { } to && task.EnqueuedAt >= to) continue;
                    if (filter.FinishedFrom is { } finishedFrom && !(task.FinishedAt >= finishedFrom)) continue;
                    if (filter.FinishedTo is { } finishedTo && !(task.FinishedAt < finishedTo)) continue;
                    items.Add(task);
                }
            }
            var hasMore = items.Count > page.Limit;
            if (hasMore) items.RemoveAt(items.Count - 1);
            return new TaskPage(items, hasMore ? items[^1].Id : null);
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw Unavailable("query", ex);
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<QueueStats>> GetStatsAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            var db = await DatabaseAsync().ConfigureAwait(false);
            var queues = (await db.SetMembersAsync(_queuesKey).ConfigureAwait(false)).Select(q => (string)q!).ToArray();
            // One read-only script per queue (its slot), all in flight at once.
            var replies = await Task.WhenAll(queues.Select(q => EvalAsync(db, _scripts.Stats, q, []))).ConfigureAwait(false);
            var stats = new List<QueueStats>(queues.Length);
            for (var i = 0; i < queues.Length; i++)
            {
                var c = (RedisResult[])replies[i]!;
                var scheduled = (long)c[5];
                var s = new QueueStats(queues[i], (long)c[0], (long)c[1], (long)c[2], (long)c[3], (long)c[4])
                {
                    PendingDue = (long)c[0] - scheduled,
                    PendingScheduled = scheduled,
                    OldestDueAt = OptionalTime((string?)c[6]),
                };
                if (s.Total > 0) stats.Add(s);
            }
            stats.Sort((a, b) => string.CompareOrdinal(a.Queue, b.Queue));
            return stats;
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw Unavailable("stats", ex);
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// Queue by queue, a bounded batch per script (atomic in the queue's slot, so a task is reported by exactly one
    /// call even when purges race); the script also removes the deleted tasks' id -> queue entries. Completed tasks
    /// have no finish-time index: each call walks up to 500 of the queue's Completed ids from the cursor the previous
    /// call returned, up to where ids pass the cutoff (ADR 004, "Purging Completed tasks").
    /// </remarks>
    public async Task<IReadOnlyList<PurgedTask>> PurgeAsync(TimeSpan olderThan, IReadOnlyCollection<TaskState>? states = null, string? queue = null, CancellationToken cancellationToken = default)
    {
        try
        {
            var purgeStates = TaskValidation.ValidatePurge(olderThan, states, queue);
            cancellationToken.ThrowIfCancellationRequested();
            var db = await DatabaseAsync().ConfigureAwait(false);
            var queues = queue is not null
                ? [queue]
                : (await db.SetMembersAsync(_queuesKey).ConfigureAwait(false)).Select(q => (string)q!).ToArray();
            // ARGV[3] is the cursor of the walk over Completed ids: '' starts it, each reply gives the next.
            var args = new List<RedisValue> { Micros(olderThan), PurgeLimit, "" };
            args.AddRange(purgeStates.Distinct().Select(s => (RedisValue)(int)s));
            var deleted = new List<PurgedTask>();
            foreach (var q in queues)
            {
                args[2] = "";
                while (true)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var reply = (RedisResult[])(await EvalAsync(db, _scripts.Purge, [QueueBase(q), IdsBase(QueueSlot(q))], [.. args]).ConfigureAwait(false))!;
                    var cursor = (string?)reply[2] ?? "";
                    var remaining = (long)reply[0];
                    var rows = (RedisResult[])reply[1]!;
                    var batch = new RedisValue[rows.Length / 3];
                    for (var i = 0; i + 2 < rows.Length; i += 3)
                    {
                        var id = (string)rows[i]!;
                        batch[i / 3] = id;
                        deleted.Add(new PurgedTask(ParseHex(id), q, NullIfEmpty((string?)rows[i + 1]), (TaskState)(int)rows[i + 2]));
                    }
                    if (remaining == 0)
                    {
                        // The queue is empty: drop it from the registry, then re-add it if an enqueue raced in (an
                        // enqueue also registers its queue again after its script, ADR 004).
                        await db.SetRemoveAsync(_queuesKey, q).ConfigureAwait(false);
                        if (await db.KeyExistsAsync(QueueBase(q).Append(":c")).ConfigureAwait(false))
                            await db.SetAddAsync(_queuesKey, q).ConfigureAwait(false);
                    }
                    if (batch.Length < PurgeLimit && cursor.Length == 0) break;
                    args[2] = cursor;
                }
            }
            return deleted;
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw Unavailable("purge", ex);
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// The flag is a key in the queue's own slot (<c>{prefix:queue}:paused</c>), read by the lease script: no store-wide
    /// key on the lease path. The list of paused queues (<c>{prefix}:paused</c>, read only by
    /// <see cref="GetPausedQueuesAsync"/>) is written first, so it always holds every paused queue.
    /// </remarks>
    public async Task PauseQueueAsync(string queue, CancellationToken cancellationToken = default)
    {
        try
        {
            TaskValidation.ValidateQueue(queue);
            cancellationToken.ThrowIfCancellationRequested();
            var db = await DatabaseAsync().ConfigureAwait(false);
            await db.SetAddAsync(_pausedKey, queue).ConfigureAwait(false);
            await db.StringSetAsync(QueueBase(queue).Append(":paused"), 1).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw Unavailable("pause queue", ex);
        }
    }

    /// <inheritdoc />
    public async Task ResumeQueueAsync(string queue, CancellationToken cancellationToken = default)
    {
        try
        {
            TaskValidation.ValidateQueue(queue);
            cancellationToken.ThrowIfCancellationRequested();
            var db = await DatabaseAsync().ConfigureAwait(false);
            var flag = QueueBase(queue).Append(":paused");
            if (await db.KeyDeleteAsync(flag).ConfigureAwait(false))
                await db.PublishAsync(RedisChannel.Literal(_wakeChannel), queue).ConfigureAwait(false);
            await db.SetRemoveAsync(_pausedKey, queue).ConfigureAwait(false);
            // A pause that raced in after the delete has set its flag again: keep it listed.
            if (await db.KeyExistsAsync(flag).ConfigureAwait(false)) await db.SetAddAsync(_pausedKey, queue).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw Unavailable("resume queue", ex);
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyCollection<string>> GetPausedQueuesAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            var db = await DatabaseAsync().ConfigureAwait(false);
            var listed = (await db.SetMembersAsync(_pausedKey).ConfigureAwait(false)).Select(q => (string)q!).ToArray();
            // The flags decide (the list may name a queue whose resume is half done).
            var flags = await Task.WhenAll(listed.Select(q => db.KeyExistsAsync(QueueBase(q).Append(":paused")))).ConfigureAwait(false);
            var paused = listed.Where((_, i) => flags[i]).ToList();
            paused.Sort(StringComparer.Ordinal);
            return paused;
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw Unavailable("paused queues", ex);
        }
    }

    /// <summary>One secondary index read newest first, below a cursor, a chunk at a time.</summary>
    private sealed class IdSource(string queue, RedisKey key)
    {
        private readonly Queue<string> _buffer = new();
        private bool _exhausted;

        public string Queue { get; } = queue;
        public string? Cursor { get; set; }
        public bool HasHead => _buffer.Count > 0;
        public string Head => _buffer.Peek();

        public string Take() => _buffer.Dequeue();

        public async Task<bool> EnsureAsync(IDatabase db)
        {
            if (_buffer.Count > 0) return true;
            if (_exhausted) return false;
            var max = Cursor is null ? "+" : "(" + Cursor;
            var reply = (RedisResult[])(await db.ExecuteAsync("ZRANGE", key, max, "-", "BYLEX", "REV", "LIMIT", 0, QueryChunk).ConfigureAwait(false))!;
            foreach (var member in reply) _buffer.Enqueue((string)member!);
            if (reply.Length < QueryChunk) _exhausted = true;
            if (reply.Length > 0) Cursor = (string)reply[^1]!;
            return _buffer.Count > 0;
        }
    }
}
