using System.Text;

namespace Konduit.Cassandra.Cql;

/// <summary>Consistency levels, with their wire codes (native protocol §3, [consistency]).</summary>
internal enum CqlConsistency : ushort
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
    /// <summary>SERIAL: for the Paxos phase of conditional updates.</summary>
    Serial = 0x0008,
    /// <summary>LOCAL_SERIAL: SERIAL within the local data center.</summary>
    LocalSerial = 0x0009,
    /// <summary>One replica in the local data center.</summary>
    LocalOne = 0x000A,
}

/// <summary>Column type ids of the [option] notation (§4.2.5.2).</summary>
internal enum CqlTypeCode : ushort
{
    /// <summary>A custom (Java class name) type.</summary>
    Custom = 0x0000,
    /// <summary>ascii.</summary>
    Ascii = 0x0001,
    /// <summary>bigint.</summary>
    Bigint = 0x0002,
    /// <summary>blob.</summary>
    Blob = 0x0003,
    /// <summary>boolean.</summary>
    Boolean = 0x0004,
    /// <summary>counter.</summary>
    Counter = 0x0005,
    /// <summary>decimal.</summary>
    Decimal = 0x0006,
    /// <summary>double.</summary>
    Double = 0x0007,
    /// <summary>float.</summary>
    Float = 0x0008,
    /// <summary>int.</summary>
    Int = 0x0009,
    /// <summary>timestamp.</summary>
    Timestamp = 0x000B,
    /// <summary>uuid.</summary>
    Uuid = 0x000C,
    /// <summary>varchar (text).</summary>
    Varchar = 0x000D,
    /// <summary>varint.</summary>
    Varint = 0x000E,
    /// <summary>timeuuid.</summary>
    Timeuuid = 0x000F,
    /// <summary>inet.</summary>
    Inet = 0x0010,
    /// <summary>date (v4).</summary>
    Date = 0x0011,
    /// <summary>time (v4).</summary>
    Time = 0x0012,
    /// <summary>smallint (v4).</summary>
    Smallint = 0x0013,
    /// <summary>tinyint (v4).</summary>
    Tinyint = 0x0014,
    /// <summary>list&lt;T&gt;.</summary>
    List = 0x0020,
    /// <summary>map&lt;K,V&gt;.</summary>
    Map = 0x0021,
    /// <summary>set&lt;T&gt;.</summary>
    Set = 0x0022,
    /// <summary>A user-defined type.</summary>
    Udt = 0x0030,
    /// <summary>A tuple.</summary>
    Tuple = 0x0031,
}

/// <summary>A column or bind-marker type as the server describes it.</summary>
internal sealed class CqlColumnType : IEquatable<CqlColumnType>
{
    private static readonly CqlColumnType[] NoArguments = [];

    internal CqlColumnType(CqlTypeCode code, IReadOnlyList<CqlColumnType>? arguments = null, string? name = null)
    {
        Code = code;
        Arguments = arguments ?? NoArguments;
        Name = name;
    }

    /// <summary>The type id.</summary>
    public CqlTypeCode Code { get; }

    /// <summary>Element types: one for list and set, key and value for map, the components of a tuple or UDT.</summary>
    public IReadOnlyList<CqlColumnType> Arguments { get; }

    /// <summary>The class name of a custom type, or keyspace.name of a UDT; null otherwise.</summary>
    public string? Name { get; }

    internal static CqlColumnType Of(CqlTypeCode code) => new(code);

    internal static CqlColumnType Custom(string className) => new(CqlTypeCode.Custom, null, className);

    internal static CqlColumnType ListOf(CqlColumnType element) => new(CqlTypeCode.List, [element]);

    internal static CqlColumnType MapOf(CqlColumnType key, CqlColumnType value) => new(CqlTypeCode.Map, [key, value]);

    /// <inheritdoc />
    public bool Equals(CqlColumnType? other) =>
        other is not null && other.Code == Code && other.Name == Name && other.Arguments.SequenceEqual(Arguments);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as CqlColumnType);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Code, Name, Arguments.Count);

    /// <summary>The CQL spelling, such as <c>map&lt;varchar, varchar&gt;</c>.</summary>
    public override string ToString() => Code switch
    {
        CqlTypeCode.Custom => $"'{Name}'",
        CqlTypeCode.Udt => Name ?? "udt",
        CqlTypeCode.List or CqlTypeCode.Set or CqlTypeCode.Map or CqlTypeCode.Tuple =>
            new StringBuilder(Code.ToString().ToLowerInvariant()).Append('<')
                .AppendJoin(", ", Arguments.Select(a => a.ToString())).Append('>').ToString(),
        _ => Code.ToString().ToLowerInvariant(),
    };
}

/// <summary>A result column or a bind marker: where it comes from, its name and its type.</summary>
/// <param name="Keyspace">The keyspace.</param>
/// <param name="Table">The table.</param>
/// <param name="Name">The column (or bind marker) name.</param>
/// <param name="Type">The type.</param>
internal sealed record CqlColumn(string Keyspace, string Table, string Name, CqlColumnType Type);

/// <summary>A bound value that leaves the column unchanged ("unset", protocol v4 only; v3 refuses it).</summary>
internal sealed class CqlUnset
{
    private CqlUnset() { }

    /// <summary>The single unset marker.</summary>
    public static CqlUnset Value { get; } = new();
}

/// <summary>The kind of a RESULT message (§4.2.5).</summary>
internal enum CqlResultKind
{
    /// <summary>No information (most writes).</summary>
    Void = 0x0001,
    /// <summary>A page of rows.</summary>
    Rows = 0x0002,
    /// <summary>The answer to USE.</summary>
    SetKeyspace = 0x0003,
    /// <summary>The answer to PREPARE.</summary>
    Prepared = 0x0004,
    /// <summary>A schema-altering statement's result.</summary>
    SchemaChange = 0x0005,
}

/// <summary>What a schema-altering statement changed (§4.2.5.5, §4.2.6).</summary>
/// <param name="ChangeType">CREATED, UPDATED or DROPPED.</param>
/// <param name="Target">KEYSPACE, TABLE, TYPE, FUNCTION or AGGREGATE.</param>
/// <param name="Keyspace">The keyspace.</param>
/// <param name="Name">The table, type, function or aggregate name; empty for a keyspace.</param>
/// <param name="ArgumentTypes">A function's or aggregate's argument types (v4); empty otherwise.</param>
internal sealed record CqlSchemaChange(
    string ChangeType, string Target, string Keyspace, string Name, IReadOnlyList<string> ArgumentTypes);

/// <summary>The result of one request (for rows, the first page only: page through with <see cref="CqlSession.QueryAsync(string, IReadOnlyList{object?}?, CqlQueryOptions?, CancellationToken)"/>).</summary>
internal sealed class CqlResult
{
    internal CqlResult(CqlResultKind kind) => Kind = kind;

    /// <summary>The result kind.</summary>
    public CqlResultKind Kind { get; }

    /// <summary>The rows of this page (empty unless <see cref="Kind"/> is <see cref="CqlResultKind.Rows"/>).</summary>
    public IReadOnlyList<CqlRow> Rows { get; internal init; } = [];

    /// <summary>The result columns, when the server sent them.</summary>
    public IReadOnlyList<CqlColumn> Columns { get; internal init; } = [];

    /// <summary>The paging state to fetch the next page; null on the last page.</summary>
    public byte[]? PagingState { get; internal init; }

    /// <summary>The keyspace a USE statement set.</summary>
    public string? Keyspace { get; internal init; }

    /// <summary>What a schema-altering statement changed.</summary>
    public CqlSchemaChange? SchemaChange { get; internal init; }

    /// <summary>Warnings the server attached to the response (v4).</summary>
    public IReadOnlyList<string> Warnings { get; internal set; } = [];

    /// <summary>The tracing session of a request sent with <see cref="CqlQueryOptions.Tracing"/>; null otherwise.</summary>
    public Guid? TracingId { get; internal set; }

    internal CqlPreparedStatement? Prepared { get; init; }
}

/// <summary>One row: values by position or column name, decoded by the column's type.</summary>
internal sealed class CqlRow
{
    private readonly CqlRowMetadata _metadata;
    private readonly object?[] _values;

    internal CqlRow(CqlRowMetadata metadata, object?[] values)
    {
        _metadata = metadata;
        _values = values;
    }

    /// <summary>The columns, in order.</summary>
    public IReadOnlyList<CqlColumn> Columns => _metadata.Columns;

    /// <summary>The number of values.</summary>
    public int Count => _values.Length;

    /// <summary>The decoded value at <paramref name="index"/> (null for a null cell).</summary>
    public object? this[int index] => _values[index];

    /// <summary>The decoded value of the column named <paramref name="name"/>.</summary>
    public object? this[string name] => _values[_metadata.IndexOf(name)];

    /// <summary>Whether the value at <paramref name="index"/> is null.</summary>
    public bool IsNull(int index) => _values[index] is null;

    /// <summary>Whether the value of column <paramref name="name"/> is null.</summary>
    public bool IsNull(string name) => _values[_metadata.IndexOf(name)] is null;

    /// <summary>The value at <paramref name="index"/> as <typeparamref name="T"/>.</summary>
    /// <exception cref="InvalidCastException">The value is null and <typeparamref name="T"/> cannot hold null, or has another type.</exception>
    public T Get<T>(int index) => Convert<T>(_values[index], index);

    /// <summary>The value of column <paramref name="name"/> as <typeparamref name="T"/>.</summary>
    /// <exception cref="InvalidCastException">The value is null and <typeparamref name="T"/> cannot hold null, or has another type.</exception>
    public T Get<T>(string name) => Get<T>(_metadata.IndexOf(name));

    private T Convert<T>(object? value, int index)
    {
        switch (value)
        {
            case null when default(T) is null:
                return default!;
            case null:
                throw new InvalidCastException($"Column '{Columns[index].Name}' is null; read it as {typeof(T).Name}? instead.");
            case T typed:
                return typed;
            case DateTimeOffset offset when typeof(T) == typeof(DateTime) || typeof(T) == typeof(DateTime?):
                return (T)(object)offset.UtcDateTime;
            default:
                throw new InvalidCastException(
                    $"Column '{Columns[index].Name}' ({Columns[index].Type}) holds {value.GetType().Name}, not {typeof(T).Name}.");
        }
    }
}

/// <summary>Result metadata shared by the rows of one page.</summary>
internal sealed class CqlRowMetadata
{
    private readonly Dictionary<string, int> _byName;

    public CqlRowMetadata(IReadOnlyList<CqlColumn> columns)
    {
        Columns = columns;
        _byName = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < columns.Count; i++)
            _byName.TryAdd(columns[i].Name, i);
    }

    public IReadOnlyList<CqlColumn> Columns { get; }

    public int IndexOf(string name) => _byName.TryGetValue(name, out var index)
        ? index
        : throw new ArgumentException($"No column named '{name}' in this result.", nameof(name));
}
