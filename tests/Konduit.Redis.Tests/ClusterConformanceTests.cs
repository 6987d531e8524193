using Konduit.Testing.Conformance;

namespace Konduit.Redis.Tests;

// The whole store conformance suite again, on a real Redis Cluster of 3 masters and 3 replicas (issue 16;
// KONDUIT_TEST_REDIS_CLUSTER, started by scripts/services.sh). RedisClusterTests checks the queues spread over every master.
public sealed class RedisClusterEnqueueConformanceTests(RedisClusterStoreFixture f) : EnqueueConformance<RedisClusterStoreFixture>(f);
public sealed class RedisClusterIdempotencyConformanceTests(RedisClusterStoreFixture f) : IdempotencyConformance<RedisClusterStoreFixture>(f);
public sealed class RedisClusterLeaseConformanceTests(RedisClusterStoreFixture f) : LeaseConformance<RedisClusterStoreFixture>(f);
public sealed class RedisClusterHeartbeatConformanceTests(RedisClusterStoreFixture f) : HeartbeatConformance<RedisClusterStoreFixture>(f);
public sealed class RedisClusterFencingConformanceTests(RedisClusterStoreFixture f) : FencingConformance<RedisClusterStoreFixture>(f);
public sealed class RedisClusterRetryConformanceTests(RedisClusterStoreFixture f) : RetryConformance<RedisClusterStoreFixture>(f);
public sealed class RedisClusterReclaimConformanceTests(RedisClusterStoreFixture f) : ReclaimConformance<RedisClusterStoreFixture>(f);
public sealed class RedisClusterExpireLeaseConformanceTests(RedisClusterStoreFixture f) : ExpireLeaseConformance<RedisClusterStoreFixture>(f);
public sealed class RedisClusterCancelRedriveConformanceTests(RedisClusterStoreFixture f) : CancelRedriveConformance<RedisClusterStoreFixture>(f);
public sealed class RedisClusterQueryConformanceTests(RedisClusterStoreFixture f) : QueryConformance<RedisClusterStoreFixture>(f);
public sealed class RedisClusterPauseConformanceTests(RedisClusterStoreFixture f) : PauseConformance<RedisClusterStoreFixture>(f);
public sealed class RedisClusterCompleteAndLeaseConformanceTests(RedisClusterStoreFixture f) : CompleteAndLeaseConformance<RedisClusterStoreFixture>(f);
public sealed class RedisClusterBulkConformanceTests(RedisClusterStoreFixture f) : BulkConformance<RedisClusterStoreFixture>(f);
public sealed class RedisClusterPurgeConformanceTests(RedisClusterStoreFixture f) : PurgeConformance<RedisClusterStoreFixture>(f);
public sealed class RedisClusterValidationConformanceTests(RedisClusterStoreFixture f) : ValidationConformance<RedisClusterStoreFixture>(f);
public sealed class RedisClusterCapabilitiesConformanceTests(RedisClusterStoreFixture f) : CapabilitiesConformance<RedisClusterStoreFixture>(f);
