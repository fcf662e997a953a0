/// How outbound SMTP for one address family picks its source address (BINDINGS.md).
public struct OutboundFamilySetting: Codable, Sendable, Hashable {
    public enum Mode: String, Codable, Sendable, Hashable {
        /// The OS chooses.
        case system
        /// `addresses[0]`.
        case address
        /// The domain's own `ipAddress`.
        case domain
        /// Try `addresses` in order on connect failure or timeout.
        case rotate
        /// Never use this family.
        case disabled
    }

    public var mode: Mode
    public var addresses: [String]

    public init(mode: Mode = .system, addresses: [String] = []) {
        self.mode = mode
        self.addresses = addresses
    }

    public init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        mode = try container.decode(Mode.self, forKey: .mode)
        addresses = try container.decodeIfPresent([String].self, forKey: .addresses) ?? []
    }
}

public struct OutboundSettings: Codable, Sendable, Hashable {
    public var ipv4: OutboundFamilySetting
    public var ipv6: OutboundFamilySetting

    public init(ipv4: OutboundFamilySetting = .init(), ipv6: OutboundFamilySetting = .init()) {
        self.ipv4 = ipv4
        self.ipv6 = ipv6
    }

    /// Either family may be left out of a request body; it defaults to `system`.
    public init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        ipv4 = try container.decodeIfPresent(OutboundFamilySetting.self, forKey: .ipv4) ?? .init()
        ipv6 = try container.decodeIfPresent(OutboundFamilySetting.self, forKey: .ipv6) ?? .init()
    }
}

/// A mail domain this server is the final destination for.
public struct Domain: Codable, Sendable, Hashable {
    /// Lower-case DNS name; the key.
    public var name: String
    /// The IP its MX points at: the banner on that IP uses the domain's name. JSON `null`
    /// when unset (BINDINGS.md writes it so).
    @NullEncoded public var ipAddress: String?
    public var outbound: OutboundSettings

    public init(name: String, ipAddress: String? = nil, outbound: OutboundSettings = .init()) {
        self.name = name
        self.ipAddress = ipAddress
        self.outbound = outbound
    }

    /// `ipAddress` and `outbound` are optional in a request body.
    public init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        ipAddress = try container.decodeIfPresent(String.self, forKey: .ipAddress)
        outbound = try container.decodeIfPresent(OutboundSettings.self, forKey: .outbound) ?? .init()
    }
}

/// A mailbox owner: `name@domain`.
public struct User: Codable, Sendable, Hashable {
    public var domain: String
    public var name: String
    /// How mail clients show the person (LDAP `displayName`, `cn`).
    public var displayName: String
    /// LDAP `givenName` and `sn` (RFC 4519); empty when unknown.
    public var givenName: String
    public var surname: String
    /// Other local parts in the same domain whose mail lands in this user's mailbox;
    /// lower-case, each unique among the domain's user names and aliases.
    public var aliases: [String]
    /// Octets the user's folders may hold (IMAP QUOTA, SMTP 452 4.2.2); nil: no limit.
    public var quotaBytes: Int?

    public init(
        domain: String, name: String, displayName: String = "", givenName: String = "", surname: String = "",
        aliases: [String] = [], quotaBytes: Int? = nil
    ) {
        self.domain = domain
        self.name = name
        self.displayName = displayName
        self.givenName = givenName
        self.surname = surname
        self.aliases = aliases
        self.quotaBytes = quotaBytes
    }

    public var address: String { "\(name)@\(domain)" }
    public var aliasAddresses: [String] { aliases.map { "\($0)@\(domain)" } }
}

/// A partial change to a user (admin API `PUT …/users/{user}`): nil leaves a field as it is;
/// `quotaBytes: .some(nil)` removes the quota.
public struct UserChange: Sendable, Hashable {
    public var password: String?
    public var displayName: String?
    public var givenName: String?
    public var surname: String?
    public var aliases: [String]?
    public var quotaBytes: Int??

    public init(
        password: String? = nil, displayName: String? = nil, givenName: String? = nil, surname: String? = nil,
        aliases: [String]? = nil, quotaBytes: Int?? = nil
    ) {
        self.password = password
        self.displayName = displayName
        self.givenName = givenName
        self.surname = surname
        self.aliases = aliases
        self.quotaBytes = quotaBytes
    }

    /// The user with this change's profile fields applied (the password is the store's).
    public func applied(to user: User) -> User {
        var user = user
        if let displayName { user.displayName = displayName }
        if let givenName { user.givenName = givenName }
        if let surname { user.surname = surname }
        if let aliases { user.aliases = aliases }
        if let quotaBytes { user.quotaBytes = quotaBytes }
        return user
    }
}
