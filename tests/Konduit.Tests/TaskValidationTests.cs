using Xunit;

namespace Konduit.Tests;

public sealed class TaskValidationTests
{
    private static EnqueueRequest Ok => new("q", [1, 2, 3]);

    [Theory]
    [InlineData("q")]
    [InlineData("emails")]
    [InlineData("a.b_c:d-E9")]
    public void Valid_queue_names_pass(string queue) => TaskValidation.ValidateQueue(queue);

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("a b")]
    [InlineData("a/b")]
    [InlineData("ümlaut")]
    [InlineData("semi;colon")]
    public void Invalid_queue_names_throw_argument_exception_naming_the_parameter(string queue)
    {
        var ex = Assert.Throws<ArgumentException>(() => TaskValidation.ValidateQueue(queue, "custom"));
        Assert.Equal("custom", ex.ParamName);
    }

    [Fact]
    public void Queue_names_are_limited_to_128_characters_and_not_null()
    {
        TaskValidation.ValidateQueue(new string('a', 128));
        Assert.Throws<ArgumentException>(() => TaskValidation.ValidateQueue(new string('a', 129)));
        Assert.Throws<ArgumentNullException>(() => TaskValidation.ValidateQueue(null));
    }

    [Fact]
    public void Enqueue_rules_name_the_offending_field()
    {
        Assert.Throws<ArgumentNullException>("request", () => TaskValidation.ValidateEnqueue(null, 10));
        Assert.Throws<ArgumentNullException>("Payload", () => TaskValidation.ValidateEnqueue(Ok with { Payload = null! }, 10));
        Assert.Throws<ArgumentException>("Payload", () => TaskValidation.ValidateEnqueue(Ok, 2));
        Assert.Throws<ArgumentException>("IdempotencyKey", () => TaskValidation.ValidateEnqueue(Ok with { IdempotencyKey = "" }, 10));
        Assert.Throws<ArgumentException>("IdempotencyKey", () => TaskValidation.ValidateEnqueue(Ok with { IdempotencyKey = new string('k', 257) }, 10));
        Assert.Throws<ArgumentOutOfRangeException>("MaxAttempts", () => TaskValidation.ValidateEnqueue(Ok with { MaxAttempts = 0 }, 10));
        Assert.Throws<ArgumentException>("Tenant", () => TaskValidation.ValidateEnqueue(Ok with { Tenant = new string('t', 129) }, 10));
        Assert.Throws<ArgumentException>("Headers", () => TaskValidation.ValidateEnqueue(Ok with { Headers = new Dictionary<string, string> { [""] = "x" } }, 10));
        Assert.Throws<ArgumentException>("Headers", () => TaskValidation.ValidateEnqueue(Ok with { Headers = new Dictionary<string, string> { ["h"] = null! } }, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => TaskValidation.ValidateEnqueue(Ok with { RetryPolicy = new RetryPolicy { Jitter = 2 } }, 10));
    }

    [Fact]
    public void Enqueue_accepts_the_limits_themselves()
    {
        TaskValidation.ValidateEnqueue(Ok with { Payload = new byte[10], IdempotencyKey = new string('k', 256), Tenant = new string('t', 128), MaxAttempts = 1 }, 10);
        Assert.Equal(10, new EnqueueRequest("q", []).MaxAttempts);
    }

    [Fact]
    public void A_batch_names_the_bad_request_and_rejects_oversized_batches()
    {
        var ex = Assert.Throws<ArgumentException>(() => TaskValidation.ValidateEnqueueBatch([Ok, Ok, Ok with { MaxAttempts = 0 }], 10));
        Assert.Equal("requests", ex.ParamName);
        Assert.Contains("requests[2]", ex.Message, StringComparison.Ordinal);
        Assert.IsType<ArgumentOutOfRangeException>(ex.InnerException);

        Assert.Throws<ArgumentNullException>(() => TaskValidation.ValidateEnqueueBatch(null, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => TaskValidation.ValidateEnqueueBatch(Enumerable.Repeat(Ok, 10_001).ToList(), 10));
        TaskValidation.ValidateEnqueueBatch(Enumerable.Repeat(Ok, 10_000).ToList(), 10);
    }

    [Fact]
    public void Lease_rules_cover_worker_count_and_duration()
    {
        TaskValidation.ValidateLease("q", "w", 1, TimeSpan.FromTicks(1));
        TaskValidation.ValidateLease("q", new string('w', 128), 1000, TimeSpan.FromDays(1));
        Assert.Throws<ArgumentNullException>("workerId", () => TaskValidation.ValidateLease("q", null, 1, TimeSpan.FromSeconds(1)));
        Assert.Throws<ArgumentException>("workerId", () => TaskValidation.ValidateLease("q", "", 1, TimeSpan.FromSeconds(1)));
        Assert.Throws<ArgumentException>("workerId", () => TaskValidation.ValidateLease("q", new string('w', 129), 1, TimeSpan.FromSeconds(1)));
        Assert.Throws<ArgumentOutOfRangeException>("maxCount", () => TaskValidation.ValidateLease("q", "w", 0, TimeSpan.FromSeconds(1)));
        Assert.Throws<ArgumentOutOfRangeException>("maxCount", () => TaskValidation.ValidateLease("q", "w", 1001, TimeSpan.FromSeconds(1)));
        Assert.Throws<ArgumentOutOfRangeException>("leaseDuration", () => TaskValidation.ValidateLease("q", "w", 1, TimeSpan.Zero));
        Assert.Throws<ArgumentOutOfRangeException>("leaseDuration", () => TaskValidation.ValidateLease("q", "w", 1, TimeSpan.FromDays(1) + TimeSpan.FromTicks(1)));
    }

    [Fact]
    public void Fail_truncates_long_errors_and_rejects_negative_delays()
    {
        var lease = new TaskLease { TaskId = Guid.NewGuid(), Queue = "q", WorkerId = "w", LeaseToken = 1, Attempt = 1, MaxAttempts = 1, ExpiresAt = DateTimeOffset.UtcNow, Payload = [] };

        Assert.Equal("short", TaskValidation.ValidateFail(lease, "short", null));
        Assert.Equal(TaskValidation.MaxErrorLength, TaskValidation.ValidateFail(lease, new string('e', 20_000), null).Length);
        Assert.Throws<ArgumentNullException>(() => TaskValidation.ValidateFail(null, "e", null));
        Assert.Throws<ArgumentNullException>(() => TaskValidation.ValidateFail(lease, null, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => TaskValidation.ValidateFail(lease, "e", new FailOptions { RetryDelay = TimeSpan.FromTicks(-1) }));
        Assert.Equal("e", TaskValidation.ValidateFail(lease, "e", new FailOptions { RetryDelay = TimeSpan.Zero }));
    }

    [Fact]
    public void Query_rules_cover_page_size_time_window_and_queue()
    {
        var now = DateTimeOffset.UtcNow;
        TaskValidation.ValidateQuery(new TaskQuery { EnqueuedFrom = now, EnqueuedTo = now }, new PageRequest(1000));
        Assert.Throws<ArgumentNullException>(() => TaskValidation.ValidateQuery(null, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => TaskValidation.ValidateQuery(new TaskQuery(), new PageRequest(0)));
        Assert.Throws<ArgumentOutOfRangeException>(() => TaskValidation.ValidateQuery(new TaskQuery(), new PageRequest(1001)));
        Assert.Throws<ArgumentException>(() => TaskValidation.ValidateQuery(new TaskQuery { EnqueuedFrom = now, EnqueuedTo = now.AddTicks(-1) }, null));
        Assert.Throws<ArgumentException>(() => TaskValidation.ValidateQuery(new TaskQuery { Queue = "" }, null));
    }

    [Fact]
    public void Purge_defaults_to_every_terminal_state_and_refuses_others()
    {
        Assert.Equal(TaskStateExtensions.TerminalStates, TaskValidation.ValidatePurge(TimeSpan.Zero, null, null));
        Assert.Equal(TaskStateExtensions.TerminalStates, TaskValidation.ValidatePurge(TimeSpan.Zero, [], "q"));
        Assert.Equal([TaskState.Failed], TaskValidation.ValidatePurge(TimeSpan.Zero, [TaskState.Failed], null));
        Assert.Throws<ArgumentException>("states", () => TaskValidation.ValidatePurge(TimeSpan.Zero, [TaskState.Pending], null));
        Assert.Throws<ArgumentException>("states", () => TaskValidation.ValidatePurge(TimeSpan.Zero, [TaskState.Running], null));
        Assert.Throws<ArgumentOutOfRangeException>("olderThan", () => TaskValidation.ValidatePurge(TimeSpan.FromTicks(-1), null, null));
        Assert.Throws<ArgumentException>("queue", () => TaskValidation.ValidatePurge(TimeSpan.Zero, null, "bad queue"));
    }

    [Fact]
    public void Terminal_states_are_succeeded_failed_and_canceled()
    {
        Assert.Equal([TaskState.Succeeded, TaskState.Failed, TaskState.Canceled], Enum.GetValues<TaskState>().Where(s => s.IsTerminal()));
    }

    [Fact]
    public void Error_text_has_nul_and_unpaired_surrogates_replaced()
    {
        // Built in code, not [InlineData]: attribute strings are stored as UTF-8, which cannot carry a lone surrogate.
        (string Error, string Stored)[] cases =
        [
            ("plain", "plain"),
            ("a\0b", "a\uFFFDb"),
            ("\uD800x\uDC00", "\uFFFDx\uFFFD"),
            ("\uDC00\uD800", "\uFFFD\uFFFD"),
            ("ok 😀 end\uD83D", "ok 😀 end\uFFFD"),
        ];

        foreach (var (error, stored) in cases) Assert.Equal(stored, TaskValidation.SanitizeErrorText(error));
    }

    [Fact]
    public void Error_text_is_cut_to_the_limit_without_splitting_a_pair()
    {
        var max = TaskValidation.MaxErrorLength;

        Assert.Equal(new string('e', max), TaskValidation.SanitizeErrorText(new string('e', max + 5)));
        Assert.Equal(new string('e', max - 1), TaskValidation.SanitizeErrorText(new string('e', max - 1) + "😀"));
        Assert.Equal(new string('e', max - 2) + "😀", TaskValidation.SanitizeErrorText(new string('e', max - 2) + "😀!"));
        Assert.Equal(-1, TaskValidation.IndexOfUnstorableChar("ok 😀"));
        Assert.Equal(3, TaskValidation.IndexOfUnstorableChar("ok \uDC00"));
    }
}
