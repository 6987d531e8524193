using System.IO.Compression;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Xml.Linq;
using Xunit;

namespace Konduit.Architecture.Tests;

/// <summary>
/// The packages <c>scripts/pack.sh</c> wrote to <c>artifacts/packages</c> (scripts/test.sh packs before the tests): one per
/// shipped assembly, with the metadata a user sees on nuget.org, the assembly and its XML docs, a deterministic build and a
/// symbol package with a portable PDB. SourceLink's URL mapping needs a git remote with a host it knows (GitHub and
/// friends); the repository here has none, so it is not verified here.
/// </summary>
public sealed class PackagingTests
{
    public static TheoryData<string> Packages() => [.. DependencyRulesTests.Shipped.Keys.Order(StringComparer.Ordinal)];

    private static string PackagesDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Konduit.sln")))
                return Path.Combine(dir.FullName, "artifacts", "packages");
        throw new InvalidOperationException("Konduit.sln not found above " + AppContext.BaseDirectory);
    }

    private static string Find(string id, string extension)
    {
        var dir = PackagesDirectory();
        var files = Directory.Exists(dir)
            ? Directory.GetFiles(dir, id + ".*" + extension).Where(f => char.IsDigit(Path.GetFileName(f)[id.Length + 1])).ToArray()
            : [];
        Assert.True(files.Length == 1, $"expected one {id}.<version>{extension} in {dir}, found {files.Length}: run `scripts/pack.sh` (scripts/test.sh does) first");
        return files[0];
    }

    [Theory]
    [MemberData(nameof(Packages))]
    public void The_package_has_metadata_docs_and_a_deterministic_assembly(string id)
    {
        using var package = ZipFile.OpenRead(Find(id, ".nupkg"));
        // NuGet picks the nuspec schema version by the features used (2012/06 or 2013/05): take the root's namespace.
        var root = XDocument.Load(package.GetEntry(id + ".nuspec")!.Open()).Root!;
        var ns = root.Name.Namespace;
        var metadata = root.Element(ns + "metadata")!;
        string Field(string name) => metadata.Element(ns + name)?.Value ?? "";

        Assert.Equal(id, Field("id"));
        Assert.True(Field("description").Length >= 30, $"{id}: a description that says what the package is, got '{Field("description")}'");
        Assert.Equal("MIT", Field("license"));
        Assert.Equal("README.md", Field("readme"));
        Assert.NotNull(package.GetEntry("README.md"));
        Assert.Contains("konduit", Field("tags"), StringComparison.Ordinal);
        var repository = metadata.Element(ns + "repository");
        Assert.NotNull(repository);
        Assert.Equal("git", repository.Attribute("type")?.Value);
        Assert.Matches("^[0-9a-f]{40}$", repository.Attribute("commit")?.Value ?? "");

        Assert.NotNull(package.GetEntry($"lib/net10.0/{id}.xml"));
        var dll = package.GetEntry($"lib/net10.0/{id}.dll");
        Assert.NotNull(dll);
        using var copy = new MemoryStream();
        using (var stream = dll.Open()) stream.CopyTo(copy);
        copy.Position = 0;
        using var pe = new PEReader(copy);
        var debug = pe.ReadDebugDirectory();
        Assert.Contains(debug, d => d.Type == DebugDirectoryEntryType.Reproducible); // a deterministic build
        Assert.Contains(debug, d => d.Type == DebugDirectoryEntryType.CodeView && d.IsPortableCodeView);
    }

    [Theory]
    [MemberData(nameof(Packages))]
    public void The_symbol_package_has_the_portable_pdb_of_the_packed_assembly(string id)
    {
        using var symbols = ZipFile.OpenRead(Find(id, ".snupkg"));
        var entry = symbols.GetEntry($"lib/net10.0/{id}.pdb");
        Assert.NotNull(entry);
        using var pdbCopy = new MemoryStream();
        using (var stream = entry.Open()) stream.CopyTo(pdbCopy);
        pdbCopy.Position = 0;
        using var provider = MetadataReaderProvider.FromPortablePdbStream(pdbCopy);
        var pdb = provider.GetMetadataReader();
        Assert.True(pdb.Documents.Count > 0, $"{id}.pdb lists the source documents");

        // The PDB belongs to the packed DLL: same PDB id in the DLL's CodeView entry.
        using var package = ZipFile.OpenRead(Find(id, ".nupkg"));
        using var dllCopy = new MemoryStream();
        using (var stream = package.GetEntry($"lib/net10.0/{id}.dll")!.Open()) stream.CopyTo(dllCopy);
        dllCopy.Position = 0;
        using var pe = new PEReader(dllCopy);
        var codeView = pe.ReadCodeViewDebugDirectoryData(pe.ReadDebugDirectory().First(d => d.Type == DebugDirectoryEntryType.CodeView));
        var pdbId = new BlobContentId(pdb.DebugMetadataHeader!.Id);
        Assert.Equal(codeView.Guid, pdbId.Guid);
    }
}
