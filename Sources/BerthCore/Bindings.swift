/// The whole network face of the server: ports and the IP addresses they are assigned to.
/// Changes are pure functions on a copy; `Validation.validate` then checks the copy whole.
public struct Bindings: Codable, Sendable, Hashable {
    public var ports: [Port]
    public var ipAddresses: [IPAddressEntry]

    public init(ports: [Port] = [], ipAddresses: [IPAddressEntry] = []) {
        self.ports = ports
        self.ipAddresses = ipAddresses
    }

    public func port(_ id: String) -> Port? { ports.first { $0.id == id } }

    public func entry(_ address: String) -> IPAddressEntry? {
        ipAddresses.first { $0.address == address }
    }

    /// Addresses a port is assigned to, in list order.
    public func assignedTo(_ portID: String) -> [String] {
        ipAddresses.filter { $0.ports.contains(portID) }.map(\.address)
    }

    /// BINDINGS.md rule 2 and friends: what deserves the admin's eye but is legal.
    /// `allowPlaintextAuth` is the server's `--allow-plaintext-auth`.
    public func warnings(for port: Port, allowPlaintextAuth: Bool = false) -> [String] {
        var warnings: [String] = []
        let assigned = ipAddresses.filter { $0.ports.contains(port.id) }
        if assigned.isEmpty {
            warnings.append("assigned to no IP address: nothing listens on port \(port.port)")
        } else if assigned.allSatisfy({ !$0.present }) {
            warnings.append("assigned only to addresses not present on any interface")
        }
        if port.protocol == .submission && port.encryption == .none {
            if allowPlaintextAuth {
                warnings.append("submission without TLS: passwords cross the network in clear (the server runs with --allow-plaintext-auth)")
            } else {
                warnings.append("submission without TLS: AUTH is offered only over TLS, so clients cannot send through this port")
            }
        }
        return warnings
    }
}

/// A change to one port: nil fields stay as they are. Empty strings clear optional paths.
public struct PortPatch: Codable, Sendable, Hashable {
    public var name: String?
    public var `protocol`: MailProtocol?
    public var encryption: Encryption?
    public var tlsRequired: Bool?
    public var port: Int?
    public var certificatePath: String?
    public var privateKeyPath: String?
    public var certificatePassword: String?
    public var description: String?
    /// Addresses to assign the port to (replacing its assignments), in the same commit.
    public var assignedTo: [String]?
    public var maxConnections: Int?
    public var maxConnectionsPerClient: Int?
    public var proxyProtocol: Bool?

    public init(
        name: String? = nil, protocol: MailProtocol? = nil, encryption: Encryption? = nil,
        tlsRequired: Bool? = nil, port: Int? = nil, certificatePath: String? = nil,
        privateKeyPath: String? = nil, certificatePassword: String? = nil, description: String? = nil,
        assignedTo: [String]? = nil, maxConnections: Int? = nil, maxConnectionsPerClient: Int? = nil,
        proxyProtocol: Bool? = nil
    ) {
        self.name = name
        self.protocol = `protocol`
        self.encryption = encryption
        self.tlsRequired = tlsRequired
        self.port = port
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.certificatePassword = certificatePassword
        self.description = description
        self.assignedTo = assignedTo
        self.maxConnections = maxConnections
        self.maxConnectionsPerClient = maxConnectionsPerClient
        self.proxyProtocol = proxyProtocol
    }

    /// An explicit `null` for an optional path clears it, like "" does; an absent key
    /// leaves it as it is.
    public init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func clearable(_ key: CodingKeys) throws -> String? {
            guard container.contains(key) else { return nil }
            return try container.decodeNil(forKey: key) ? "" : container.decode(String.self, forKey: key)
        }
        name = try container.decodeIfPresent(String.self, forKey: .name)
        self.protocol = try container.decodeIfPresent(MailProtocol.self, forKey: .protocol)
        encryption = try container.decodeIfPresent(Encryption.self, forKey: .encryption)
        tlsRequired = try container.decodeIfPresent(Bool.self, forKey: .tlsRequired)
        port = try container.decodeIfPresent(Int.self, forKey: .port)
        certificatePath = try clearable(.certificatePath)
        privateKeyPath = try clearable(.privateKeyPath)
        certificatePassword = try clearable(.certificatePassword)
        description = try container.decodeIfPresent(String.self, forKey: .description)
        assignedTo = try container.decodeIfPresent([String].self, forKey: .assignedTo)
        maxConnections = try container.decodeIfPresent(Int.self, forKey: .maxConnections)
        maxConnectionsPerClient = try container.decodeIfPresent(Int.self, forKey: .maxConnectionsPerClient)
        proxyProtocol = try container.decodeIfPresent(Bool.self, forKey: .proxyProtocol)
    }

    /// The patch with relative certificate and key paths made absolute against `directory`
    /// (and `.`/`..` resolved), so that what is stored does not depend on a working
    /// directory. Empty strings (clearing) stay empty.
    public func resolvingPaths(against directory: String) -> PortPatch {
        var patch = self
        patch.certificatePath = certificatePath.map { FilePath.absolute($0, against: directory) }
        patch.privateKeyPath = privateKeyPath.map { FilePath.absolute($0, against: directory) }
        return patch
    }
}

/// Path arithmetic without touching the disk.
public enum FilePath {
    /// `path` made absolute against `directory` (itself absolute), with `.` and `..`
    /// components and repeated slashes resolved. Empty stays empty.
    public static func absolute(_ path: String, against directory: String) -> String {
        guard !path.isEmpty else { return path }
        let joined = path.hasPrefix("/") ? path : directory + "/" + path
        var parts: [Substring] = []
        for component in joined.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".": continue
            case "..": if !parts.isEmpty { parts.removeLast() }
            default: parts.append(component)
            }
        }
        return "/" + parts.joined(separator: "/")
    }
}

/// A change to one IP address entry.
public struct AddressPatch: Codable, Sendable, Hashable {
    public var ports: [String]?
    public var hostname: String?
    public var description: String?

    public init(ports: [String]? = nil, hostname: String? = nil, description: String? = nil) {
        self.ports = ports
        self.hostname = hostname
        self.description = description
    }

    /// Port ids may be JSON strings or whole numbers; unknown keys are refused.
    public init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        ports = try container.decodeIfPresent([PortID].self, forKey: .ports)?.map(\.value)
        hostname = try container.decodeIfPresent(String.self, forKey: .hostname)
        description = try container.decodeIfPresent(String.self, forKey: .description)
    }
}

extension Bindings {
    /// Adds a port built from `patch` (name, protocol, encryption and port are required).
    @discardableResult
    public mutating func addPort(id: String, _ patch: PortPatch) throws -> Port {
        guard let name = patch.name else { throw BindingsError.invalid("name", "name is required") }
        guard let proto = patch.protocol else {
            throw BindingsError.invalid("protocol", "protocol is required (smtp, submission, imap, pop, ldap)")
        }
        guard let number = patch.port else { throw BindingsError.invalid("port", "port is required (1–65535)") }
        let encryption = patch.encryption ?? .none
        let port = Port(
            id: id, name: name.trimmingWhitespace, protocol: proto, encryption: encryption,
            tlsRequired: patch.tlsRequired, port: number,
            certificatePath: patch.certificatePath.nonEmpty, privateKeyPath: patch.privateKeyPath.nonEmpty,
            certificatePassword: patch.certificatePassword.nonEmpty, description: patch.description ?? "",
            maxConnections: patch.maxConnections ?? Port.defaultMaxConnections,
            maxConnectionsPerClient: patch.maxConnectionsPerClient ?? Port.defaultMaxConnectionsPerClient,
            proxyProtocol: patch.proxyProtocol ?? false)
        ports.append(port)
        if let addresses = patch.assignedTo { try assign(portID: id, to: addresses) }
        return port
    }

    /// Applies `patch` to port `id`. Returns whether the certificate inputs changed.
    ///
    /// The certificate, its key and its password go together: clearing `certificatePath`
    /// (back to the default certificate) clears the other two unless the patch sets them,
    /// and a new `certificatePath` for which `holdsOwnKey` is true (a PEM with its key, a
    /// PKCS#12) drops a `privateKeyPath` the patch does not name.
    @discardableResult
    public mutating func updatePort(
        id: String, _ patch: PortPatch, holdsOwnKey: (String) -> Bool = { _ in false }
    ) throws -> Bool {
        guard let index = ports.firstIndex(where: { $0.id == id }) else {
            throw BindingsError.notFound("no port with id '\(id)'")
        }
        var port = ports[index]
        let before = port
        if let name = patch.name { port.name = name.trimmingWhitespace }
        if let proto = patch.protocol { port.protocol = proto }
        if let encryption = patch.encryption { port.encryption = encryption }
        if let number = patch.port { port.port = number }
        if let path = patch.certificatePath { port.certificatePath = path.isEmpty ? nil : path }
        if let path = patch.privateKeyPath { port.privateKeyPath = path.isEmpty ? nil : path }
        if let password = patch.certificatePassword { port.certificatePassword = password.isEmpty ? nil : password }
        if let description = patch.description { port.description = description }
        if let limit = patch.maxConnections { port.maxConnections = limit }
        if let limit = patch.maxConnectionsPerClient { port.maxConnectionsPerClient = limit }
        if let proxy = patch.proxyProtocol { port.proxyProtocol = proxy }
        if let path = patch.certificatePath, path != (before.certificatePath ?? "") {
            if path.isEmpty {
                if patch.privateKeyPath == nil { port.privateKeyPath = nil }
                if patch.certificatePassword == nil { port.certificatePassword = nil }
            } else if patch.privateKeyPath == nil && holdsOwnKey(path) {
                port.privateKeyPath = nil
            }
        }
        if let required = patch.tlsRequired {
            port.tlsRequired = required
        } else if port.protocol != before.protocol || port.encryption != before.encryption {
            port.tlsRequired = Port.defaultTLSRequired(protocol: port.protocol, encryption: port.encryption)
        }
        if port.encryption == .none {
            // Certificate fields mean nothing without TLS; drop them rather than refuse a
            // switch to plain text that did not mention them.
            if patch.certificatePath == nil { port.certificatePath = nil }
            if patch.privateKeyPath == nil { port.privateKeyPath = nil }
            port.certificatePassword = nil
        }
        ports[index] = port
        if let addresses = patch.assignedTo { try assign(portID: id, to: addresses) }
        return port.certificateSource != before.certificateSource || port.encryption != before.encryption
    }

    /// Rule 3: deleting a port removes it from every IP. Unknown ids refuse the whole call.
    public mutating func deletePorts(_ ids: [String]) throws {
        guard !ids.isEmpty else { throw BindingsError.invalid("ids", "ids must name at least one port") }
        for id in ids where port(id) == nil {
            throw BindingsError.notFound("no port with id '\(id)'")
        }
        let doomed = Set(ids)
        ports.removeAll { doomed.contains($0.id) }
        for index in ipAddresses.indices {
            ipAddresses[index].ports.removeAll { doomed.contains($0) }
        }
    }

    /// Makes `addresses` exactly the addresses port `portID` is assigned to.
    public mutating func assign(portID: String, to addresses: [String]) throws {
        var wanted: Set<String> = []
        for text in addresses {
            guard let canonical = IPLiteral.canonical(text) else {
                throw BindingsError.invalid("assignedTo", "'\(text)' is not an IP address literal")
            }
            guard entry(canonical.address) != nil else {
                throw BindingsError.invalid(
                    "assignedTo", "IP address \(canonical.address) is not in the address list; add it first (rule 5)")
            }
            wanted.insert(canonical.address)
        }
        for index in ipAddresses.indices {
            let has = ipAddresses[index].ports.contains(portID)
            let should = wanted.contains(ipAddresses[index].address)
            if has && !should { ipAddresses[index].ports.removeAll { $0 == portID } }
            if !has && should { ipAddresses[index].ports.append(portID) }
        }
    }

    /// Adds an address by hand (rule 5: it must be a valid IP literal).
    @discardableResult
    public mutating func addManualAddress(_ text: String, _ patch: AddressPatch, present: Bool) throws -> IPAddressEntry {
        guard let canonical = IPLiteral.canonical(text) else {
            throw BindingsError.invalid("address", "'\(text)' is not a valid IPv4 or IPv6 address literal")
        }
        guard entry(canonical.address) == nil else {
            throw BindingsError(.conflict, "IP address \(canonical.address) is already in the list", field: "address")
        }
        if let reason = IPLiteral.notBindableReason(canonical.address) {
            throw BindingsError.invalid("address", "\(canonical.address) is \(reason); only unicast addresses can listen")
        }
        if IPLiteral.isLinkLocal(canonical.address) {
            throw BindingsError.invalid("address", "link-local address \(canonical.address) cannot be bound without a scope; not supported")
        }
        ipAddresses.append(IPAddressEntry(
            address: canonical.address, family: canonical.family, source: .manual, present: present))
        try updateAddress(canonical.address, patch)
        return entry(canonical.address)!
    }

    public mutating func updateAddress(_ text: String, _ patch: AddressPatch) throws {
        let key = IPLiteral.canonical(text)?.address ?? text
        guard let index = ipAddresses.firstIndex(where: { $0.address == key }) else {
            throw BindingsError.notFound("no IP address '\(text)' in the list")
        }
        if let ports = patch.ports { ipAddresses[index].ports = ports }
        if let hostname = patch.hostname { ipAddresses[index].hostname = hostname.isEmpty ? nil : hostname.lowercased() }
        if let description = patch.description { ipAddresses[index].description = description }
    }

    /// Only manual addresses, or discovered ones no longer on an interface, can be deleted.
    public mutating func deleteAddress(_ text: String) throws {
        let key = IPLiteral.canonical(text)?.address ?? text
        guard let entry = entry(key) else { throw BindingsError.notFound("no IP address '\(text)' in the list") }
        guard entry.source == .manual || (entry.source == .interface && !entry.present) else {
            throw BindingsError(
                .conflict,
                "IP address \(key) is \(entry.source == .wildcard ? "a wildcard" : "present on \(entry.interface ?? "an interface")"); only manual or absent addresses can be deleted",
                field: "address")
        }
        ipAddresses.removeAll { $0.address == key }
    }

    /// Merges what interface discovery found: new addresses are added, `present` kept current.
    /// Returns true when anything changed.
    @discardableResult
    public mutating func mergeDiscovered(_ found: [DiscoveredAddress]) -> Bool {
        let before = self
        for (position, wildcard) in IPAddressEntry.wildcards.enumerated() where entry(wildcard.address) == nil {
            ipAddresses.insert(wildcard, at: min(position, ipAddresses.count))
        }
        var seen: Set<String> = []
        for item in found where !IPLiteral.isLinkLocal(item.address) {
            guard seen.insert(item.address).inserted else { continue }
            if let index = ipAddresses.firstIndex(where: { $0.address == item.address }) {
                ipAddresses[index].present = true
                if ipAddresses[index].source == .interface { ipAddresses[index].interface = item.interface }
            } else {
                ipAddresses.append(IPAddressEntry(
                    address: item.address, family: item.family, interface: item.interface,
                    source: .interface, present: true))
            }
        }
        // Linux routes all of 127/8 to lo, so a manual 127.x address is reachable whenever
        // lo holds 127.0.0.1. One that was discovered on an interface and is no longer
        // listed there has left it, loopback or not: absent, and so deletable.
        let hasLoopbackV4 = found.contains { $0.address == "127.0.0.1" }
        for index in ipAddresses.indices where ipAddresses[index].source != .wildcard && !seen.contains(ipAddresses[index].address) {
            let entry = ipAddresses[index]
            ipAddresses[index].present = entry.source == .manual && hasLoopbackV4 && IPLiteral.isIPv4Loopback(entry.address)
        }
        return self != before
    }
}

/// An address found on an interface.
public struct DiscoveredAddress: Sendable, Hashable {
    public var address: String
    public var family: AddressFamily
    public var interface: String

    public init(address: String, family: AddressFamily, interface: String) {
        self.address = address
        self.family = family
        self.interface = interface
    }
}

extension Optional where Wrapped == String {
    var nonEmpty: String? {
        switch self {
        case .some(let s) where !s.isEmpty: return s
        default: return nil
        }
    }
}
