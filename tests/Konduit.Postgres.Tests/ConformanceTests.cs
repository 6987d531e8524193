using Konduit.Testing.Conformance;

namespace Konduit.Postgres.Tests;

// The whole store conformance suite against PostgresTaskStore (one schema per test class, see PostgresStoreFixture).
public sealed class PostgresEnqueueTests(PostgresStoreFixture f) : EnqueueConformance<PostgresStoreFixture>(f);
public sealed class PostgresIdempotencyTests(PostgresStoreFixture f) : IdempotencyConformance<PostgresStoreFixture>(f);
public sealed class PostgresLeaseTests(PostgresStoreFixture f) : LeaseConformance<PostgresStoreFixture>(f);
public sealed class PostgresHeartbeatTests(PostgresStoreFixture f) : HeartbeatConformance<PostgresStoreFixture>(f);
public sealed class PostgresFencingTests(PostgresStoreFixture f) : FencingConformance<PostgresStoreFixture>(f);
public sealed class PostgresRetryTests(PostgresStoreFixture f) : RetryConformance<PostgresStoreFixture>(f);
public sealed class PostgresReclaimTests(PostgresStoreFixture f) : ReclaimConformance<PostgresStoreFixture>(f);
public sealed class PostgresCancelRedriveTests(PostgresStoreFixture f) : CancelRedriveConformance<PostgresStoreFixture>(f);
public sealed class PostgresQueryTests(PostgresStoreFixture f) : QueryConformance<PostgresStoreFixture>(f);
public sealed class PostgresPurgeTests(PostgresStoreFixture f) : PurgeConformance<PostgresStoreFixture>(f);
public sealed class PostgresValidationTests(PostgresStoreFixture f) : ValidationConformance<PostgresStoreFixture>(f);
public sealed class PostgresCapabilitiesTests(PostgresStoreFixture f) : CapabilitiesConformance<PostgresStoreFixture>(f);
