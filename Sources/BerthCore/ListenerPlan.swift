/// One socket the server should have: the pure result of bindings + domains.
public struct ListenerSpec: Sendable, Hashable {
    public struct Key: Sendable, Hashable, CustomStringConvertible {
        public var address: String
        public var port: Int
        public init(address: String, port: Int) {
            self.address = address
            self.port = port
        }
        public var description: String { address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)" }
    }

    public var address: String
    public var family: AddressFamily
    public var source: AddressSource
    public var port: Int
    public var portID: String
    public var portName: String
    public var `protocol`: MailProtocol
    public var encryption: Encryption
    public var tlsRequired: Bool
    /// nil: the server's default certificate (when encryption is not `none`).
    public var certificate: CertificateSource?
    /// The name this listener greets with.
    public var hostname: String
    /// Concurrent connections on this listener; applied in place, no rebind.
    public var maxConnections: Int
    /// Concurrent connections from one client address (IPv6: its /64); applied in place.
    public var maxConnectionsPerClient: Int
    /// Connections start with a PROXY protocol header; applied in place to new connections.
    public var proxyProtocol: Bool

    public init(
        address: String, family: AddressFamily, source: AddressSource, port: Int, portID: String, portName: String,
        protocol: MailProtocol, encryption: Encryption, tlsRequired: Bool, certificate: CertificateSource?,
        hostname: String, maxConnections: Int = Port.defaultMaxConnections,
        maxConnectionsPerClient: Int = Port.defaultMaxConnectionsPerClient, proxyProtocol: Bool = false
    ) {
        self.address = address
        self.family = family
        self.source = source
        self.port = port
        self.portID = portID
        self.portName = portName
        self.protocol = `protocol`
        self.encryption = encryption
        self.tlsRequired = tlsRequired
        self.certificate = certificate
        self.hostname = hostname
        self.maxConnections = maxConnections
        self.maxConnectionsPerClient = maxConnectionsPerClient
        self.proxyProtocol = proxyProtocol
    }

    public var key: Key { Key(address: address, port: port) }

    /// What needs a new socket when it changes; anything else is swapped in place.
    public var socketIdentity: SocketIdentity {
        SocketIdentity(protocol: `protocol`, encryption: encryption)
    }

    public struct SocketIdentity: Sendable, Hashable {
        public var `protocol`: MailProtocol
        public var encryption: Encryption
    }
}

/// The sockets the server should have, and the name each address greets with.
public struct ListenerPlan: Sendable, Hashable {
    public var specs: [ListenerSpec]
    /// Greeting name per address, so that a connection accepted on a wildcard socket
    /// greets with the name of the address it actually reached.
    public var greetingNames: [String: String]

    public init(specs: [ListenerSpec], greetingNames: [String: String] = [:]) {
        self.specs = specs
        self.greetingNames = greetingNames
    }

    /// Every (IP, port) assignment becomes a listener; the greeting name is the IP's
    /// `hostname`, else the name of a domain whose `ipAddress` is that IP, else the server's.
    public static func make(bindings: Bindings, domains: [Domain], serverHostname: String) -> ListenerPlan {
        let portsByID = Dictionary(bindings.ports.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var specs: [ListenerSpec] = []
        var names: [String: String] = [:]
        for entry in bindings.ipAddresses {
            let hostname = entry.hostname
                ?? domains.first(where: { $0.ipAddress == entry.address })?.name
                ?? serverHostname
            names[entry.address] = hostname
            for id in entry.ports {
                guard let port = portsByID[id] else { continue }
                specs.append(ListenerSpec(
                    address: entry.address, family: entry.family, source: entry.source, port: port.port,
                    portID: port.id, portName: port.name, protocol: port.protocol, encryption: port.encryption,
                    tlsRequired: port.tlsRequired, certificate: port.certificateSource, hostname: hostname,
                    maxConnections: port.maxConnections, maxConnectionsPerClient: port.maxConnectionsPerClient,
                    proxyProtocol: port.proxyProtocol))
            }
        }
        return ListenerPlan(specs: specs, greetingNames: names)
    }
}
