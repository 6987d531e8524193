using Konduit.Cassandra.Cql;

namespace Konduit.Cassandra.Tests;

/// <summary>The session against an in-process fake server: multiplexing, failure, reconnection, negotiation,
/// authentication and re-preparation. Responses are gated on what the server has received, never on time.</summary>
public sealed class ConnectionTests
{
    private static readonly CqlQueryOptions Unprepared = new() { Prepare = false };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Concurrent_requests_use_distinct_streams_and_get_their_own_out_of_order_answers()
    {
        const int count = 5;
        var held = new List<(FakeConnection Connection, CqlFrame Request)>();
        var allArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new FakeCqlServer(async (connection, request) =>
        {
            if (request.Header.Opcode != CqlOpcode.Query)
            {
                await FakeCqlServer.DefaultHandler(connection, request);
                return;
            }
            lock (held)
            {
                held.Add((connection, request));
                if (held.Count == count)
                    allArrived.SetResult();
            }
        });
        await using var session = new CqlSession(server.Options());
        await session.ConnectAsync(Ct);

        var calls = Enumerable.Range(0, count).Select(i => session.ExecuteAsync($"USE ks{i}", null, Unprepared, Ct)).ToArray();
        await allArrived.Task.WaitAsync(Ct);
        Assert.Equal(count, held.Select(h => h.Request.Header.Stream).Distinct().Count());
        foreach (var (connection, request) in Enumerable.Reverse(held))
        {
            var keyspace = FakeBodies.LongStringBody(request)["USE ".Length..];
            await connection.ReplyAsync(request, CqlOpcode.Result, FakeBodies.SetKeyspace(keyspace));
        }

        var results = await Task.WhenAll(calls);
        Assert.Equal(Enumerable.Range(0, count).Select(i => $"ks{i}"), results.Select(r => r.Keyspace));
        Assert.Equal(1, server.ConnectionCount);
    }

    [Fact]
    public async Task A_broken_connection_fails_every_request_in_flight_and_the_next_call_reconnects()
    {
        var arrived = 0;
        var twoInFlight = new TaskCompletionSource<FakeConnection>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new FakeCqlServer(async (connection, request) =>
        {
            if (request.Header.Opcode == CqlOpcode.Query && Interlocked.Increment(ref arrived) <= 2)
            {
                if (arrived == 2)
                    twoInFlight.SetResult(connection);
                return; // held: never answered
            }
            await FakeCqlServer.DefaultHandler(connection, request);
        });
        await using var session = new CqlSession(server.Options());

        var first = session.ExecuteAsync("SELECT 1", null, Unprepared, Ct);
        var second = session.ExecuteAsync("SELECT 2", null, Unprepared, Ct);
        (await twoInFlight.Task.WaitAsync(Ct)).Abort();

        await Assert.ThrowsAsync<CqlConnectionException>(() => first);
        await Assert.ThrowsAsync<CqlConnectionException>(() => second);

        var after = await session.ExecuteAsync("SELECT 3", null, Unprepared, Ct);
        Assert.Equal(CqlResultKind.Void, after.Kind);
        Assert.Equal(2, server.ConnectionCount);
    }

    /// <summary>What Cassandra 2.1 does with a v4 STARTUP: an ERROR framed as v3 (0x83), code 0x0000, then it hangs up.</summary>
    private static async Task RefuseV4(FakeConnection connection, CqlFrame request)
    {
        if (request.Header.Opcode == CqlOpcode.Startup && request.Header.ProtocolVersion == 4)
        {
            await connection.SendAsync(0x83, request.Header.Stream, CqlOpcode.Error,
                FakeBodies.Error(CqlErrorCode.ServerError, "Invalid or unsupported protocol version: 4"));
            connection.Abort();
            return;
        }
        await FakeCqlServer.DefaultHandler(connection, request);
    }

    [Fact]
    public async Task Server_refusing_v4_startup_gets_a_v3_connection()
    {
        await using var server = new FakeCqlServer(RefuseV4);
        await using var session = new CqlSession(server.Options());

        await session.ConnectAsync(Ct);

        Assert.Equal(3, session.ProtocolVersion);
        Assert.Equal(2, server.ConnectionCount);
        var result = await session.ExecuteAsync("SELECT 1", null, Unprepared, Ct);
        Assert.Equal(CqlResultKind.Void, result.Kind);
    }

    [Fact]
    public async Task A_reconnect_offers_the_version_negotiated_before()
    {
        await using var server = new FakeCqlServer(RefuseV4);
        await using var session = new CqlSession(server.Options());
        var first = await session.GetConnectorAsync(Ct);
        await first.DisposeAsync();

        await session.ExecuteAsync("SELECT 1", null, Unprepared, Ct);

        Assert.Equal(3, server.ConnectionCount);
        var startups = new List<int>();
        while (server.Received.Reader.TryRead(out var frame))
        {
            if (frame.Header.Opcode == CqlOpcode.Startup)
                startups.Add(frame.Header.ProtocolVersion);
        }
        Assert.Equal([4, 3, 3], startups);
    }

    [Fact]
    public async Task A_protocol_error_on_v4_startup_also_falls_back()
    {
        await using var server = new FakeCqlServer(async (connection, request) =>
        {
            if (request.Header.Opcode == CqlOpcode.Startup && request.Header.ProtocolVersion == 4)
            {
                await connection.ReplyAsync(request, CqlOpcode.Error, FakeBodies.Error(CqlErrorCode.ProtocolError, "Beta version"));
                return;
            }
            await FakeCqlServer.DefaultHandler(connection, request);
        });
        await using var session = new CqlSession(server.Options());
        await session.ConnectAsync(Ct);
        Assert.Equal(3, session.ProtocolVersion);
    }

    [Fact]
    public async Task V4_server_keeps_v4()
    {
        await using var server = new FakeCqlServer();
        await using var session = new CqlSession(server.Options());
        await session.ConnectAsync(Ct);
        Assert.Equal(4, session.ProtocolVersion);
        Assert.Equal(4, (await server.Received.Reader.ReadAsync(Ct)).Header.Version);
    }

    [Fact]
    public async Task Other_startup_errors_are_not_mistaken_for_a_version_refusal()
    {
        await using var server = new FakeCqlServer((connection, request) =>
            connection.ReplyAsync(request, CqlOpcode.Error, FakeBodies.Error(CqlErrorCode.ServerError, "disk full")));
        await using var session = new CqlSession(server.Options());
        var error = await Assert.ThrowsAsync<CqlServerErrorException>(() => session.ConnectAsync(Ct));
        Assert.Equal("disk full", error.Message);
        Assert.Equal(1, server.ConnectionCount);
    }

    [Fact]
    public async Task Password_authenticator_gets_a_SASL_PLAIN_response()
    {
        byte[]? token = null;
        await using var server = new FakeCqlServer(async (connection, request) =>
        {
            switch (request.Header.Opcode)
            {
                case CqlOpcode.Startup:
                    await connection.ReplyAsync(request, CqlOpcode.Authenticate,
                        Bytes.Build(w => w.WriteString("org.apache.cassandra.auth.PasswordAuthenticator")));
                    break;
                case CqlOpcode.AuthResponse:
                    token = new CqlReader(request.Body).ReadBytes();
                    await connection.ReplyAsync(request, CqlOpcode.AuthSuccess, Bytes.Build(w => w.WriteBytes(null)));
                    break;
                default:
                    await FakeCqlServer.DefaultHandler(connection, request);
                    break;
            }
        });
        await using var session = new CqlSession(server.Options(o => (o.Username, o.Password) = ("konduit", "pa55")));

        await session.ConnectAsync(Ct);

        Assert.Equal("\0konduit\0pa55"u8.ToArray(), token);
    }

    [Fact]
    public async Task Bad_credentials_surface_as_an_authentication_exception()
    {
        await using var server = new FakeCqlServer(async (connection, request) =>
        {
            if (request.Header.Opcode == CqlOpcode.Startup)
                await connection.ReplyAsync(request, CqlOpcode.Authenticate, Bytes.Build(w => w.WriteString("PasswordAuthenticator")));
            else
                await connection.ReplyAsync(request, CqlOpcode.Error, FakeBodies.Error(CqlErrorCode.AuthenticationError, "Username and/or password are incorrect"));
        });
        await using var session = new CqlSession(server.Options(o => (o.Username, o.Password) = ("u", "wrong")));
        await Assert.ThrowsAsync<CqlAuthenticationException>(() => session.ConnectAsync(Ct));
    }

    [Fact]
    public async Task Authentication_required_without_credentials_says_so()
    {
        await using var server = new FakeCqlServer((connection, request) =>
            connection.ReplyAsync(request, CqlOpcode.Authenticate, Bytes.Build(w => w.WriteString("PasswordAuthenticator"))));
        await using var session = new CqlSession(server.Options());
        var error = await Assert.ThrowsAsync<CqlAuthenticationException>(() => session.ConnectAsync(Ct));
        Assert.Contains("Username", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unprepared_error_re_prepares_and_retries_once()
    {
        var opcodes = new List<CqlOpcode>();
        var executions = 0;
        await using var server = new FakeCqlServer(async (connection, request) =>
        {
            lock (opcodes)
                opcodes.Add(request.Header.Opcode);
            switch (request.Header.Opcode)
            {
                case CqlOpcode.Prepare:
                    await connection.ReplyAsync(request, CqlOpcode.Result, FakeBodies.Prepared([0x01, 0x02], request));
                    break;
                case CqlOpcode.Execute when Interlocked.Increment(ref executions) == 1:
                    await connection.ReplyAsync(request, CqlOpcode.Result, FakeBodies.Void());
                    break;
                case CqlOpcode.Execute when executions == 2:
                    await connection.ReplyAsync(request, CqlOpcode.Error,
                        FakeBodies.Error(CqlErrorCode.Unprepared, "Prepared query with ID 0102 not found", w => w.WriteShortBytes([0x01, 0x02])));
                    break;
                default:
                    await FakeCqlServer.DefaultHandler(connection, request);
                    break;
            }
        });
        await using var session = new CqlSession(server.Options());

        await session.ExecuteAsync("INSERT INTO t (k) VALUES (?)", [1], cancellationToken: Ct);
        await session.ExecuteAsync("INSERT INTO t (k) VALUES (?)", [2], cancellationToken: Ct);

        Assert.Equal(
            [CqlOpcode.Startup, CqlOpcode.Prepare, CqlOpcode.Execute, CqlOpcode.Execute, CqlOpcode.Prepare, CqlOpcode.Execute],
            opcodes);
    }

    [Fact]
    public async Task Prepared_statements_are_cached_by_text()
    {
        var prepares = 0;
        await using var server = new FakeCqlServer(async (connection, request) =>
        {
            if (request.Header.Opcode == CqlOpcode.Prepare)
            {
                Interlocked.Increment(ref prepares);
                await connection.ReplyAsync(request, CqlOpcode.Result, FakeBodies.Prepared([0x07], request));
                return;
            }
            await FakeCqlServer.DefaultHandler(connection, request);
        });
        await using var session = new CqlSession(server.Options());
        for (var i = 0; i < 3; i++)
            await session.ExecuteAsync("DELETE FROM t WHERE k = ?", [i], cancellationToken: Ct);
        Assert.Equal(1, prepares);
    }

    [Fact]
    public async Task Paging_follows_the_paging_state_until_the_last_page()
    {
        var pagingStates = new List<string>();
        await using var server = new FakeCqlServer(async (connection, request) =>
        {
            if (request.Header.Opcode != CqlOpcode.Query)
            {
                await FakeCqlServer.DefaultHandler(connection, request);
                return;
            }
            var reader = new CqlReader(request.Body);
            reader.ReadLongString();
            reader.ReadConsistency();
            var flags = reader.ReadByte();
            var pageSize = reader.ReadInt();
            var state = (flags & CqlRequests.FlagPagingState) != 0 ? reader.ReadBytes()![0] : 0;
            lock (pagingStates)
                pagingStates.Add($"{pageSize}:{state}");
            var next = state + 1;
            await connection.ReplyAsync(request, CqlOpcode.Result, Bytes.Build(w =>
            {
                w.WriteInt(2);
                w.WriteInt(next < 3 ? 3 : 1);
                w.WriteInt(1);
                if (next < 3)
                    w.WriteBytes([(byte)next]);
                w.WriteString("ks");
                w.WriteString("t");
                w.WriteString("n");
                w.WriteShort((int)CqlTypeCode.Int);
                w.WriteInt(2);
                w.WriteBytes([0, 0, 0, (byte)(state * 2)]);
                w.WriteBytes([0, 0, 0, (byte)(state * 2 + 1)]);
            }));
        });
        await using var session = new CqlSession(server.Options());

        var rows = new List<int>();
        await foreach (var row in session.QueryAsync("SELECT n FROM t", null, Unprepared with { PageSize = 2 }, Ct))
            rows.Add(row.Get<int>("n"));

        Assert.Equal([0, 1, 2, 3, 4, 5], rows);
        Assert.Equal(["2:0", "2:1", "2:2"], pagingStates);
    }

    [Fact]
    public async Task A_request_without_an_answer_times_out_with_a_typed_exception()
    {
        await using var server = new FakeCqlServer(async (connection, request) =>
        {
            if (request.Header.Opcode == CqlOpcode.Startup)
                await FakeCqlServer.DefaultHandler(connection, request);
        });
        await using var session = new CqlSession(server.Options());
        await session.ConnectAsync(Ct);

        var error = await Assert.ThrowsAsync<CqlRequestTimeoutException>(() =>
            session.ExecuteAsync("SELECT 1", null, Unprepared with { Timeout = TimeSpan.FromMilliseconds(50) }, Ct));
        Assert.Equal(TimeSpan.FromMilliseconds(50), error.Timeout);
    }

    [Fact]
    public async Task A_timed_out_stream_id_is_not_reused_until_its_late_answer_arrives()
    {
        var held = new TaskCompletionSource<(FakeConnection, CqlFrame)>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new FakeCqlServer(async (connection, request) =>
        {
            if (request.Header.Opcode == CqlOpcode.Query && FakeBodies.LongStringBody(request) == "USE late")
            {
                held.SetResult((connection, request));
                return;
            }
            await FakeCqlServer.DefaultHandler(connection, request);
        });
        await using var session = new CqlSession(server.Options(o => o.MaxRequestsInFlight = 2));
        var connector = await session.GetConnectorAsync(Ct);

        await Assert.ThrowsAsync<CqlRequestTimeoutException>(() =>
            session.ExecuteAsync("USE late", null, Unprepared with { Timeout = TimeSpan.FromMilliseconds(50) }, Ct));
        var (connection, request) = await held.Task.WaitAsync(Ct);
        Assert.Equal(1, connector.InFlight);

        // Meanwhile another request succeeds on the other stream id.
        await session.ExecuteAsync("SELECT 1", null, Unprepared, Ct);
        await connection.ReplyAsync(request, CqlOpcode.Result, FakeBodies.SetKeyspace("late"));
        var next = await session.ExecuteAsync("SELECT 2", null, Unprepared, Ct);

        Assert.Equal(CqlResultKind.Void, next.Kind);
        Assert.False(connector.IsFaulted);
    }

    [Fact]
    public async Task Cancellation_ends_the_wait_with_OperationCanceled()
    {
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new FakeCqlServer(async (connection, request) =>
        {
            if (request.Header.Opcode == CqlOpcode.Query)
                arrived.SetResult();
            else
                await FakeCqlServer.DefaultHandler(connection, request);
        });
        await using var session = new CqlSession(server.Options());
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        var call = session.ExecuteAsync("SELECT 1", null, Unprepared, cts.Token);
        await arrived.Task.WaitAsync(Ct);
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
    }

    [Fact]
    public async Task Connecting_to_a_closed_port_is_a_connection_exception()
    {
        int port;
        await using (var server = new FakeCqlServer())
            port = server.Port;
        await using var session = new CqlSession(new CqlSessionOptions { Host = "127.0.0.1", Port = port, ConnectTimeout = TimeSpan.FromSeconds(5) });
        await Assert.ThrowsAsync<CqlConnectionException>(() => session.ConnectAsync(Ct));
    }

    [Fact]
    public async Task Options_returns_the_supported_startup_options()
    {
        await using var server = new FakeCqlServer();
        await using var session = new CqlSession(server.Options());
        var supported = await session.GetSupportedOptionsAsync(Ct);
        Assert.Equal(["3.4.0"], supported["CQL_VERSION"]);
    }

    [Fact]
    public async Task Keyspace_option_sends_USE_on_every_new_connection()
    {
        await using var server = new FakeCqlServer();
        await using var session = new CqlSession(server.Options(o => o.Keyspace = "konduit_events"));
        await session.ConnectAsync(Ct);
        await server.Received.Reader.ReadAsync(Ct);
        Assert.Equal("USE konduit_events", FakeBodies.LongStringBody(await server.Received.Reader.ReadAsync(Ct)));
    }

    [Fact]
    public async Task Server_errors_on_a_request_are_typed_and_leave_the_connection_usable()
    {
        await using var server = new FakeCqlServer(async (connection, request) =>
        {
            if (request.Header.Opcode == CqlOpcode.Query && FakeBodies.LongStringBody(request) == "SELEKT")
                await connection.ReplyAsync(request, CqlOpcode.Error, FakeBodies.Error(CqlErrorCode.SyntaxError, "no viable alternative"));
            else
                await FakeCqlServer.DefaultHandler(connection, request);
        });
        await using var session = new CqlSession(server.Options());
        await Assert.ThrowsAsync<CqlSyntaxException>(() => session.ExecuteAsync("SELEKT", null, Unprepared, Ct));
        await session.ExecuteAsync("SELECT 1", null, Unprepared, Ct);
        Assert.Equal(1, server.ConnectionCount);
    }

    [Fact]
    public async Task Event_frames_on_stream_minus_one_are_ignored()
    {
        await using var server = new FakeCqlServer(async (connection, request) =>
        {
            if (request.Header.Opcode == CqlOpcode.Query)
                await connection.SendAsync(0x84, -1, CqlOpcode.Event, Bytes.Build(w => w.WriteString("SCHEMA_CHANGE")));
            await FakeCqlServer.DefaultHandler(connection, request);
        });
        await using var session = new CqlSession(server.Options());
        Assert.Equal(CqlResultKind.Void, (await session.ExecuteAsync("SELECT 1", null, Unprepared, Ct)).Kind);
    }

    [Theory]
    [InlineData("127.0.0.1:9042", "127.0.0.1", 9042)]
    [InlineData("cassandra.local:19042", "cassandra.local", 19042)]
    [InlineData("localhost", "localhost", 9042)]
    [InlineData("[::1]:9043", "::1", 9043)]
    public void Contact_points_parse_host_and_port(string contactPoint, string host, int port)
    {
        var options = CqlSessionOptions.FromContactPoint(contactPoint);
        Assert.Equal((host, port), (options.Host, options.Port));
    }

    [Fact]
    public void Options_refuse_a_keyspace_that_is_not_a_plain_identifier()
    {
        Assert.Throws<ArgumentException>(() => new CqlSession(new CqlSessionOptions { Keyspace = "ks; DROP KEYSPACE x" }));
    }
}
