namespace Konduit.Cassandra;

/// <summary>Consistency levels of the event log's reads and writes (the native protocol's codes).</summary>
public enum CassandraConsistency : ushort
{
    /// <summary>ANY (writes only): a hint is enough.</summary>
    Any = 0x0000,
    /// <summary>ONE replica.</summary>
    One = 0x0001,
    /// <summary>TWO replicas.</summary>
    Two = 0x0002,
    /// <summary>THREE replicas.</summary>
    Three = 0x0003,
    /// <summary>A quorum of all replicas.</summary>
    Quorum = 0x0004,
    /// <summary>ALL replicas.</summary>
    All = 0x0005,
    /// <summary>A quorum in the local data center.</summary>
    LocalQuorum = 0x0006,
    /// <summary>A quorum in every data center.</summary>
    EachQuorum = 0x0007,
    /// <summary>One replica in the local data center.</summary>
    LocalOne = 0x000A,
}
