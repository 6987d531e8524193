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
public sealed class HybridExpireLeaseConformanceTests(PostgresRedisStoreFixture f) : ExpireLeaseConformance<PostgresRedisStoreFixture>(f);
public sealed class HybridCancelRedriveConformanceTests(PostgresRedisStoreFixture f) : CancelRedriveConformance<PostgresRedisStoreFixture>(f);
public sealed class HybridQueryConformanceTests(PostgresRedisStoreFixture f) : QueryConformance<PostgresRedisStoreFixture>(f);
public sealed class HybridPauseConformanceTests(PostgresRedisStoreFixture f) : PauseConformance<PostgresRedisStoreFixture>(f);
public sealed class HybridCompleteAndLeaseConformanceTests(PostgresRedisStoreFixture f) : CompleteAndLeaseConformance<PostgresRedisStoreFixture>(f);
public sealed class HybridBulkConformanceTests(PostgresRedisStoreFixture f) : BulkConformance<PostgresRedisStoreFixture>(f);
public sealed class HybridPurgeConformanceTests(PostgresRedisStoreFixture f) : PurgeConformance<PostgresRedisStoreFixture>(f);
public sealed class HybridValidationConformanceTests(PostgresRedisStoreFixture f) : ValidationConformance<PostgresRedisStoreFixture>(f);
public sealed class HybridCapabilitiesConformanceTests(PostgresRedisStoreFixture f) : CapabilitiesConformance<PostgresRedisStoreFixture>(f);
public sealed class HybridBoundsConformanceTests(PostgresRedisStoreFixture f) : BoundsConformance<PostgresRedisStoreFixture>(f);
public sealed class HybridTextConformanceTests(PostgresRedisStoreFixture f) : TextConformance<PostgresRedisStoreFixture>(f);
public sealed class HybridModelConformanceTests(PostgresRedisStoreFixture f) : ModelConformance<PostgresRedisStoreFixture>(f);

// The whole suite again in ClaimIds dispatch mode: its capabilities (no StrictLeaseOrder, no OrdersByRunAt) gate the
// order-dependent tests; everything else is the same contract.
public sealed class HybridClaimIdsEnqueueConformanceTests(PostgresRedisClaimIdsStoreFixture f) : EnqueueConformance<PostgresRedisClaimIdsStoreFixture>(f);
public sealed class HybridClaimIdsIdempotencyConformanceTests(PostgresRedisClaimIdsStoreFixture f) : IdempotencyConformance<PostgresRedisClaimIdsStoreFixture>(f);
public sealed class HybridClaimIdsLeaseConformanceTests(PostgresRedisClaimIdsStoreFixture f) : LeaseConformance<PostgresRedisClaimIdsStoreFixture>(f);
public sealed class HybridClaimIdsHeartbeatConformanceTests(PostgresRedisClaimIdsStoreFixture f) : HeartbeatConformance<PostgresRedisClaimIdsStoreFixture>(f);
public sealed class HybridClaimIdsFencingConformanceTests(PostgresRedisClaimIdsStoreFixture f) : FencingConformance<PostgresRedisClaimIdsStoreFixture>(f);
public sealed class HybridClaimIdsRetryConformanceTests(PostgresRedisClaimIdsStoreFixture f) : RetryConformance<PostgresRedisClaimIdsStoreFixture>(f);
public sealed class HybridClaimIdsReclaimConformanceTests(PostgresRedisClaimIdsStoreFixture f) : ReclaimConformance<PostgresRedisClaimIdsStoreFixture>(f);
public sealed class HybridClaimIdsExpireLeaseConformanceTests(PostgresRedisClaimIdsStoreFixture f) : ExpireLeaseConformance<PostgresRedisClaimIdsStoreFixture>(f);
public sealed class HybridClaimIdsCancelRedriveConformanceTests(PostgresRedisClaimIdsStoreFixture f) : CancelRedriveConformance<PostgresRedisClaimIdsStoreFixture>(f);
public sealed class HybridClaimIdsQueryConformanceTests(PostgresRedisClaimIdsStoreFixture f) : QueryConformance<PostgresRedisClaimIdsStoreFixture>(f);
public sealed class HybridClaimIdsPauseConformanceTests(PostgresRedisClaimIdsStoreFixture f) : PauseConformance<PostgresRedisClaimIdsStoreFixture>(f);
public sealed class HybridClaimIdsCompleteAndLeaseConformanceTests(PostgresRedisClaimIdsStoreFixture f) : CompleteAndLeaseConformance<PostgresRedisClaimIdsStoreFixture>(f);
public sealed class HybridClaimIdsBulkConformanceTests(PostgresRedisClaimIdsStoreFixture f) : BulkConformance<PostgresRedisClaimIdsStoreFixture>(f);
public sealed class HybridClaimIdsPurgeConformanceTests(PostgresRedisClaimIdsStoreFixture f) : PurgeConformance<PostgresRedisClaimIdsStoreFixture>(f);
public sealed class HybridClaimIdsValidationConformanceTests(PostgresRedisClaimIdsStoreFixture f) : ValidationConformance<PostgresRedisClaimIdsStoreFixture>(f);
public sealed class HybridClaimIdsCapabilitiesConformanceTests(PostgresRedisClaimIdsStoreFixture f) : CapabilitiesConformance<PostgresRedisClaimIdsStoreFixture>(f);
public sealed class HybridClaimIdsBoundsConformanceTests(PostgresRedisClaimIdsStoreFixture f) : BoundsConformance<PostgresRedisClaimIdsStoreFixture>(f);
public sealed class HybridClaimIdsTextConformanceTests(PostgresRedisClaimIdsStoreFixture f) : TextConformance<PostgresRedisClaimIdsStoreFixture>(f);
public sealed class HybridClaimIdsModelConformanceTests(PostgresRedisClaimIdsStoreFixture f) : ModelConformance<PostgresRedisClaimIdsStoreFixture>(f);
