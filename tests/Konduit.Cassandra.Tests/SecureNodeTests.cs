using Konduit.Cassandra.Cql;
using Konduit.Testing.Conformance;
using Xunit;

namespace Konduit.Cassandra.Tests;

/// <summary>
/// The secured node from KONDUIT_TEST_CASSANDRA_SECURE (scripts/services.d/cassandra.sh, KONDUIT_CASSANDRA_SECURE=1):
/// PasswordAuthenticator, CassandraAuthorizer and client TLS required, with a certificate from the private CA in
/// KONDUIT_TEST_TLS_CA. The superuser (Cassandra's default cassandra/cassandra) migrates; the log under test runs as a
/// user of this fixture's own with only SELECT and MODIFY on its keyspaces, over TLS, configured through
/// <see cref="CassandraTaskEventLogOptions"/> alone.
/// </summary>
public sealed class SecureCassandraFixture() : CassandraLogFixture("konduit_sec_")
{
    public const string Variable = "KONDUIT_TEST_CASSANDRA_SECURE";
    public const string CaVariable = "KONDUIT_TEST_TLS_CA";
    public const string Superuser = "cassandra";


    public string ContactPoint { get; private set; } = "";

    public string CertificateAuthority { get; private set; } = "";

    /// <summary>The least-privileged user the logs under test run as.</summary>
    public string User { get; } = "konduit_app_" + Guid.NewGuid().ToString("N")[..8];

    /// <summary>Its password: random hex, so that a grep for it over messages finds only real leaks.</summary>
    public string Password { get; } = Guid.NewGuid().ToString("N");


    public override async ValueTask InitializeAsync()
    {
        ContactPoint = Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } cp ? cp
            : throw new InvalidOperationException($"{Variable} is not set: run KONDUIT_CASSANDRA_SECURE=1 scripts/services.sh up && source .services/env");
        CertificateAuthority = Environment.GetEnvironmentVariable(CaVariable) is { Length: > 0 } ca ? ca
            : throw new InvalidOperationException($"{CaVariable} is not set: run scripts/services.sh up && source .services/env");
        var options = CqlSessionOptions.FromContactPoint(ContactPoint);
        options.Username = Superuser;
        options.Password = Superuser;
        options.UseTls = true;
        options.TlsCertificateAuthorityPath = CertificateAuthority;
        options.DefaultConsistency = CqlConsistency.One;
        options.RequestTimeout = TimeSpan.FromSeconds(30);
        options.ConnectTimeout = TimeSpan.FromSeconds(10);
        Session = new CqlSession(options);
        // CREATE USER takes no bind markers; the name and password are this fixture's own random hex, never input.
        await Session.ExecuteAsync($"CREATE USER {User} WITH PASSWORD '{Password}' NOSUPERUSER", options: Ddl);
        await CreateLogAsync();
    }

    /// <summary>Settings of a log as the fixture's user, over TLS; <paramref name="configure"/> changes them.</summary>
    public CassandraTaskEventLogOptions Options(int ttlSeconds, string? user = null, string? password = null) => new()
    {
        ContactPoints = ContactPoint,
        Username = user ?? User,
        Password = password ?? Password,
        UseTls = true,
        TlsCertificateAuthorityPath = CertificateAuthority,
        Keyspace = Keyspace(ttlSeconds),
        TimeToLive = ttlSeconds == 0 ? null : TimeSpan.FromSeconds(ttlSeconds),
        WriteConsistency = CassandraConsistency.One,
        ReadConsistency = CassandraConsistency.One,
        RequestTimeout = TimeSpan.FromSeconds(30),
    };

    private protected override bool LogsOwnSessions => true;

    private protected override async Task<CassandraTaskEventLog> CreateAsync(int ttlSeconds)
    {
        // The owner (superuser) migrates; the application user may only read and write rows.
        await using (var owner = new CassandraTaskEventLog(Options(ttlSeconds, Superuser, Superuser)))
            await owner.MigrateAsync();
        await Session.ExecuteAsync($"GRANT SELECT ON KEYSPACE {Keyspace(ttlSeconds)} TO {User}", options: Ddl);
        await Session.ExecuteAsync($"GRANT MODIFY ON KEYSPACE {Keyspace(ttlSeconds)} TO {User}", options: Ddl);
        return new CassandraTaskEventLog(Options(ttlSeconds));
    }

    public override async ValueTask DisposeAsync()
    {
        try
        {
            await Session.ExecuteAsync($"DROP USER IF EXISTS {User}", options: Ddl);
        }
        catch (InvalidOperationException)
        {
            // Not initialized: there is no user to drop.
        }
        await base.DisposeAsync();
    }
}

// The whole event-log conformance suite as a least-privileged user, authenticated by PasswordAuthenticator, over TLS.
public sealed class SecureCassandraEventHistoryConformanceTests(SecureCassandraFixture f) : TaskEventHistoryConformance<SecureCassandraFixture>(f);
public sealed class SecureCassandraEventQueueConformanceTests(SecureCassandraFixture f) : TaskEventQueueConformance<SecureCassandraFixture>(f);
public sealed class SecureCassandraEventIdempotencyConformanceTests(SecureCassandraFixture f) : TaskEventIdempotencyConformance<SecureCassandraFixture>(f);

/// <summary>What a misconfigured client gets from the secured node: one typed error each, and never the password.</summary>
public sealed class SecureNodeTests(SecureCassandraFixture fixture) : IClassFixture<SecureCassandraFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static TaskEvent AnEvent() => TaskEvent.Create(TaskEventKind.Enqueued, Guid.CreateVersion7(), "secure", DateTimeOffset.UtcNow);

    [Fact]
    public async Task A_wrong_password_is_refused_with_a_typed_error_that_does_not_contain_it()
    {
        var wrong = "wrong-" + Guid.NewGuid().ToString("N");
        await using var log = new CassandraTaskEventLog(fixture.Options(0, password: wrong));

        var error = await Assert.ThrowsAnyAsync<CassandraEventLogException>(() => log.AppendAsync([AnEvent()], Ct));

        Assert.Contains("authenticat", error.ToString(), StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(wrong, error.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(fixture.Password, error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task No_credentials_against_PasswordAuthenticator_says_to_set_them()
    {
        var options = fixture.Options(0);
        options.Username = null;
        options.Password = null;
        await using var log = new CassandraTaskEventLog(options);

        var error = await Assert.ThrowsAnyAsync<CassandraEventLogException>(() => log.AppendAsync([AnEvent()], Ct));

        Assert.Contains("Username and Password", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_application_user_reads_and_writes_but_cannot_change_the_schema()
    {
        var log = (CassandraTaskEventLog)await fixture.CreateLogAsync();
        var e = AnEvent();
        await log.AppendAsync([e], Ct);
        Assert.Equal(e.EventId, Assert.Single(await log.ReadTaskHistoryAsync(e.TaskId, Ct)).EventId);

        // MigrateAsync as that user: CREATE … IF NOT EXISTS still needs CREATE permission, which it lacks.
        await using var asApp = new CassandraTaskEventLog(fixture.Options(0));
        var error = await Assert.ThrowsAnyAsync<CassandraEventLogException>(() => asApp.MigrateAsync(Ct));
        Assert.Contains(fixture.User, error.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Without_TLS_the_node_is_not_reachable_and_the_error_is_a_connection_error()
    {
        var options = fixture.Options(0);
        options.UseTls = false;
        options.TlsCertificateAuthorityPath = null;
        options.RequestTimeout = TimeSpan.FromSeconds(5);
        await using var log = new CassandraTaskEventLog(options);

        await Assert.ThrowsAnyAsync<CassandraEventLogException>(() => log.AppendAsync([AnEvent()], Ct));
    }

    [Fact]
    public async Task A_certificate_the_client_does_not_trust_fails_the_TLS_handshake()
    {
        // The system trust store does not hold the test CA.
        var options = fixture.Options(0);
        options.TlsCertificateAuthorityPath = null;
        await using var log = new CassandraTaskEventLog(options);

        var error = await Assert.ThrowsAsync<CassandraConnectionException>(() => log.AppendAsync([AnEvent()], Ct));

        Assert.Contains("TLS", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_certificate_for_another_name_fails_the_TLS_handshake()
    {
        var options = fixture.Options(0);
        options.TlsServerName = "not-this-node.example";
        await using var log = new CassandraTaskEventLog(options);

        var error = await Assert.ThrowsAsync<CassandraConnectionException>(() => log.AppendAsync([AnEvent()], Ct));

        Assert.Contains("TLS", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void TLS_settings_without_UseTls_are_refused_by_name()
    {
        var options = fixture.Options(0);
        options.UseTls = false;

        var error = Assert.Throws<ArgumentException>(options.Validate);

        Assert.Equal(nameof(CassandraTaskEventLogOptions.UseTls), error.ParamName);
    }
}
