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

    public init() {}

    /// Keys missing from stored JSON (written by an older version) take their defaults.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = ServerSettings()
        proxyTrustedNetworks = try container.decodeIfPresent([String].self, forKey: .proxyTrustedNetworks) ?? defaults.proxyTrustedNetworks
        authFailureDelayMs = try container.decodeIfPresent(Int.self, forKey: .authFailureDelayMs) ?? defaults.authFailureDelayMs
        authBanThreshold = try container.decodeIfPresent(Int.self, forKey: .authBanThreshold) ?? defaults.authBanThreshold
        authBanWindowSeconds = try container.decodeIfPresent(Int.self, forKey: .authBanWindowSeconds) ?? defaults.authBanWindowSeconds
        authBanSeconds = try container.decodeIfPresent(Int.self, forKey: .authBanSeconds) ?? defaults.authBanSeconds
    }

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
public struct ServerSettingsPatch: Codable, Sendable, Hashable {
    public var proxyTrustedNetworks: [String]?
    public var authFailureDelayMs: Int?
    public var authBanThreshold: Int?
    public var authBanWindowSeconds: Int?
    public var authBanSeconds: Int?

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
        try decoder.refuseUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        proxyTrustedNetworks = try container.decodeIfPresent([String].self, forKey: .proxyTrustedNetworks)
        authFailureDelayMs = try container.decodeIfPresent(Int.self, forKey: .authFailureDelayMs)
        authBanThreshold = try container.decodeIfPresent(Int.self, forKey: .authBanThreshold)
        authBanWindowSeconds = try container.decodeIfPresent(Int.self, forKey: .authBanWindowSeconds)
        authBanSeconds = try container.decodeIfPresent(Int.self, forKey: .authBanSeconds)
    }

    public func apply(to settings: inout ServerSettings) {
        if let value = proxyTrustedNetworks { settings.proxyTrustedNetworks = value }
        if let value = authFailureDelayMs { settings.authFailureDelayMs = value }
        if let value = authBanThreshold { settings.authBanThreshold = value }
        if let value = authBanWindowSeconds { settings.authBanWindowSeconds = value }
        if let value = authBanSeconds { settings.authBanSeconds = value }
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
        for (field, value, range, unit) in ranges where !range.contains(value) {
            throw BindingsError.invalid(
                field, "\(field) must be \(range.lowerBound)–\(range.upperBound)\(unit), got \(value)")
        }
        return result
    }
}
