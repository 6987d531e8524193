using Konduit.Testing.Conformance;

namespace Konduit.Redis.Tests;

// The whole store conformance suite against RedisTaskStore (one key prefix per test class, see RedisStoreFixture).
// Named *ConformanceTests: the Redis*Tests classes hold the adapter's own, Redis-specific tests.
public sealed class RedisEnqueueConformanceTests(RedisStoreFixture f) : EnqueueConformance<RedisStoreFixture>(f);
public sealed class RedisIdempotencyConformanceTests(RedisStoreFixture f) : IdempotencyConformance<RedisStoreFixture>(f);
public sealed class RedisLeaseConformanceTests(RedisStoreFixture f) : LeaseConformance<RedisStoreFixture>(f);
public sealed class RedisHeartbeatConformanceTests(RedisStoreFixture f) : HeartbeatConformance<RedisStoreFixture>(f);
public sealed class RedisFencingConformanceTests(RedisStoreFixture f) : FencingConformance<RedisStoreFixture>(f);
public sealed class RedisRetryConformanceTests(RedisStoreFixture f) : RetryConformance<RedisStoreFixture>(f);
public sealed class RedisReclaimConformanceTests(RedisStoreFixture f) : ReclaimConformance<RedisStoreFixture>(f);
public sealed class RedisExpireLeaseConformanceTests(RedisStoreFixture f) : ExpireLeaseConformance<RedisStoreFixture>(f);
public sealed class RedisCancelRedriveConformanceTests(RedisStoreFixture f) : CancelRedriveConformance<RedisStoreFixture>(f);
public sealed class RedisQueryConformanceTests(RedisStoreFixture f) : QueryConformance<RedisStoreFixture>(f);
public sealed class RedisPauseConformanceTests(RedisStoreFixture f) : PauseConformance<RedisStoreFixture>(f);
public sealed class RedisCompleteAndLeaseConformanceTests(RedisStoreFixture f) : CompleteAndLeaseConformance<RedisStoreFixture>(f);
public sealed class RedisBulkConformanceTests(RedisStoreFixture f) : BulkConformance<RedisStoreFixture>(f);
public sealed class RedisPurgeConformanceTests(RedisStoreFixture f) : PurgeConformance<RedisStoreFixture>(f);
public sealed class RedisValidationConformanceTests(RedisStoreFixture f) : ValidationConformance<RedisStoreFixture>(f);
public sealed class RedisCapabilitiesConformanceTests(RedisStoreFixture f) : CapabilitiesConformance<RedisStoreFixture>(f);
public sealed class RedisBoundsConformanceTests(RedisStoreFixture f) : BoundsConformance<RedisStoreFixture>(f);
public sealed class RedisTextConformanceTests(RedisStoreFixture f) : TextConformance<RedisStoreFixture>(f);
public sealed class RedisModelConformanceTests(RedisStoreFixture f) : ModelConformance<RedisStoreFixture>(f);
