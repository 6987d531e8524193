using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace Konduit.Kafka.Tests;

/// <summary>
/// librdkafka's mock cluster (a Kafka-protocol broker librdkafka's own tests use), started in this process through its
/// C API (issue 12). Its listeners are TCP ports on 127.0.0.1, so Confluent.Kafka clients, other processes and kcat
/// connect to it like to a broker. Never call CreateTopics/DeleteTopics (they hang on the mock) or
/// ListConsumerGroups (it crashes the process on the next admin call): topics are created with <see cref="CreateTopic"/>.
/// </summary>
internal sealed partial class MockKafkaCluster : IDisposable
{
    private const string Library = "librdkafka";
    private readonly IntPtr _client;
    private readonly IntPtr _cluster;
    private int _disposed;

    static MockKafkaCluster()
    {
        // Confluent.Kafka finds its own build (its explicit Library.Load(path) needs libdl.so, which Debian 12 only
        // ships as libdl.so.2); these P/Invokes need the resolver.
        NativeLibrary.SetDllImportResolver(typeof(MockKafkaCluster).Assembly, Resolve);
    }

    public MockKafkaCluster(int brokers)
    {
        var conf = rd_kafka_conf_new();
        var error = new byte[512];
        // A producer handle only hosts the cluster; it never produces.
        _client = rd_kafka_new(0, conf, error, (nuint)error.Length);
        if (_client == IntPtr.Zero) throw new InvalidOperationException("rd_kafka_new failed: " + Encoding.UTF8.GetString(error).TrimEnd('\0'));
        _cluster = rd_kafka_mock_cluster_new(_client, brokers);
        if (_cluster == IntPtr.Zero) throw new InvalidOperationException("rd_kafka_mock_cluster_new failed");
        // Groups form at once instead of after the broker's initial rebalance delay (3 s).
        rd_kafka_mock_group_initial_rebalance_delay_ms(_cluster, 0);
        BootstrapServers = Marshal.PtrToStringUTF8(rd_kafka_mock_cluster_bootstraps(_cluster))!;
        Brokers = brokers;
    }

    /// <summary>The listeners, <c>127.0.0.1:port,…</c>.</summary>
    public string BootstrapServers { get; }

    public int Brokers { get; }

    /// <summary>The librdkafka file loaded: the package's main build needs libsasl2.so.3 (not on Debian 12), so the centos8 build is the fallback.</summary>
    public static string NativePath { get; } = FindNative();

    public void CreateTopic(string topic, int partitions, int replicationFactor)
    {
        var err = rd_kafka_mock_topic_create(_cluster, topic, partitions, replicationFactor);
        if (err != 0) throw new InvalidOperationException($"rd_kafka_mock_topic_create({topic}) failed: error {err}");
    }

    /// <summary>Stops broker <paramref name="brokerId"/> (1-based) answering, as if it went down.</summary>
    public void SetBrokerDown(int brokerId) => Check(rd_kafka_mock_broker_set_down(_cluster, brokerId), "set_down");

    public void SetBrokerUp(int brokerId) => Check(rd_kafka_mock_broker_set_up(_cluster, brokerId), "set_up");

    /// <summary>Makes broker <paramref name="brokerId"/> the coordinator of consumer group <paramref name="group"/> (the mock never moves it).</summary>
    public void SetGroupCoordinator(string group, int brokerId)
    {
        var err = rd_kafka_mock_coordinator_set(_cluster, "group", group, brokerId);
        if (err != 0) throw new InvalidOperationException($"rd_kafka_mock_coordinator_set failed: error {err}");
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        rd_kafka_mock_cluster_destroy(_cluster);
        rd_kafka_destroy(_client);
    }

    private static void Check(int err, string what)
    {
        if (err != 0) throw new InvalidOperationException($"rd_kafka_mock_broker_{what} failed: error {err}");
    }

    private static string FindNative()
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native");
        var main = Path.Combine(dir, "librdkafka.so");
        if (NativeLibrary.TryLoad(main, out var handle))
        {
            NativeLibrary.Free(handle);
            return main;
        }
        var centos8 = Path.Combine(dir, "centos8-librdkafka.so");
        if (!File.Exists(centos8)) throw new FileNotFoundException("Neither librdkafka.so (needs libsasl2.so.3) nor centos8-librdkafka.so loads from " + dir);
        return centos8;
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? path) =>
        name == Library ? NativeLibrary.Load(NativePath) : IntPtr.Zero;

    [LibraryImport(Library)]
    private static partial IntPtr rd_kafka_conf_new();

    [LibraryImport(Library)]
    private static partial IntPtr rd_kafka_new(int type, IntPtr conf, [Out] byte[] errstr, nuint errstrSize);

    [LibraryImport(Library)]
    private static partial void rd_kafka_destroy(IntPtr rk);

    [LibraryImport(Library)]
    private static partial IntPtr rd_kafka_mock_cluster_new(IntPtr rk, int brokerCount);

    [LibraryImport(Library)]
    private static partial void rd_kafka_mock_cluster_destroy(IntPtr cluster);

    [LibraryImport(Library)]
    private static partial IntPtr rd_kafka_mock_cluster_bootstraps(IntPtr cluster);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int rd_kafka_mock_topic_create(IntPtr cluster, string topic, int partitions, int replicationFactor);

    [LibraryImport(Library)]
    private static partial int rd_kafka_mock_broker_set_down(IntPtr cluster, int brokerId);

    [LibraryImport(Library)]
    private static partial int rd_kafka_mock_broker_set_up(IntPtr cluster, int brokerId);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int rd_kafka_mock_coordinator_set(IntPtr cluster, string keyType, string key, int brokerId);

    [LibraryImport(Library)]
    private static partial void rd_kafka_mock_group_initial_rebalance_delay_ms(IntPtr cluster, int delayMs);
}
