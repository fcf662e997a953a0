/// Server-wide settings (BINDINGS.md "Server settings"): PROXY protocol trust and the
/// authentication throttle every protocol and the admin API share.
public struct ServerSettings: Codable, Sendable, Hashable {
    /// Networks (CIDR) whose connections may carry a PROXY protocol header.
    public var proxyTrustedNetworks: [String] = []
    /// Delay before answering a failed authentication; grows per failure in a session.
    public var authFailureDelayMs: Int = 1000
    /// Failures from one client address within `authBanWindowSeconds` that ban it.
    public var authBanThreshold: Int = 10
    public var authBanWindowSeconds: Int = 600
    /// How long a ban lasts.
    public var authBanSeconds: Int = 900

    // Outbound queue (issue 6). A deferred recipient is retried after
    // `queueRetryInitialSeconds`, then after twice as long each time, at most
    // `queueRetryMaxSeconds` apart, until `queueLifetimeSeconds` after it was accepted
    // (then it bounces). Postfix's defaults are the model: 5 min … 4 h, 5 days.
    public var queueRetryInitialSeconds: Int = 300
    public var queueRetryMaxSeconds: Int = 14_400
    public var queueLifetimeSeconds: Int = 432_000
    /// One "delayed" DSN (RFC 3464 Action: delayed) once a recipient has waited this long; 0 = never.
    public var queueDelayWarningSeconds: Int = 14_400
    /// Outbound SMTP connections at once, in all and to one destination (domain or route).
    public var outboundMaxConnections: Int = 100
    public var outboundMaxConnectionsPerDestination: Int = 20
    public var outboundConnectTimeoutSeconds: Int = 30
    /// How long `rotate` skips a source address that failed to connect.
    public var outboundFailureMemorySeconds: Int = 600

    // LDAP address book (issue 9). Off by default: an address book lists every colleague's
    // address, which a harvester would love (RFC 4513 §6.3.1 on anonymous access).
    /// Anonymous sessions may search every domain (else they read only the root DSE).
    public var ldapAnonymousSearch: Bool = false
    /// A bound user sees every domain's people, not only their own domain's.
    public var ldapSearchAllDomains: Bool = false

    public init() {}

    enum CodingKeys: String, CodingKey {
        case proxyTrustedNetworks, authFailureDelayMs, authBanThreshold, authBanWindowSeconds, authBanSeconds
        case queueRetryInitialSeconds, queueRetryMaxSeconds, queueLifetimeSeconds, queueDelayWarningSeconds
        case outboundMaxConnections, outboundMaxConnectionsPerDestination, outboundConnectTimeoutSeconds
        case outboundFailureMemorySeconds
        case ldapAnonymousSearch, ldapSearchAllDomains
    }

    /// Keys missing from stored JSON (written by an older version) take their defaults.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = ServerSettings()
        proxyTrustedNetworks = try container.decodeIfPresent([String].self, forKey: .proxyTrustedNetworks) ?? defaults.proxyTrustedNetworks
        authFailureDelayMs = try container.decodeIfPresent(Int.self, forKey: .authFailureDelayMs) ?? defaults.authFailureDelayMs
        authBanThreshold = try container.decodeIfPresent(Int.self, forKey: .authBanThreshold) ?? defaults.authBanThreshold
        authBanWindowSeconds = try container.decodeIfPresent(Int.self, forKey: .authBanWindowSeconds) ?? defaults.authBanWindowSeconds
        authBanSeconds = try container.decodeIfPresent(Int.self, forKey: .authBanSeconds) ?? defaults.authBanSeconds
        for (key, path) in Self.outboundIntegers {
            self[keyPath: path] = try container.decodeIfPresent(Int.self, forKey: key) ?? defaults[keyPath: path]
        }
        for (key, path) in Self.switches {
            self[keyPath: path] = try container.decodeIfPresent(Bool.self, forKey: key) ?? defaults[keyPath: path]
        }
    }

    /// The on/off settings with their keys: decoded and patched alike.
    static var switches: [(CodingKeys, WritableKeyPath<ServerSettings, Bool>)] {[
        (.ldapAnonymousSearch, \.ldapAnonymousSearch), (.ldapSearchAllDomains, \.ldapSearchAllDomains),
    ]}

    /// The outbound integers with their keys: decoded, patched and range-checked alike.
    static var outboundIntegers: [(CodingKeys, WritableKeyPath<ServerSettings, Int>)] {[
        (.queueRetryInitialSeconds, \.queueRetryInitialSeconds), (.queueRetryMaxSeconds, \.queueRetryMaxSeconds),
        (.queueLifetimeSeconds, \.queueLifetimeSeconds), (.queueDelayWarningSeconds, \.queueDelayWarningSeconds),
        (.outboundMaxConnections, \.outboundMaxConnections),
        (.outboundMaxConnectionsPerDestination, \.outboundMaxConnectionsPerDestination),
        (.outboundConnectTimeoutSeconds, \.outboundConnectTimeoutSeconds),
        (.outboundFailureMemorySeconds, \.outboundFailureMemorySeconds),
    ]}

    static let outboundRanges: [String: ClosedRange<Int>] = [
        "queueRetryInitialSeconds": 1...86_400, "queueRetryMaxSeconds": 1...604_800,
        "queueLifetimeSeconds": 1...2_592_000, "queueDelayWarningSeconds": 0...2_592_000,
        "outboundMaxConnections": 1...10_000, "outboundMaxConnectionsPerDestination": 1...1_000,
        "outboundConnectTimeoutSeconds": 1...600, "outboundFailureMemorySeconds": 1...86_400,
    ]

    /// `proxyTrustedNetworks` parsed; entries that do not parse (never stored: validation
    /// refuses them) are left out.
    public var trustedNetworks: [CIDR] {
        proxyTrustedNetworks.compactMap { try? CIDR($0) }
    }

    /// Whether a connection from `address` may send a PROXY protocol header.
    public func isTrustedProxy(_ address: String) -> Bool {
        trustedNetworks.contains { $0.contains(address) }
    }

    public static let authFailureDelayRange = 0...60_000
    public static let authBanThresholdRange = 1...10_000
    /// Up to a week.
    public static let authBanSecondsRange = 1...604_800
    /// More trusted networks than any real proxy tier has.
    public static let maxProxyTrustedNetworks = 256
}

/// A partial change to the server settings: absent keys stay as they are.
public struct ServerSettingsPatch: Decodable, Sendable, Hashable {
    public var proxyTrustedNetworks: [String]?
    public var authFailureDelayMs: Int?
    public var authBanThreshold: Int?
    public var authBanWindowSeconds: Int?
    public var authBanSeconds: Int?
    /// Outbound integers (`ServerSettings.outboundIntegers`) by key.
    public var outbound: [String: Int] = [:]
    /// On/off settings (`ServerSettings.switches`) by key.
    public var switches: [String: Bool] = [:]

    public init(
        proxyTrustedNetworks: [String]? = nil, authFailureDelayMs: Int? = nil, authBanThreshold: Int? = nil,
        authBanWindowSeconds: Int? = nil, authBanSeconds: Int? = nil
    ) {
        self.proxyTrustedNetworks = proxyTrustedNetworks
        self.authFailureDelayMs = authFailureDelayMs
        self.authBanThreshold = authBanThreshold
        self.authBanWindowSeconds = authBanWindowSeconds
        self.authBanSeconds = authBanSeconds
    }

    public init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownKeys(ServerSettings.CodingKeys.self)
        let container = try decoder.container(keyedBy: ServerSettings.CodingKeys.self)
        proxyTrustedNetworks = try container.decodeIfPresent([String].self, forKey: .proxyTrustedNetworks)
        authFailureDelayMs = try container.decodeIfPresent(Int.self, forKey: .authFailureDelayMs)
        authBanThreshold = try container.decodeIfPresent(Int.self, forKey: .authBanThreshold)
        authBanWindowSeconds = try container.decodeIfPresent(Int.self, forKey: .authBanWindowSeconds)
        authBanSeconds = try container.decodeIfPresent(Int.self, forKey: .authBanSeconds)
        for (key, _) in ServerSettings.outboundIntegers {
            if let value = try container.decodeIfPresent(Int.self, forKey: key) { outbound[key.stringValue] = value }
        }
        for (key, _) in ServerSettings.switches {
            if let value = try container.decodeIfPresent(Bool.self, forKey: key) { switches[key.stringValue] = value }
        }
    }

    public func apply(to settings: inout ServerSettings) {
        if let value = proxyTrustedNetworks { settings.proxyTrustedNetworks = value }
        if let value = authFailureDelayMs { settings.authFailureDelayMs = value }
        if let value = authBanThreshold { settings.authBanThreshold = value }
        if let value = authBanWindowSeconds { settings.authBanWindowSeconds = value }
        if let value = authBanSeconds { settings.authBanSeconds = value }
        for (key, path) in ServerSettings.outboundIntegers {
            if let value = outbound[key.stringValue] { settings[keyPath: path] = value }
        }
        for (key, path) in ServerSettings.switches {
            if let value = switches[key.stringValue] { settings[keyPath: path] = value }
        }
    }
}

extension Validation {
    /// Checks the server settings and returns them in canonical form (each network as
    /// `address/prefix` with host bits cleared, duplicates dropped).
    public static func validated(_ settings: ServerSettings) throws -> ServerSettings {
        var result = settings
        guard settings.proxyTrustedNetworks.count <= ServerSettings.maxProxyTrustedNetworks else {
            throw BindingsError.invalid(
                "proxyTrustedNetworks", "at most \(ServerSettings.maxProxyTrustedNetworks) trusted networks")
        }
        var networks: [String] = []
        for (index, text) in settings.proxyTrustedNetworks.enumerated() {
            do {
                let canonical = try CIDR(text).description
                if !networks.contains(canonical) { networks.append(canonical) }
            } catch {
                throw BindingsError.invalid("proxyTrustedNetworks[\(index)]", "\(error)")
            }
        }
        result.proxyTrustedNetworks = networks
        let ranges: [(String, Int, ClosedRange<Int>, String)] = [
            ("authFailureDelayMs", settings.authFailureDelayMs, ServerSettings.authFailureDelayRange, " ms"),
            ("authBanThreshold", settings.authBanThreshold, ServerSettings.authBanThresholdRange, " failures"),
            ("authBanWindowSeconds", settings.authBanWindowSeconds, ServerSettings.authBanSecondsRange, " s"),
            ("authBanSeconds", settings.authBanSeconds, ServerSettings.authBanSecondsRange, " s"),
        ]
        let outbound = ServerSettings.outboundIntegers.map { key, path in
            (key.stringValue, settings[keyPath: path], ServerSettings.outboundRanges[key.stringValue]!, " s")
        }
        for (field, value, range, unit) in ranges + outbound where !range.contains(value) {
            throw BindingsError.invalid(
                field, "\(field) must be \(range.lowerBound)–\(range.upperBound)\(unit), got \(value)")
        }
        return result
    }
}
