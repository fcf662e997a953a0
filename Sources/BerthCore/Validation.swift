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
    public static func validate(
        _ bindings: Bindings,
        changedPortIDs: Set<String> = [],
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
        try validateAssignments(bindings)
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
    }

    /// Rules 1 and 5: only listed IPs, every port id known, one port per number per IP,
    /// wildcards conflicting with every address of their family.
    public static func validateAssignments(_ bindings: Bindings) throws {
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
        struct Claim { var address: String; var wildcard: Bool; var port: Port }
        var claims: [String: [Claim]] = [:]
        for entry in bindings.ipAddresses {
            for id in entry.ports {
                guard let port = portsByID[id] else { continue }
                let key = "\(entry.family.rawValue)/\(port.port)"
                let claim = Claim(address: entry.address, wildcard: entry.isWildcard, port: port)
                for other in claims[key, default: []]
                where other.address == claim.address || other.wildcard || claim.wildcard {
                    let place = other.address == claim.address
                        ? "on \(claim.address)"
                        : "on \(other.wildcard ? other.address : claim.address) (the wildcard \(other.wildcard ? other.address : claim.address) covers \(other.wildcard ? claim.address : other.address))"
                    throw BindingsError(
                        .portConflict,
                        "port number \(port.port) \(place) is already used by port '\(other.port.name)' (id \(other.port.id)); cannot also assign port '\(port.name)' (id \(port.id))",
                        field: "port")
                }
                claims[key, default: []].append(claim)
            }
        }
    }
}

/// RFC 1123 host names, as used in greetings and EHLO.
public enum Hostname {
    public static func isValid(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= Validation.maxHostnameLength else { return false }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
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
