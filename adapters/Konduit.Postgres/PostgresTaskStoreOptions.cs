using System.Text.RegularExpressions;

namespace Konduit.Postgres;

/// <summary>Settings of a <see cref="PostgresTaskStore"/>.</summary>
public sealed partial class PostgresTaskStoreOptions : TaskStoreOptions
{
    /// <summary>
    /// The Npgsql connection string. Required unless an <c>NpgsqlDataSource</c> is passed to the store's
    /// constructor, in which case it is ignored. The store's own data source skips Npgsql's reset of returned pooled
    /// connections (<c>No Reset On Close=true</c>) unless this string sets that keyword itself: the store leaves no
    /// session state behind, and the reset cost server time on every call.
    /// </summary>
    public string? ConnectionString { get; set; }

    /// <summary>
    /// The schema that holds Konduit's tables (default <c>konduit</c>): a plain lowercase identifier,
    /// <c>[a-z_][a-z0-9_]{0,62}</c>. Create it with <see cref="PostgresTaskStore.MigrateAsync"/>.
    /// </summary>
    public string Schema { get; set; } = "konduit";

    /// <summary>
    /// The role the store runs as, when that role has no DDL rights (least privilege): every
    /// <see cref="PostgresTaskStore.MigrateAsync"/>, run by a role that owns the schema, then grants this role exactly
    /// what the store needs at run time (USAGE on the schema; SELECT, INSERT, UPDATE, DELETE on its tables). The
    /// runtime role itself may call <c>MigrateAsync</c> on an up-to-date schema: it then changes nothing. Default
    /// <see langword="null"/>: no grants. Same identifier rules as <see cref="Schema"/>.
    /// </summary>
    public string? RuntimeRole { get; set; }

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        ArgumentNullException.ThrowIfNull(Schema, nameof(Schema));
        if (!SchemaPattern().IsMatch(Schema))
            throw new ArgumentException(
                $"Schema '{Schema}' is not a plain identifier: use 1–63 characters of [a-z0-9_], not starting with a digit.",
                nameof(Schema));
        if (RuntimeRole is not null && !SchemaPattern().IsMatch(RuntimeRole))
            throw new ArgumentException(
                $"RuntimeRole '{RuntimeRole}' is not a plain identifier: use 1–63 characters of [a-z0-9_], not starting with a digit.",
                nameof(RuntimeRole));
    }

    [GeneratedRegex(@"^[a-z_][a-z0-9_]{0,62}\z", RegexOptions.CultureInvariant)]
    private static partial Regex SchemaPattern();
}
