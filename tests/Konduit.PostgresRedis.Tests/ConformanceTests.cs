using Konduit.Testing.Conformance;

namespace Konduit.PostgresRedis.Tests;

// The whole store conformance suite against PostgresRedisTaskStore (one schema and key prefix per test class).
public sealed class HybridEnqueueConformanceTests(PostgresRedisStoreFixture f) : EnqueueConformance<PostgresRedisStoreFixture>(f);
public sealed class HybridIdempotencyConformanceTests(PostgresRedisStoreFixture f) : IdempotencyConformance<PostgresRedisStoreFixture>(f);
public sealed class HybridLeaseConformanceTests(PostgresRedisStoreFixture f) : LeaseConformance<PostgresRedisStoreFixture>(f);
public sealed class HybridHeartbeatConformanceTests(PostgresRedisStoreFixture f) : HeartbeatConformance<PostgresRedisStoreFixture>(f);
public sealed class HybridFencingConformanceTests(PostgresRedisStoreFixture f) : FencingConformance<PostgresRedisStoreFixture>(f);
public sealed class HybridRetryConformanceTests(PostgresRedisStoreFixture f) : RetryConformance<PostgresRedisStoreFixture>(f);
public sealed class HybridReclaimConformanceTests(PostgresRedisStoreFixture f) : ReclaimConformance<PostgresRedisStoreFixture>(f);
public sealed class HybridCancelRedriveConformanceTests(PostgresRedisStoreFixture f) : CancelRedriveConformance<PostgresRedisStoreFixture>(f);
public sealed class HybridQueryConformanceTests(PostgresRedisStoreFixture f) : QueryConformance<PostgresRedisStoreFixture>(f);
public sealed class HybridPurgeConformanceTests(PostgresRedisStoreFixture f) : PurgeConformance<PostgresRedisStoreFixture>(f);
public sealed class HybridValidationConformanceTests(PostgresRedisStoreFixture f) : ValidationConformance<PostgresRedisStoreFixture>(f);
public sealed class HybridCapabilitiesConformanceTests(PostgresRedisStoreFixture f) : CapabilitiesConformance<PostgresRedisStoreFixture>(f);
public sealed class HybridBoundsConformanceTests(PostgresRedisStoreFixture f) : BoundsConformance<PostgresRedisStoreFixture>(f);
public sealed class HybridTextConformanceTests(PostgresRedisStoreFixture f) : TextConformance<PostgresRedisStoreFixture>(f);
