/// The attribute types Berth's directory serves (RFC 4519, RFC 2798 inetOrgPerson) and how
/// their values compare. Every one has a case-ignore equality, ordering and substrings rule
/// (caseIgnoreMatch, caseIgnoreIA5Match for mail, objectIdentifierMatch for objectClass,
/// whose descriptors compare without case too).
public enum LDAPSchema {
    /// Lower-cased canonical name → its other names.
    static let aliases: [String: [String]] = [
        "cn": ["commonname", "2.5.4.3"],
        "sn": ["surname", "2.5.4.4"],
        "givenname": ["gn", "2.5.4.42"],
        "uid": ["userid", "0.9.2342.19200300.100.1.1"],
        "mail": ["rfc822mailbox", "0.9.2342.19200300.100.1.3"],
        "dc": ["domaincomponent", "0.9.2342.19200300.100.1.25"],
        "ou": ["organizationalunitname", "2.5.4.11"],
        "o": ["organizationname", "2.5.4.10"],
        "objectclass": ["2.5.4.0"],
        "displayname": ["2.16.840.1.113730.3.1.241"],
    ]

    static let canonical: [String: String] = {
        var map: [String: String] = [:]
        for (name, others) in aliases {
            map[name] = name
            for other in others { map[other] = name }
        }
        return map
    }()

    /// The attribute description's type, lower-cased and through its aliases; options
    /// (`;lang-en`, `;binary`) are dropped (RFC 4512 §2.5).
    public static func canonicalName(_ description: String) -> String {
        let type = description.split(separator: ";", maxSplits: 1).first.map(String.init)?.lowercased() ?? ""
        return canonical[type] ?? type
    }

    /// A value as the case-ignore rules see it (RFC 4518 in short): case folded, runs of
    /// spaces made one, leading and trailing spaces dropped.
    public static func fold(_ value: String) -> String {
        value.lowercased().split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }
}
