using Konduit.Cassandra.Cql;

namespace Konduit.Cassandra.Tests;

/// <summary>The client against a real Cassandra (2.1 from `scripts/services.sh up`: protocol v3).</summary>
public sealed class CassandraIntegrationTests(CassandraFixture fixture) : IClassFixture<CassandraFixture>
{
    private static readonly CqlQueryOptions Ddl = new() { Prepare = false };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private CqlSession Session => fixture.Session;

    private Task CreateTableAsync(string definition) => Session.ExecuteAsync("CREATE TABLE " + definition, null, Ddl, Ct);

    [Fact]
    public async Task Negotiates_the_servers_protocol_version()
    {
        var row = Assert.Single((await Session.ExecuteAsync("SELECT release_version FROM system.local", cancellationToken: Ct)).Rows);
        var release = row.Get<string>("release_version");

        // Cassandra 2.1 refuses a v4 STARTUP; the client falls back to v3. Newer servers keep v4.
        Assert.Equal(release.StartsWith("2.", StringComparison.Ordinal) ? 3 : 4, Session.ProtocolVersion);
    }

    [Fact]
    public async Task Options_lists_the_CQL_version()
    {
        var supported = await Session.GetSupportedOptionsAsync(Ct);
        Assert.NotEmpty(supported["CQL_VERSION"]);
    }

    [Fact]
    public async Task Every_codec_round_trips_through_a_prepared_insert_and_select()
    {
        await CreateTableAsync("""
            codecs (id uuid PRIMARY KEY, t text, a ascii, i int, b bigint, f boolean, bl blob, ts timestamp,
                    tu timeuuid, d double, l list<text>, m map<text, text>)
            """);
        var id = Guid.NewGuid();
        var at = new DateTimeOffset(2024, 2, 29, 23, 59, 58, 999, TimeSpan.Zero);
        var timeUuid = CqlTimeUuid.Create(at);
        await Session.ExecuteAsync(
            "INSERT INTO codecs (id, t, a, i, b, f, bl, ts, tu, d, l, m) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [id, "héllo 日本 🎉", "plain", int.MinValue, long.MaxValue, true, new byte[] { 0, 1, 254, 255 }, at,
                timeUuid, -1.25e-300, new[] { "b", "a", "b" }, new Dictionary<string, string> { ["k1"] = "v1", ["k2"] = "" }],
            cancellationToken: Ct);

        var row = Assert.Single((await Session.ExecuteAsync("SELECT * FROM codecs WHERE id = ?", [id], cancellationToken: Ct)).Rows);

        Assert.Equal(id, row.Get<Guid>("id"));
        Assert.Equal("héllo 日本 🎉", row.Get<string>("t"));
        Assert.Equal("plain", row.Get<string>("a"));
        Assert.Equal(int.MinValue, row.Get<int>("i"));
        Assert.Equal(long.MaxValue, row.Get<long>("b"));
        Assert.True(row.Get<bool>("f"));
        Assert.Equal([0, 1, 254, 255], row.Get<byte[]>("bl"));
        Assert.Equal(at, row.Get<DateTimeOffset>("ts"));
        Assert.Equal(timeUuid, row.Get<Guid>("tu"));
        Assert.Equal(at, CqlTimeUuid.GetTimestamp(row.Get<Guid>("tu")));
        Assert.Equal(-1.25e-300, row.Get<double>("d"));
        Assert.Equal(["b", "a", "b"], row.Get<IReadOnlyList<string>>("l"));
        var map = row.Get<IReadOnlyDictionary<string, string>>("m");
        Assert.Equal(("v1", ""), (map["k1"], map["k2"]));
        Assert.Equal(CqlTypeCode.Timeuuid, row.Columns.Single(c => c.Name == "tu").Type.Code);
        Assert.Equal("map<varchar, varchar>", row.Columns.Single(c => c.Name == "m").Type.ToString());
    }

    [Fact]
    public async Task Nulls_round_trip_for_every_codec()
    {
        await CreateTableAsync("nulls (id uuid PRIMARY KEY, t text, i int, b bigint, f boolean, bl blob, ts timestamp, tu timeuuid, d double, l list<text>, m map<text, text>)");
        var id = Guid.NewGuid();
        await Session.ExecuteAsync("INSERT INTO nulls (id, t, i, b, f, bl, ts, tu, d, l, m) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [id, null, null, null, null, null, null, null, null, null, null], cancellationToken: Ct);

        var row = Assert.Single((await Session.ExecuteAsync("SELECT * FROM nulls WHERE id = ?", [id], cancellationToken: Ct)).Rows);
        foreach (var column in new[] { "t", "i", "b", "f", "bl", "ts", "tu", "d", "l", "m" })
            Assert.True(row.IsNull(column), column);
        Assert.Null(row.Get<int?>("i"));
        Assert.Null(row.Get<string?>("t"));
    }

    [Fact]
    public async Task Counter_columns_use_bigint_encoding()
    {
        await CreateTableAsync("counters (k text PRIMARY KEY, c counter)");
        await Session.ExecuteAsync("UPDATE counters SET c = c + ? WHERE k = ?", [5L, "x"], cancellationToken: Ct);
        await Session.ExecuteAsync("UPDATE counters SET c = c + ? WHERE k = ?", [-2L, "x"], cancellationToken: Ct);
        var row = Assert.Single((await Session.ExecuteAsync("SELECT c FROM counters WHERE k = ?", ["x"], cancellationToken: Ct)).Rows);
        Assert.Equal(3L, row.Get<long>("c"));
    }

    [Fact]
    public async Task Unprepared_queries_bind_values_with_inferred_types()
    {
        await CreateTableAsync("inferred (k text PRIMARY KEY, n bigint, at timestamp, tags list<text>)");
        var at = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_123);
        await Session.ExecuteAsync("INSERT INTO inferred (k, n, at, tags) VALUES (?, ?, ?, ?)", ["a", 42L, at, new[] { "x" }], Ddl, Ct);
        var row = Assert.Single((await Session.ExecuteAsync("SELECT * FROM inferred WHERE k = ?", ["a"], Ddl, Ct)).Rows);
        Assert.Equal((42L, at), (row.Get<long>("n"), row.Get<DateTimeOffset>("at")));
        Assert.Equal(["x"], row.Get<List<string>>("tags"));
    }

    [Fact]
    public async Task Paging_250_rows_with_page_size_50_takes_five_pages_and_streams_them_all()
    {
        await CreateTableAsync("paged (p int, c int, v text, PRIMARY KEY (p, c))");
        // 250 concurrent prepared inserts: many requests in flight on one connection.
        await Task.WhenAll(Enumerable.Range(0, 250).Select(i =>
            Session.ExecuteAsync("INSERT INTO paged (p, c, v) VALUES (?, ?, ?)", [1, i, $"row{i}"], cancellationToken: Ct)));

        const string select = "SELECT c, v FROM paged WHERE p = ?";
        var pageSizes = new List<int>();
        byte[]? pagingState = null;
        do
        {
            var page = await Session.ExecuteAsync(select, [1], new CqlQueryOptions { PageSize = 50, PagingState = pagingState }, Ct);
            pageSizes.Add(page.Rows.Count);
            pagingState = page.PagingState;
        }
        while (pagingState is not null);

        Assert.Equal(250, pageSizes.Sum());
        Assert.All(pageSizes, size => Assert.True(size <= 50));
        Assert.True(pageSizes.Count >= 5, $"pages: {string.Join(",", pageSizes)}");

        var streamed = new List<int>();
        await foreach (var row in Session.QueryAsync(select, [1], new CqlQueryOptions { PageSize = 50 }, Ct))
            streamed.Add(row.Get<int>("c"));
        Assert.Equal(Enumerable.Range(0, 250), streamed);
    }

    [Fact]
    public async Task Logged_and_unlogged_batches_mix_prepared_and_unprepared_statements()
    {
        await CreateTableAsync("batched (k text PRIMARY KEY, n int)");
        var logged = new CqlBatch(CqlBatchType.Logged)
            .Add("INSERT INTO batched (k, n) VALUES (?, ?)", ["a", 1])
            .Add("INSERT INTO batched (k, n) VALUES (?, ?)", ["b", 2], prepare: false)
            .Add("UPDATE batched SET n = ? WHERE k = ?", [3, "c"]);
        var result = await Session.ExecuteBatchAsync(logged, new CqlQueryOptions { SerialConsistency = CqlConsistency.LocalSerial }, Ct);
        Assert.Equal(CqlResultKind.Void, result.Kind);

        var unlogged = new CqlBatch(CqlBatchType.Unlogged)
            .Add("DELETE FROM batched WHERE k = ?", ["a"])
            .Add("INSERT INTO batched (k, n) VALUES (?, ?)", ["d", 4]);
        await Session.ExecuteBatchAsync(unlogged, cancellationToken: Ct);

        var rows = new Dictionary<string, int>();
        await foreach (var row in Session.QueryAsync("SELECT k, n FROM batched", cancellationToken: Ct))
            rows[row.Get<string>("k")] = row.Get<int>("n");
        Assert.Equal(new Dictionary<string, int> { ["b"] = 2, ["c"] = 3, ["d"] = 4 }, rows);
    }

    [Fact]
    public async Task A_syntax_error_is_a_CqlSyntaxException()
    {
        await Assert.ThrowsAsync<CqlSyntaxException>(() => Session.ExecuteAsync("SELEKT * FROM nowhere", null, Ddl, Ct));
    }

    [Fact]
    public async Task An_unknown_table_is_a_CqlInvalidQueryException()
    {
        await Assert.ThrowsAsync<CqlInvalidQueryException>(() => Session.ExecuteAsync("SELECT * FROM no_such_table", cancellationToken: Ct));
    }

    [Fact]
    public async Task Creating_a_table_twice_is_AlreadyExists_naming_keyspace_and_table()
    {
        await CreateTableAsync("twice (k int PRIMARY KEY)");
        var error = await Assert.ThrowsAsync<CqlAlreadyExistsException>(() => CreateTableAsync("twice (k int PRIMARY KEY)"));
        Assert.Equal((fixture.Keyspace, "twice"), (error.Keyspace, error.Table));
    }

    [Fact]
    public async Task Schema_changes_and_use_report_their_result_kinds()
    {
        var created = await Session.ExecuteAsync("CREATE TABLE kinds (k int PRIMARY KEY)", null, Ddl, Ct);
        Assert.Equal(CqlResultKind.SchemaChange, created.Kind);
        Assert.Equal(("CREATED", "TABLE", fixture.Keyspace, "kinds"),
            (created.SchemaChange!.ChangeType, created.SchemaChange.Target, created.SchemaChange.Keyspace, created.SchemaChange.Name));
        var use = await Session.ExecuteAsync("USE " + fixture.Keyspace, null, Ddl, Ct);
        Assert.Equal((CqlResultKind.SetKeyspace, fixture.Keyspace), (use.Kind, use.Keyspace));
    }

    [Fact]
    public async Task An_unknown_prepared_id_gets_UNPREPARED_from_the_server_and_the_session_re_prepares()
    {
        await CreateTableAsync("reprepare (k int PRIMARY KEY, v text)");
        await Session.ExecuteAsync("INSERT INTO reprepare (k, v) VALUES (?, ?)", [1, "one"], cancellationToken: Ct);
        var statement = await Session.PrepareAsync("SELECT v FROM reprepare WHERE k = ?", Ct);
        var realId = statement.Id;

        // The raw server answer to an id it does not know: an UNPREPARED error carrying that id.
        var bogus = Enumerable.Range(1, 16).Select(i => (byte)i).ToArray();
        var connector = await Session.GetConnectorAsync(Ct);
        var frame = await connector.SendAsync(CqlOpcode.Execute,
            CqlRequests.Execute(bogus, new CqlQueryParameters(CqlConsistency.One, [CqlValue.Of([0, 0, 0, 1])]), connector.Version),
            TimeSpan.FromSeconds(10), Ct);
        var error = Assert.Throws<CqlUnpreparedException>(() => CqlResponses.Expect(frame, CqlOpcode.Result, out _));
        Assert.Equal(bogus, error.PreparedId);

        // The session recovers by itself: as if the node had been restarted and forgotten the statement.
        statement.Id = bogus;
        var row = Assert.Single((await Session.ExecuteAsync(statement, [1], cancellationToken: Ct)).Rows);
        Assert.Equal("one", row.Get<string>("v"));
        Assert.Equal(realId, statement.Id);
    }

    [Fact]
    public async Task Unset_values_are_refused_on_a_v3_connection()
    {
        await CreateTableAsync("unset (k int PRIMARY KEY, v text)");
        if (Session.ProtocolVersion >= 4)
        {
            await Session.ExecuteAsync("INSERT INTO unset (k, v) VALUES (?, ?)", [1, CqlUnset.Value], cancellationToken: Ct);
            return;
        }
        await Assert.ThrowsAsync<ArgumentException>(() =>
            Session.ExecuteAsync("INSERT INTO unset (k, v) VALUES (?, ?)", [1, CqlUnset.Value], cancellationToken: Ct));
    }

    [Fact]
    public async Task After_the_connection_breaks_the_next_call_reconnects()
    {
        await using var session = new CqlSession(fixture.NewOptions(fixture.Keyspace));
        var first = await session.GetConnectorAsync(Ct);
        await first.DisposeAsync();

        var row = Assert.Single((await session.ExecuteAsync("SELECT release_version FROM system.local", cancellationToken: Ct)).Rows);

        Assert.NotNull(row.Get<string>(0));
        Assert.NotSame(first, await session.GetConnectorAsync(Ct));
    }
}
