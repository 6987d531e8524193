using System.Net;
using System.Net.Sockets;

namespace Konduit.Tests.Shared;

/// <summary>Free loopback ports for the private servers tests start (each suite keeps to a range of its own).</summary>
internal static class LoopbackPorts
{
    /// <summary>The first of <paramref name="candidates"/> nothing listens on now (a server may still take it before ours binds).</summary>
    /// <param name="candidates">Ports to try, in order.</param>
    /// <param name="purpose">What the port is for, named in the error when none is free.</param>
    public static int FirstFree(IEnumerable<int> candidates, string purpose)
    {
        foreach (var port in candidates)
        {
            try
            {
                var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                listener.Stop();
                return port;
            }
            catch (SocketException)
            {
                // Taken: try the next one.
            }
        }
        throw new InvalidOperationException($"no free loopback port for {purpose}");
    }
}
