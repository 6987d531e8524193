using Konduit.Testing.Conformance;

namespace Konduit.Tests;

// The whole store conformance suite against the in-memory reference store.
public sealed class InMemoryEnqueueTests(InMemoryStoreFixture f) : EnqueueConformance<InMemoryStoreFixture>(f);
public sealed class InMemoryIdempotencyTests(InMemoryStoreFixture f) : IdempotencyConformance<InMemoryStoreFixture>(f);
public sealed class InMemoryLeaseTests(InMemoryStoreFixture f) : LeaseConformance<InMemoryStoreFixture>(f);
public sealed class InMemoryHeartbeatTests(InMemoryStoreFixture f) : HeartbeatConformance<InMemoryStoreFixture>(f);
public sealed class InMemoryFencingTests(InMemoryStoreFixture f) : FencingConformance<InMemoryStoreFixture>(f);
public sealed class InMemoryRetryTests(InMemoryStoreFixture f) : RetryConformance<InMemoryStoreFixture>(f);
public sealed class InMemoryReclaimTests(InMemoryStoreFixture f) : ReclaimConformance<InMemoryStoreFixture>(f);
public sealed class InMemoryExpireLeaseTests(InMemoryStoreFixture f) : ExpireLeaseConformance<InMemoryStoreFixture>(f);
public sealed class InMemoryCancelRedriveTests(InMemoryStoreFixture f) : CancelRedriveConformance<InMemoryStoreFixture>(f);
public sealed class InMemoryQueryTests(InMemoryStoreFixture f) : QueryConformance<InMemoryStoreFixture>(f);
public sealed class InMemoryPauseTests(InMemoryStoreFixture f) : PauseConformance<InMemoryStoreFixture>(f);
public sealed class InMemoryCompleteAndLeaseTests(InMemoryStoreFixture f) : CompleteAndLeaseConformance<InMemoryStoreFixture>(f);
public sealed class InMemoryBulkTests(InMemoryStoreFixture f) : BulkConformance<InMemoryStoreFixture>(f);
public sealed class InMemoryPurgeTests(InMemoryStoreFixture f) : PurgeConformance<InMemoryStoreFixture>(f);
public sealed class InMemoryValidationTests(InMemoryStoreFixture f) : ValidationConformance<InMemoryStoreFixture>(f);
public sealed class InMemoryCapabilitiesTests(InMemoryStoreFixture f) : CapabilitiesConformance<InMemoryStoreFixture>(f);
public sealed class InMemoryBoundsTests(InMemoryStoreFixture f) : BoundsConformance<InMemoryStoreFixture>(f);
public sealed class InMemoryTextTests(InMemoryStoreFixture f) : TextConformance<InMemoryStoreFixture>(f);
public sealed class InMemoryModelTests(InMemoryStoreFixture f) : ModelConformance<InMemoryStoreFixture>(f);
