using Konduit.Testing.Conformance;

namespace Konduit.Postgres.Tests;

// The whole store conformance suite against PostgresTaskStore (one schema per test class, see PostgresStoreFixture).
// Named *ConformanceTests to tell them from the adapter's own, Postgres-specific test classes (Postgres*Tests.cs).
public sealed class PostgresEnqueueConformanceTests(PostgresStoreFixture f) : EnqueueConformance<PostgresStoreFixture>(f);
public sealed class PostgresIdempotencyConformanceTests(PostgresStoreFixture f) : IdempotencyConformance<PostgresStoreFixture>(f);
public sealed class PostgresLeaseConformanceTests(PostgresStoreFixture f) : LeaseConformance<PostgresStoreFixture>(f);
public sealed class PostgresHeartbeatConformanceTests(PostgresStoreFixture f) : HeartbeatConformance<PostgresStoreFixture>(f);
public sealed class PostgresFencingConformanceTests(PostgresStoreFixture f) : FencingConformance<PostgresStoreFixture>(f);
public sealed class PostgresRetryConformanceTests(PostgresStoreFixture f) : RetryConformance<PostgresStoreFixture>(f);
public sealed class PostgresReclaimConformanceTests(PostgresStoreFixture f) : ReclaimConformance<PostgresStoreFixture>(f);
public sealed class PostgresExpireLeaseConformanceTests(PostgresStoreFixture f) : ExpireLeaseConformance<PostgresStoreFixture>(f);
public sealed class PostgresCancelRedriveConformanceTests(PostgresStoreFixture f) : CancelRedriveConformance<PostgresStoreFixture>(f);
public sealed class PostgresQueryConformanceTests(PostgresStoreFixture f) : QueryConformance<PostgresStoreFixture>(f);
public sealed class PostgresPauseConformanceTests(PostgresStoreFixture f) : PauseConformance<PostgresStoreFixture>(f);
public sealed class PostgresCompleteAndLeaseConformanceTests(PostgresStoreFixture f) : CompleteAndLeaseConformance<PostgresStoreFixture>(f);
public sealed class PostgresBulkConformanceTests(PostgresStoreFixture f) : BulkConformance<PostgresStoreFixture>(f);
public sealed class PostgresPurgeConformanceTests(PostgresStoreFixture f) : PurgeConformance<PostgresStoreFixture>(f);
public sealed class PostgresValidationConformanceTests(PostgresStoreFixture f) : ValidationConformance<PostgresStoreFixture>(f);
public sealed class PostgresCapabilitiesConformanceTests(PostgresStoreFixture f) : CapabilitiesConformance<PostgresStoreFixture>(f);
public sealed class PostgresBoundsConformanceTests(PostgresStoreFixture f) : BoundsConformance<PostgresStoreFixture>(f);
public sealed class PostgresTextConformanceTests(PostgresStoreFixture f) : TextConformance<PostgresStoreFixture>(f);
public sealed class PostgresModelConformanceTests(PostgresStoreFixture f) : ModelConformance<PostgresStoreFixture>(f);
