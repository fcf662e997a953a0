import Foundation

/// A static route (like Postfix's transport maps): mail for `domain` goes to `host:port`
/// instead of the domain's MX hosts.
public struct OutboundRoute: Codable, Sendable, Hashable {
    /// Lower-case recipient domain; the key.
    public var domain: String
    /// An IP literal or a host name (resolved with A/AAAA).
    public var host: String
    public var port: Int
    /// Defer rather than send without TLS.
    public var requireTLS: Bool
    /// Check the server's certificate chain and name (implies `requireTLS`).
    public var verifyCertificate: Bool

    public init(domain: String, host: String, port: Int = 25, requireTLS: Bool = false, verifyCertificate: Bool = false) {
        self.domain = domain
        self.host = host
        self.port = port
        self.requireTLS = requireTLS
        self.verifyCertificate = verifyCertificate
    }

    /// The body of `PUT /api/v1/routes/{domain}`: `domain` comes from the path.
    public struct Body: Decodable, Sendable {
        public var host: String
        public var port: Int
        public var requireTLS: Bool
        public var verifyCertificate: Bool

        enum CodingKeys: String, CodingKey { case host, port, requireTLS, verifyCertificate, domain }

        public init(from decoder: any Decoder) throws {
            try decoder.refuseUnknownKeys(CodingKeys.self)
            let container = try decoder.container(keyedBy: CodingKeys.self)
            host = try container.decode(String.self, forKey: .host)
            port = try container.decodeIfPresent(Int.self, forKey: .port) ?? 25
            requireTLS = try container.decodeIfPresent(Bool.self, forKey: .requireTLS) ?? false
            verifyCertificate = try container.decodeIfPresent(Bool.self, forKey: .verifyCertificate) ?? false
        }
    }

    public static func validated(domain: String, _ body: Body) throws -> OutboundRoute {
        let name = domain.lowercased()
        guard Hostname.isValid(name) else {
            throw BindingsError.invalid("domain", "'\(domain)' is not a valid domain name")
        }
        guard IPLiteral.canonical(body.host) != nil || Hostname.isValid(body.host) else {
            throw BindingsError.invalid("host", "'\(body.host)' is neither an IP address nor a host name")
        }
        guard (1...65535).contains(body.port) else {
            throw BindingsError.invalid("port", "port must be 1–65535, got \(body.port)")
        }
        return OutboundRoute(
            domain: name, host: IPLiteral.canonical(body.host)?.address ?? body.host.lowercased(), port: body.port,
            requireTLS: body.requireTLS || body.verifyCertificate, verifyCertificate: body.verifyCertificate)
    }
}

/// Where one recipient of a queued message stands.
public enum RecipientState: String, Codable, Sendable, Hashable {
    case pending, delivered, bounced
}

/// A queued message as the admin API shows it.
public struct QueuedMessage: Codable, Sendable, Hashable {
    public struct Recipient: Codable, Sendable, Hashable {
        public var address: String
        public var state: RecipientState
        public var attempts: Int
        @NullEncoded public var nextAttemptAt: Date?
        @NullEncoded public var lastError: String?

        public init(address: String, state: RecipientState, attempts: Int, nextAttemptAt: Date?, lastError: String?) {
            self.address = address
            self.state = state
            self.attempts = attempts
            self.nextAttemptAt = nextAttemptAt
            self.lastError = lastError
        }
    }

    /// The queue id of the `250` reply, the `Received:` header and the mail log.
    public var id: String
    public var sender: String
    public var size: Int
    public var receivedAt: Date
    public var recipients: [Recipient]

    public init(id: String, sender: String, size: Int, receivedAt: Date, recipients: [Recipient]) {
        self.id = id
        self.sender = sender
        self.size = size
        self.receivedAt = receivedAt
        self.recipients = recipients
    }
}

/// When a deferred recipient is tried again: `initial` after the first failure, twice as
/// long after each further one, never more than `maximum` apart.
public struct RetrySchedule: Sendable, Hashable {
    public var initial: TimeInterval
    public var maximum: TimeInterval

    public init(initial: TimeInterval, maximum: TimeInterval) {
        self.initial = initial
        self.maximum = max(initial, maximum)
    }

    public init(_ settings: ServerSettings) {
        self.init(initial: TimeInterval(settings.queueRetryInitialSeconds), maximum: TimeInterval(settings.queueRetryMaxSeconds))
    }

    /// Delay after the `attempts`-th failed attempt (1-based).
    public func delay(afterAttempts attempts: Int) -> TimeInterval {
        let doublings = min(max(attempts - 1, 0), 40)
        return min(initial * pow(2, Double(doublings)), maximum)
    }
}

/// Which source addresses outbound SMTP may use for one address family, in the order to
/// try them (BINDINGS.md, domain `outbound`).
public enum SourceChoice: Sendable, Hashable {
    /// The OS picks the source address.
    case system
    /// Bind to these, the first that connects wins (`address` and `domain` have one).
    case addresses([String])
    /// Never use this family.
    case disabled

    public init(_ setting: OutboundFamilySetting, domainAddress: String?, family: AddressFamily) {
        switch setting.mode {
        case .system: self = .system
        case .disabled: self = .disabled
        case .address: self = .addresses(Array(setting.addresses.prefix(1)))
        case .rotate: self = .addresses(setting.addresses)
        case .domain:
            if let domainAddress, IPLiteral.canonical(domainAddress)?.family == family {
                self = .addresses([domainAddress])
            } else {
                // Validation refuses this; treat a stale setting as "let the OS choose".
                self = .system
            }
        }
    }

    /// `rotate` remembers failed addresses for a while: those still remembered go last,
    /// so a connection is tried from a fresh address first but never from none.
    public func ordered(skipping failed: Set<String>) -> SourceChoice {
        guard case .addresses(let list) = self else { return self }
        return .addresses(list.filter { !failed.contains($0) } + list.filter { failed.contains($0) })
    }
}
