/// The one validation code path that the admin API, the CLI (through the API) and
/// start-up share. Every change is applied to a copy of the bindings, then the whole
/// copy is checked; a refused change is never half-applied.
public enum Validation {
    public static let maxNameLength = 64
    public static let maxDescriptionLength = 512
    public static let maxHostnameLength = 253

    /// Checks every rule of BINDINGS.md on the whole bindings. `certificateCheck` loads and
    /// checks a certificate (rule 4); it is called once per distinct TLS certificate source
    /// among ports that changed (`changedPortIDs`), so unchanged ports are not re-read.
    ///
    /// `subject` is the port the change is about (and `subjectIsNew` when it is being
    /// created), so that a conflict names it as the one that cannot be assigned.
    public static func validate(
        _ bindings: Bindings,
        changedPortIDs: Set<String> = [],
        subject: String? = nil,
        subjectIsNew: Bool = false,
        certificateCheck: (CertificateSource) throws -> Void = { _ in }
    ) throws {
        var names: [String: Port] = [:]
        for port in bindings.ports {
            try validateFields(port)
            let key = port.name.lowercased()
            if let other = names[key], other.id != port.id {
                throw BindingsError(
                    .nameTaken, "port name '\(port.name)' is already used by port \(other.id); names are unique (case-insensitive)",
                    field: "name")
            }
            names[key] = port
        }
        for port in bindings.ports where changedPortIDs.contains(port.id) {
            guard let source = port.certificateSource else { continue }
            do {
                try certificateCheck(source)
            } catch let error as BindingsError {
                throw error
            } catch {
                throw BindingsError(
                    .badCertificate, "port '\(port.name)': certificate \(source.certificatePath): \(error)",
                    field: "certificatePath")
            }
        }
        try validateAssignments(bindings, subject: subject, subjectIsNew: subjectIsNew)
    }

    /// Field rules of one port (BINDINGS.md, "Port").
    public static func validateFields(_ port: Port) throws {
        let name = port.name.trimmingWhitespace
        guard !name.isEmpty, name.count <= maxNameLength else {
            throw BindingsError.invalid("name", "name must be 1–\(maxNameLength) characters")
        }
        guard name.unicodeScalars.allSatisfy({ $0.properties.generalCategory != .control }) else {
            throw BindingsError.invalid("name", "name must not contain control characters")
        }
        guard (1...65535).contains(port.port) else {
            throw BindingsError.invalid("port", "port must be 1–65535, got \(port.port)")
        }
        guard port.description.count <= maxDescriptionLength else {
            throw BindingsError.invalid("description", "description must be at most \(maxDescriptionLength) characters")
        }
        if port.tlsRequired && port.encryption != .tls {
            throw BindingsError.invalid(
                "tlsRequired", "tlsRequired applies only to encryption 'tls' (STARTTLS); port '\(name)' has '\(port.encryption.rawValue)'")
        }
        if port.encryption == .none {
            for (field, value) in [("certificatePath", port.certificatePath), ("privateKeyPath", port.privateKeyPath)]
            where !(value ?? "").isEmpty {
                throw BindingsError.invalid(field, "\(field) applies only to encryption 'ssl' or 'tls'")
            }
        }
        if (port.certificatePath ?? "").isEmpty && !(port.privateKeyPath ?? "").isEmpty {
            throw BindingsError.invalid("privateKeyPath", "privateKeyPath needs a certificatePath")
        }
        let limits = Port.connectionLimitRange
        guard limits.contains(port.maxConnections) else {
            throw BindingsError.invalid(
                "maxConnections", "maxConnections must be \(limits.lowerBound)–\(limits.upperBound), got \(port.maxConnections)")
        }
        guard limits.contains(port.maxConnectionsPerClient) else {
            throw BindingsError.invalid(
                "maxConnectionsPerClient",
                "maxConnectionsPerClient must be \(limits.lowerBound)–\(limits.upperBound), got \(port.maxConnectionsPerClient)")
        }
        guard port.maxConnectionsPerClient <= port.maxConnections else {
            throw BindingsError.invalid(
                "maxConnectionsPerClient",
                "maxConnectionsPerClient (\(port.maxConnectionsPerClient)) cannot exceed maxConnections (\(port.maxConnections))")
        }
    }

    /// Rules 1 and 5: only listed IPs, every port id known, one port per number per IP,
    /// wildcards conflicting with every address of their family.
    public static func validateAssignments(_ bindings: Bindings, subject: String? = nil, subjectIsNew: Bool = false) throws {
        let portsByID = Dictionary(bindings.ports.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var seenAddresses: Set<String> = []
        for entry in bindings.ipAddresses {
            guard let canonical = IPLiteral.canonical(entry.address), canonical.address == entry.address else {
                throw BindingsError.invalid("address", "'\(entry.address)' is not a canonical IP address literal")
            }
            guard seenAddresses.insert(entry.address).inserted else {
                throw BindingsError(.conflict, "IP address \(entry.address) is listed twice", field: "address")
            }
            if let hostname = entry.hostname, !hostname.isEmpty, !Hostname.isValid(hostname) {
                throw BindingsError.invalid("hostname", "'\(hostname)' is not a valid host name")
            }
            guard entry.description.count <= maxDescriptionLength else {
                throw BindingsError.invalid("description", "description must be at most \(maxDescriptionLength) characters")
            }
            for id in entry.ports where portsByID[id] == nil {
                throw BindingsError.invalid("ports", "no port with id '\(id)' (assigned to \(entry.address))")
            }
            if Set(entry.ports).count != entry.ports.count {
                throw BindingsError.invalid("ports", "a port is assigned twice to \(entry.address)")
            }
        }
        // (family, number) -> claims, so that conflicts are found in one pass.
        var claims: [String: [Claim]] = [:]
        for entry in bindings.ipAddresses {
            for id in entry.ports {
                guard let port = portsByID[id] else { continue }
                let key = "\(entry.family.rawValue)/\(port.port)"
                let claim = Claim(address: entry.address, wildcard: entry.isWildcard, port: port)
                for other in claims[key, default: []]
                where other.address == claim.address || other.wildcard || claim.wildcard {
                    throw conflict(claim, other, subject: subject, subjectIsNew: subjectIsNew)
                }
                claims[key, default: []].append(claim)
            }
        }
    }
}

/// One port on one address, as the conflict check sees it.
struct Claim {
    var address: String
    var wildcard: Bool
    var port: Port
}

extension Validation {
    /// Rule 1's error: names both ports and the address, with the port the change is
    /// about as the one that cannot be assigned.
    static func conflict(_ first: Claim, _ second: Claim, subject: String?, subjectIsNew: Bool) -> BindingsError {
        var (incoming, holder) = (first, second)
        if holder.port.id == subject && incoming.port.id != subject { (incoming, holder) = (holder, incoming) }
        func label(_ port: Port) -> String {
            port.id == subject && subjectIsNew ? "the new port '\(port.name)'" : "port '\(port.name)' (id \(port.id))"
        }
        let number = incoming.port.port
        let place: String
        if incoming.address == holder.address {
            place = "on \(incoming.address)"
        } else {
            let (wildcard, specific) = holder.wildcard ? (holder.address, incoming.address) : (incoming.address, holder.address)
            place = "on \(incoming.address) (the wildcard \(wildcard) covers \(specific))"
        }
        if incoming.port.id == holder.port.id {
            let (wildcard, specific) = holder.wildcard ? (holder.address, incoming.address) : (incoming.address, holder.address)
            return BindingsError(
                .portConflict,
                "\(label(incoming.port)) cannot listen on both \(wildcard) and \(specific): the wildcard already covers \(specific) on port number \(number)",
                field: "assignedTo")
        }
        return BindingsError(
            .portConflict,
            "port number \(number) \(place) is already used by \(label(holder.port)); cannot also assign \(label(incoming.port))",
            field: "port")
    }
}

/// RFC 1123 host names, as used in greetings and EHLO.
public enum Hostname {
    public static func isValid(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= Validation.maxHostnameLength else { return false }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        // An all-numeric last label is an IP address, not a name (RFC 1123 §2.1).
        if let last = labels.last, last.allSatisfy({ $0.isASCII && $0.isNumber }) { return false }
        return labels.allSatisfy { label in
            guard (1...63).contains(label.utf8.count), label.first != "-", label.last != "-" else { return false }
            return label.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D
            }
        }
    }
}

extension String {
    /// The string without leading and trailing white space.
    public var trimmingWhitespace: String {
        var s = Substring(self)
        while let first = s.first, first.isWhitespace { s.removeFirst() }
        while let last = s.last, last.isWhitespace { s.removeLast() }
        return String(s)
    }
}
