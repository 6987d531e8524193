using Konduit.Testing.Conformance;

namespace Konduit.Sqlite.Tests;

// Every store suite of Konduit.Testing.Conformance against SqliteTaskStore, one database file per class.
public sealed class SqliteEnqueueTests(SqliteStoreFixture f) : EnqueueConformance<SqliteStoreFixture>(f);
public sealed class SqliteIdempotencyTests(SqliteStoreFixture f) : IdempotencyConformance<SqliteStoreFixture>(f);
public sealed class SqliteLeaseTests(SqliteStoreFixture f) : LeaseConformance<SqliteStoreFixture>(f);
public sealed class SqliteHeartbeatTests(SqliteStoreFixture f) : HeartbeatConformance<SqliteStoreFixture>(f);
public sealed class SqliteFencingTests(SqliteStoreFixture f) : FencingConformance<SqliteStoreFixture>(f);
public sealed class SqliteRetryTests(SqliteStoreFixture f) : RetryConformance<SqliteStoreFixture>(f);
public sealed class SqliteReclaimTests(SqliteStoreFixture f) : ReclaimConformance<SqliteStoreFixture>(f);
public sealed class SqliteExpireLeaseTests(SqliteStoreFixture f) : ExpireLeaseConformance<SqliteStoreFixture>(f);
public sealed class SqliteCancelRedriveTests(SqliteStoreFixture f) : CancelRedriveConformance<SqliteStoreFixture>(f);
public sealed class SqliteQueryTests(SqliteStoreFixture f) : QueryConformance<SqliteStoreFixture>(f);
public sealed class SqlitePauseTests(SqliteStoreFixture f) : PauseConformance<SqliteStoreFixture>(f);
public sealed class SqliteCompleteAndLeaseTests(SqliteStoreFixture f) : CompleteAndLeaseConformance<SqliteStoreFixture>(f);
public sealed class SqliteBulkTests(SqliteStoreFixture f) : BulkConformance<SqliteStoreFixture>(f);
public sealed class SqlitePurgeTests(SqliteStoreFixture f) : PurgeConformance<SqliteStoreFixture>(f);
public sealed class SqliteValidationTests(SqliteStoreFixture f) : ValidationConformance<SqliteStoreFixture>(f);
public sealed class SqliteCapabilitiesTests(SqliteStoreFixture f) : CapabilitiesConformance<SqliteStoreFixture>(f);
public sealed class SqliteBoundsTests(SqliteStoreFixture f) : BoundsConformance<SqliteStoreFixture>(f);
public sealed class SqliteTextTests(SqliteStoreFixture f) : TextConformance<SqliteStoreFixture>(f);
public sealed class SqliteModelTests(SqliteStoreFixture f) : ModelConformance<SqliteStoreFixture>(f);

// The suites whose outcome a commit mode could change, again with Synchronous = Normal (the faster, less durable mode).
public sealed class SqliteNormalSyncFixture : SqliteStoreFixture { protected override SqliteSynchronousMode Synchronous => SqliteSynchronousMode.Normal; }
public sealed class SqliteNormalSyncEnqueueTests(SqliteNormalSyncFixture f) : EnqueueConformance<SqliteNormalSyncFixture>(f);
public sealed class SqliteNormalSyncIdempotencyTests(SqliteNormalSyncFixture f) : IdempotencyConformance<SqliteNormalSyncFixture>(f);
public sealed class SqliteNormalSyncLeaseTests(SqliteNormalSyncFixture f) : LeaseConformance<SqliteNormalSyncFixture>(f);
public sealed class SqliteNormalSyncFencingTests(SqliteNormalSyncFixture f) : FencingConformance<SqliteNormalSyncFixture>(f);
public sealed class SqliteNormalSyncModelTests(SqliteNormalSyncFixture f) : ModelConformance<SqliteNormalSyncFixture>(f);
