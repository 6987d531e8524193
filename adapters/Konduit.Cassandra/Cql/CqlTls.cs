using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Konduit.Cassandra.Cql;

/// <summary>Client-to-node TLS: an <see cref="SslStream"/> over the socket, validated against the system or a given CA.</summary>
internal static class CqlTls
{
    public static async Task<Stream> AuthenticateAsync(Stream inner, CqlSessionOptions options, string host, CancellationToken cancellationToken)
    {
        var authority = options.TlsCertificateAuthorityPath is { } path ? LoadAuthority(path) : null;
        var ssl = new SslStream(inner, leaveInnerStreamOpen: false);
        try
        {
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = options.TlsServerName ?? host,
                RemoteCertificateValidationCallback = authority is null ? null : (_, certificate, _, errors) => IsTrusted(certificate, errors, authority),
            }, cancellationToken).ConfigureAwait(false);
            return ssl;
        }
        catch
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            authority?.Dispose();
            throw;
        }
    }

    private static X509Certificate2 LoadAuthority(string path)
    {
        try
        {
            return X509Certificate2.CreateFromPem(File.ReadAllText(path));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            throw new CqlConnectionException($"The TLS certificate authority file '{path}' could not be read as a PEM certificate: {ex.Message}", ex);
        }
    }

    // A private CA is trusted for this connection only: the chain must end at it, and the name must match, exactly as
    // the system store would require of a public one.
    private static bool IsTrusted(X509Certificate? certificate, SslPolicyErrors errors, X509Certificate2 authority)
    {
        if (certificate is null || (errors & (SslPolicyErrors.RemoteCertificateNotAvailable | SslPolicyErrors.RemoteCertificateNameMismatch)) != 0)
            return false;
        if (errors == SslPolicyErrors.None) return true;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = new X509Certificate2(certificate);
        return chain.Build(leaf);
    }
}
