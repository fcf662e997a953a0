public enum AddressFamily: String, Codable, Sendable, Hashable {
    case ipv4, ipv6
}

public enum AddressSource: String, Codable, Sendable, Hashable {
    /// Found on one of the host's interfaces.
    case interface
    /// `0.0.0.0` or `::`.
    case wildcard
    /// Added by the admin (e.g. an address a failover will bring up later).
    case manual
}

/// One of the server's IP addresses and the ports it listens on.
public struct IPAddressEntry: Codable, Sendable, Hashable {
    /// Canonical text form; the key.
    public var address: String
    public var family: AddressFamily
    @NullEncoded public var interface: String?
    public var source: AddressSource
    public var present: Bool
    /// The name this IP answers with (greetings, EHLO reply); nil falls back to the server's.
    @NullEncoded public var hostname: String?
    public var description: String
    /// Ids of the ports this IP listens on.
    public var ports: [String]

    public init(
        address: String, family: AddressFamily, interface: String? = nil, source: AddressSource,
        present: Bool, hostname: String? = nil, description: String = "", ports: [String] = []
    ) {
        self.address = address
        self.family = family
        self.interface = interface
        self.source = source
        self.present = present
        self.hostname = hostname
        self.description = description
        self.ports = ports
    }

    public var isWildcard: Bool { source == .wildcard }

    public static let wildcards: [IPAddressEntry] = [
        IPAddressEntry(address: "0.0.0.0", family: .ipv4, source: .wildcard, present: true),
        IPAddressEntry(address: "::", family: .ipv6, source: .wildcard, present: true),
    ]
}
