import NIOCore

/// DNS limits and defaults, each with the RFC that sets it.
public enum DNSLimits {
    /// RFC 1035 §4.2.1: the header is 12 octets.
    public static let headerLength = 12
    /// RFC 1035 §2.3.4: a name is at most 255 octets on the wire.
    public static let nameLength = 255
    /// RFC 1035 §2.3.4: a label is at most 63 octets.
    public static let labelLength = 63
    /// RFC 1035 §4.1.4 allows a pointer only to a prior occurrence; a name of 255 octets has
    /// at most 127 labels, and real names use one or two pointers. Past this the name is refused.
    public static let compressionPointers = 32
    /// RFC 6891 §6.2.5 and the DNS Flag Day 2020: the UDP payload size advertised in EDNS0,
    /// small enough to avoid IP fragmentation.
    public static let advertisedUDPPayload: UInt16 = 1232
    /// The largest UDP datagram read as a response; anything longer is refused, not parsed.
    public static let udpResponseSize = 4096
    /// RFC 1035 §4.2.2: a TCP message carries a 2-octet length, so at most 65535 octets.
    public static let tcpResponseSize = 65535
    /// RFC 1034 §3.6.2 lets CNAMEs chain; more links than this are treated as a loop.
    public static let cnameLinks = 8
    /// The per-try timeout of glibc's resolver (resolv.conf(5) `options timeout`, default 5;
    /// Berth waits less because delivery retries later anyway).
    public static let defaultTimeout = TimeAmount.seconds(3)
    /// How many times the list of servers is tried (resolv.conf(5) `options attempts`, default 2).
    public static let rounds = 2
    /// RFC 1035 §4.2.1: DNS servers listen on port 53.
    public static let port = 53
    /// Entries the answer cache holds at most.
    public static let cacheEntries = 4096
    /// RFC 2308 §5: negative answers are cached for min(SOA TTL, SOA MINIMUM); Berth caps it
    /// so a domain being set up is seen soon.
    public static let negativeCacheTTL: UInt32 = 60
    /// RFC 8767 §4 suggests capping positive TTLs too; a day is its example, an hour is
    /// enough for mail delivery and bounds staleness after a server move.
    public static let positiveCacheTTL: UInt32 = 3600
}
