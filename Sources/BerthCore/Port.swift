/// The protocol a port speaks.
public enum MailProtocol: String, Codable, Sendable, CaseIterable, Hashable {
    case smtp, submission, imap, pop, ldap
}

/// How a port encrypts: `ssl` is TLS from the first byte (implicit TLS),
/// `tls` is a plain connect upgraded by STARTTLS / STLS / the LDAP StartTLS operation.
public enum Encryption: String, Codable, Sendable, CaseIterable, Hashable {
    case none, ssl, tls
}

/// A named port: protocol, encryption and number, assigned to IP addresses elsewhere.
public struct Port: Codable, Sendable, Hashable, Identifiable {
    public var id: String
    public var name: String
    public var `protocol`: MailProtocol
    public var encryption: Encryption
    public var tlsRequired: Bool
    public var port: Int
    public var certificatePath: String?
    public var privateKeyPath: String?
    /// For PKCS#12 or an encrypted key. Write-only: never returned by the API.
    public var certificatePassword: String?
    public var description: String
    /// Concurrent connections on each listener of this port; over it, the protocol's refusal.
    public var maxConnections: Int
    /// Concurrent connections from one client address (IPv6: its /64) on each listener.
    public var maxConnectionsPerClient: Int
    /// Connections must start with a PROXY protocol v1/v2 header from a trusted network.
    public var proxyProtocol: Bool

    /// A small server's worth: far above a day's peak of MX traffic, far below what would
    /// exhaust descriptors before the per-listener limit could act.
    public static let defaultMaxConnections = 10_000
    /// Enough for a busy MUA pool behind one NAT address; a single abuser gets no more.
    public static let defaultMaxConnectionsPerClient = 100
    /// Upper bound of both limits (BINDINGS.md).
    public static let connectionLimitRange = 1...1_000_000

    public init(
        id: String, name: String, protocol: MailProtocol, encryption: Encryption,
        tlsRequired: Bool? = nil, port: Int, certificatePath: String? = nil,
        privateKeyPath: String? = nil, certificatePassword: String? = nil, description: String = "",
        maxConnections: Int = Port.defaultMaxConnections,
        maxConnectionsPerClient: Int = Port.defaultMaxConnectionsPerClient,
        proxyProtocol: Bool = false
    ) {
        self.id = id
        self.name = name
        self.protocol = `protocol`
        self.encryption = encryption
        self.tlsRequired = tlsRequired ?? Port.defaultTLSRequired(protocol: `protocol`, encryption: encryption)
        self.port = port
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.certificatePassword = certificatePassword
        self.description = description
        self.maxConnections = maxConnections
        self.maxConnectionsPerClient = maxConnectionsPerClient
        self.proxyProtocol = proxyProtocol
    }

    /// BINDINGS.md: `tlsRequired` defaults to true for submission over `tls`, false otherwise.
    public static func defaultTLSRequired(protocol: MailProtocol, encryption: Encryption) -> Bool {
        encryption == .tls && `protocol` == .submission
    }

    /// The certificate this port's TLS uses, or nil for the server's default one.
    public var certificateSource: CertificateSource? {
        guard encryption != .none else { return nil }
        guard let path = certificatePath, !path.isEmpty else { return nil }
        return CertificateSource(
            certificatePath: path,
            privateKeyPath: privateKeyPath.flatMap { $0.isEmpty ? nil : $0 },
            password: certificatePassword.flatMap { $0.isEmpty ? nil : $0 }
        )
    }
}

/// Enum fields of the API read case-insensitively ("SMTP" is smtp) and name the allowed
/// values when they refuse one.
public protocol LenientEnum: RawRepresentable, CaseIterable, Decodable where RawValue == String {}

extension LenientEnum {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = Self(rawValue: text.lowercased()) else {
            let allowed = Self.allCases.map(\.rawValue).joined(separator: ", ")
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "'\(text)' is not one of \(allowed)")
        }
        self = value
    }
}

extension MailProtocol: LenientEnum {}
extension Encryption: LenientEnum {}

/// Where a certificate lives on disk; the identity of a TLS context.
public struct CertificateSource: Codable, Sendable, Hashable {
    public var certificatePath: String
    public var privateKeyPath: String?
    public var password: String?

    public init(certificatePath: String, privateKeyPath: String? = nil, password: String? = nil) {
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.password = password
    }
}

extension Port {
    /// The ports a fresh server starts with (BINDINGS.md, "Defaults on first start").
    public static func defaults(makeID: () -> String) -> [Port] {
        [
            Port(id: makeID(), name: "SMTP", protocol: .smtp, encryption: .tls, port: 25),
            Port(id: makeID(), name: "SMTP SSL", protocol: .smtp, encryption: .ssl, port: 465),
            Port(id: makeID(), name: "Submission", protocol: .submission, encryption: .tls, port: 587),
            Port(id: makeID(), name: "IMAP", protocol: .imap, encryption: .tls, port: 143),
            Port(id: makeID(), name: "IMAP SSL", protocol: .imap, encryption: .ssl, port: 993),
            Port(id: makeID(), name: "POP", protocol: .pop, encryption: .tls, port: 110),
            Port(id: makeID(), name: "POP SSL", protocol: .pop, encryption: .ssl, port: 995),
            Port(id: makeID(), name: "LDAP", protocol: .ldap, encryption: .tls, port: 389),
            Port(id: makeID(), name: "LDAP SSL", protocol: .ldap, encryption: .ssl, port: 636),
        ]
    }
}
