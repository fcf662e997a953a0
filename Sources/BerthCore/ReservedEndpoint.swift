/// An (address, port) the server itself listens on outside the bindings: the admin API.
/// No port may be bound over it — a mail listener that took it first at start would keep
/// the admin API from starting, and the admin out of the server.
public struct ReservedEndpoint: Sendable, Hashable {
    /// Canonical IP literals (a wildcard covers its family); `localhost` stands for both
    /// loopbacks.
    public var addresses: [String]
    public var port: Int
    /// Who holds it, for the messages: e.g. "the admin API (--admin 127.0.0.1:8080)".
    public var owner: String

    /// `host` as `--admin` gives it; nil when it is a name other than localhost (what it
    /// resolves to is not known here, and nothing is reserved).
    public init?(host: String, port: Int, owner: String) {
        if host.lowercased() == "localhost" {
            addresses = ["127.0.0.1", "::1"]
        } else if let canonical = IPLiteral.canonical(host) {
            addresses = [canonical.address]
        } else {
            return nil
        }
        self.port = port
        self.owner = owner
    }

    /// Whether a socket on (`address`, `port`) would take this endpoint's socket: the same
    /// number and the same address, or a wildcard of the family on either side.
    public func conflicts(address: String, port: Int) -> Bool {
        guard port == self.port, let other = IPLiteral.canonical(address) else { return false }
        return addresses.contains { mine in
            guard let reserved = IPLiteral.canonical(mine), reserved.family == other.family else { return false }
            return reserved.address == other.address || Self.isWildcard(reserved.address) || Self.isWildcard(other.address)
        }
    }

    /// A change that would listen on the endpoint is refused, naming the port and address.
    public func check(_ bindings: Bindings) throws {
        for entry in bindings.ipAddresses {
            for id in entry.ports {
                guard let port = bindings.port(id), conflicts(address: entry.address, port: port.port) else { continue }
                throw BindingsError(
                    .portConflict,
                    "port '\(port.name)' cannot listen on \(entry.address) port \(port.port): that is \(owner); choose another port number",
                    field: "port")
            }
        }
    }

    static func isWildcard(_ address: String) -> Bool { address == "0.0.0.0" || address == "::" }
}
