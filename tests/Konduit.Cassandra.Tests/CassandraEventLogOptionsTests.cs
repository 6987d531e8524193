namespace Konduit.Cassandra.Tests;

public sealed class CassandraEventLogOptionsTests
{
    [Theory]
    [InlineData("{'class': 'SimpleStrategy', 'replication_factor': 1}")]
    [InlineData("{'class': 'NetworkTopologyStrategy', 'dc-east': 3, 'dc_west': '2'}")]
    [InlineData("{'class':'org.apache.cassandra.locator.SimpleStrategy','replication_factor':3}")]
    public void Replication_accepts_plain_map_literals(string replication)
    {
        var options = new CassandraTaskEventLogOptions { Replication = replication };
        options.Validate();
    }

    [Theory]
    [InlineData("")]
    [InlineData("SimpleStrategy")]
    [InlineData("{'class': 'SimpleStrategy', 'replication_factor': 1}; DROP KEYSPACE konduit")]
    [InlineData("{'class': 'SimpleStrategy', 'replication_factor': 1} AND durable_writes = false")]
    [InlineData("{'class': 'Simple''Strategy', 'replication_factor': 1}")]
    [InlineData("{'class': 'SimpleStrategy' -- comment\n}")]
    [InlineData("{'class': 'SimpleStrategy', 'replication_factor': 1 /* x */}")]
    public void Replication_refuses_anything_but_a_plain_map_literal(string replication)
    {
        var options = new CassandraTaskEventLogOptions { Replication = replication };
        var ex = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Equal(nameof(CassandraTaskEventLogOptions.Replication), ex.ParamName);
    }
}
