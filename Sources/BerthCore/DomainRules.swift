/// Rules for domains and users, shared by the API and start-up.
public enum DomainRules {
    public static func validate(_ domain: Domain, bindings: Bindings) throws {
        guard Hostname.isValid(domain.name), domain.name.contains(".") else {
            throw BindingsError.invalid("name", "'\(domain.name)' is not a valid domain name")
        }
        var ipFamily: AddressFamily?
        if let ip = domain.ipAddress {
            guard let canonical = IPLiteral.canonical(ip), canonical.address == ip else {
                throw BindingsError.invalid("ipAddress", "'\(ip)' is not an IP address literal")
            }
            guard let entry = bindings.entry(ip), !entry.isWildcard else {
                throw BindingsError.invalid("ipAddress", "IP address \(ip) is not in the server's address list (rule 5)")
            }
            ipFamily = canonical.family
        }
        for (family, setting) in [(AddressFamily.ipv4, domain.outbound.ipv4), (.ipv6, domain.outbound.ipv6)] {
            let field = "outbound.\(family.rawValue)"
            for address in setting.addresses {
                guard let canonical = IPLiteral.canonical(address), canonical.family == family else {
                    throw BindingsError.invalid(field, "'\(address)' is not an \(family.rawValue) address")
                }
            }
            switch setting.mode {
            case .address, .rotate:
                guard !setting.addresses.isEmpty else {
                    throw BindingsError.invalid(field, "mode '\(setting.mode.rawValue)' needs at least one address")
                }
            case .domain:
                guard ipFamily == family else {
                    throw BindingsError.invalid(field, "mode 'domain' needs the domain's ipAddress to be an \(family.rawValue) address")
                }
            case .system, .disabled:
                break
            }
        }
    }

    /// One IP greets with one name: no two domains claim the same `ipAddress`.
    public static func validateIPAddressUnique(_ domain: Domain, among domains: [Domain]) throws {
        guard let ip = domain.ipAddress,
              let other = domains.first(where: { $0.name != domain.name && $0.ipAddress == ip })
        else { return }
        throw BindingsError(
            .conflict,
            "IP address \(ip) is already the ipAddress of domain \(other.name); an IP greets with one name, so give \(domain.name) another address",
            field: "ipAddress")
    }

    /// A mailbox name: the local part of `name@domain`, stored lower-case.
    public static func validateUserName(_ name: String) throws {
        guard (1...64).contains(name.utf8.count),
              name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-+".contains($0)) }),
              !name.hasPrefix("."), !name.hasSuffix("."), !name.contains("..")
        else {
            throw BindingsError.invalid("name", "'\(name)' is not a valid mailbox name (letters, digits, . _ - +; 1–64)")
        }
    }

    /// The longest display name, given name or surname: more than any real name, little
    /// enough that a directory of thousands stays small.
    public static let maximumNameFieldLength = 256
    /// More addresses than one person uses; an alias list is not a mailing list.
    public static let maximumAliases = 100

    /// Display name, given name and surname: free text on one line (they travel into LDAP
    /// entries and From display names), so no control characters.
    public static func validateNameField(_ value: String, field: String) throws {
        guard value.utf8.count <= maximumNameFieldLength else {
            throw BindingsError.invalid(field, "\(field) must be at most \(maximumNameFieldLength) bytes")
        }
        guard !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw BindingsError.invalid(field, "\(field) must be one line of text, without control characters")
        }
    }

    /// A user's profile fields; returns the aliases in stored form (lower-case, in the
    /// order given, duplicates dropped). Uniqueness against other users is the store's.
    public static func validateProfile(of user: User) throws -> [String] {
        try validateNameField(user.displayName, field: "displayName")
        try validateNameField(user.givenName, field: "givenName")
        try validateNameField(user.surname, field: "surname")
        try validateQuota(user.quotaBytes)
        guard user.aliases.count <= maximumAliases else {
            throw BindingsError.invalid("aliases", "at most \(maximumAliases) aliases per user")
        }
        var aliases: [String] = []
        for (index, alias) in user.aliases.enumerated() {
            let name = alias.lowercased()
            do { try validateUserName(name) } catch {
                throw BindingsError.invalid(
                    "aliases[\(index)]", "'\(alias)' is not a valid mailbox name (letters, digits, . _ - +; 1–64)")
            }
            guard name != user.name else {
                throw BindingsError.invalid("aliases[\(index)]", "'\(alias)' is the user's own name")
            }
            if !aliases.contains(name) { aliases.append(name) }
        }
        return aliases
    }

    public static let minimumPasswordLength = 8
    public static let maximumPasswordLength = 1024

    /// A quota is a positive number of octets (nil: none).
    public static func validateQuota(_ quotaBytes: Int?) throws {
        if let quotaBytes, quotaBytes <= 0 {
            throw BindingsError.invalid("quotaBytes", "quotaBytes must be a positive number of octets, or null for no quota")
        }
    }

    public static func validatePassword(_ password: String) throws {
        guard password.count >= minimumPasswordLength else {
            throw BindingsError.invalid("password", "password must be at least \(minimumPasswordLength) characters")
        }
        guard password.utf8.count <= maximumPasswordLength else {
            throw BindingsError.invalid("password", "password must be at most \(maximumPasswordLength) bytes")
        }
    }
}
