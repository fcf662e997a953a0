import Testing
@testable import BerthCore

@Suite("DomainRules")
struct DomainRulesTests {
    static let bindings = Bindings(ipAddresses: [
        Fixture.ip("0.0.0.0"), Fixture.ip("::"),
        Fixture.ip("192.0.2.10"), Fixture.ip("2001:db8::10"),
        Fixture.ip("198.51.100.9", source: .manual, present: false),
    ])

    struct DomainCase: Sendable, CustomTestStringConvertible {
        var label: String
        var domain: Domain
        /// nil: accepted.
        var refusedField: String?
        var testDescription: String { label }
    }


    static let cases: [DomainCase] = [
        .init(label: "plain", domain: Domain(name: "example.com"), refusedField: nil),
        .init(label: "sub-domain", domain: Domain(name: "mail.example.co.uk"), refusedField: nil),
        .init(label: "no dot", domain: Domain(name: "localhost"), refusedField: "name"),
        .init(label: "empty", domain: Domain(name: ""), refusedField: "name"),
        .init(label: "space", domain: Domain(name: "ex ample.com"), refusedField: "name"),
        .init(label: "leading hyphen", domain: Domain(name: "-example.com"), refusedField: "name"),
        .init(label: "empty label", domain: Domain(name: "example..com"), refusedField: "name"),
        .init(label: "underscore", domain: Domain(name: "ex_ample.com"), refusedField: "name"),
        .init(label: "listed IPv4", domain: Domain(name: "example.com", ipAddress: "192.0.2.10"), refusedField: nil),
        .init(label: "listed manual IPv4", domain: Domain(name: "example.com", ipAddress: "198.51.100.9"), refusedField: nil),
        .init(label: "listed IPv6", domain: Domain(name: "example.com", ipAddress: "2001:db8::10"), refusedField: nil),
        .init(label: "unlisted IP", domain: Domain(name: "example.com", ipAddress: "192.0.2.99"), refusedField: "ipAddress"),
        .init(label: "wildcard IP", domain: Domain(name: "example.com", ipAddress: "0.0.0.0"), refusedField: "ipAddress"),
        .init(label: "non-canonical IP", domain: Domain(name: "example.com", ipAddress: "2001:DB8::10"), refusedField: "ipAddress"),
        .init(label: "not an IP", domain: Domain(name: "example.com", ipAddress: "mx.example.com"), refusedField: "ipAddress"),
        .init(label: "system and disabled", domain: Domain(name: "example.com", outbound: .init(
            ipv4: .init(mode: .system), ipv6: .init(mode: .disabled))), refusedField: nil),
        .init(label: "address mode with an address", domain: Domain(name: "example.com", outbound: .init(
            ipv4: .init(mode: .address, addresses: ["192.0.2.10"]))), refusedField: nil),
        .init(label: "address mode without addresses", domain: Domain(name: "example.com", outbound: .init(
            ipv4: .init(mode: .address))), refusedField: "outbound.ipv4"),
        .init(label: "rotate without addresses (v6)", domain: Domain(name: "example.com", outbound: .init(
            ipv6: .init(mode: .rotate))), refusedField: "outbound.ipv6"),
        .init(label: "rotate with two", domain: Domain(name: "example.com", outbound: .init(
            ipv6: .init(mode: .rotate, addresses: ["2001:db8::10", "2001:db8::11"]))), refusedField: nil),
        .init(label: "IPv6 address in the IPv4 list", domain: Domain(name: "example.com", outbound: .init(
            ipv4: .init(mode: .address, addresses: ["2001:db8::10"]))), refusedField: "outbound.ipv4"),
        .init(label: "garbage in the IPv6 list", domain: Domain(name: "example.com", outbound: .init(
            ipv6: .init(mode: .rotate, addresses: ["nope"]))), refusedField: "outbound.ipv6"),
        .init(label: "domain mode with an IPv4 ipAddress", domain: Domain(name: "example.com", ipAddress: "192.0.2.10", outbound: .init(
            ipv4: .init(mode: .domain))), refusedField: nil),
        .init(label: "domain mode (v6) with an IPv4 ipAddress", domain: Domain(name: "example.com", ipAddress: "192.0.2.10", outbound: .init(
            ipv6: .init(mode: .domain))), refusedField: "outbound.ipv6"),
        .init(label: "domain mode without ipAddress", domain: Domain(name: "example.com", outbound: .init(
            ipv4: .init(mode: .domain))), refusedField: "outbound.ipv4"),
        .init(label: "domain mode (v6) with an IPv6 ipAddress", domain: Domain(name: "example.com", ipAddress: "2001:db8::10", outbound: .init(
            ipv6: .init(mode: .domain))), refusedField: nil),
    ]

    @Test("domain rules", arguments: cases)
    func domain(_ row: DomainCase) {
        let error = Fixture.refusal { try DomainRules.validate(row.domain, bindings: Self.bindings) }
        if let field = row.refusedField {
            #expect(error?.code == .validationFailed)
            #expect(error?.field == field)
        } else {
            #expect(error == nil)
        }
    }

    @Test("valid mailbox names", arguments: ["alice", "a", "a.b", "a+tag", "first_last", "x-y", "Bob", "007", String(repeating: "a", count: 64)])
    func validUser(name: String) {
        #expect(Fixture.refusal { try DomainRules.validateUserName(name) } == nil)
    }

    @Test("invalid mailbox names", arguments: [
        "", ".alice", "alice.", "a..b", "a b", "a@b", "a/b", "a\"b", "élan", "a\r\nb", String(repeating: "a", count: 65),
    ])
    func invalidUser(name: String) {
        let error = Fixture.refusal { try DomainRules.validateUserName(name) }
        #expect(error?.code == .validationFailed)
        #expect(error?.field == "name")
    }

    @Test("password length", arguments: [
        ("", false), ("1234567", false), ("12345678", true), ("correct horse battery staple", true),
        (String(repeating: "p", count: 1024), true), (String(repeating: "p", count: 1025), false),
    ])
    func password(password: String, accepted: Bool) {
        let error = Fixture.refusal { try DomainRules.validatePassword(password) }
        #expect((error == nil) == accepted)
        if !accepted {
            #expect(error?.field == "password")
            #expect(!(error?.message.contains(password) ?? true) || password.isEmpty, "errors never echo a password")
        }
    }

    /// A user profile, labelled by what it holds, and the field a refusal names (nil: accepted).
    static let profiles: [(String, User, String?)] = [
        ("all fields", User(domain: "example.com", name: "alice", displayName: "Alice Liddell", givenName: "Alice",
                            surname: "Liddell", aliases: ["a.liddell", "ALI"], quotaBytes: 1024), nil),
        ("names with accents and CJK", User(domain: "example.com", name: "z", displayName: "Zoë 張", givenName: "Zoë", surname: "張"), nil),
        ("display name of 256 bytes", User(domain: "example.com", name: "a", displayName: String(repeating: "x", count: 256)), nil),
        ("display name of 257 bytes", User(domain: "example.com", name: "a", displayName: String(repeating: "x", count: 257)), "displayName"),
        ("given name with CRLF", User(domain: "example.com", name: "a", givenName: "A\r\nBcc: x"), "givenName"),
        ("surname with NUL", User(domain: "example.com", name: "a", surname: "L\u{0}"), "surname"),
        ("alias with a space", User(domain: "example.com", name: "a", aliases: ["ok", "not ok"]), "aliases[1]"),
        ("alias with an @", User(domain: "example.com", name: "a", aliases: ["b@example.org"]), "aliases[0]"),
        ("alias equal to the name", User(domain: "example.com", name: "alice", aliases: ["Alice"]), "aliases[0]"),
        ("101 aliases", User(domain: "example.com", name: "a", aliases: (0...100).map { "x\($0)" }), "aliases"),
        ("zero quota", User(domain: "example.com", name: "a", quotaBytes: 0), "quotaBytes"),
    ]

    @Test("user profiles", arguments: profiles)
    func profile(label: String, user: User, refusedField: String?) {
        var stored: [String]?
        let error = Fixture.refusal { stored = try DomainRules.validateProfile(of: user) }
        #expect(error?.field == refusedField, "\(label)")
        if refusedField == nil {
            // Stored lower-case, in order, without duplicates.
            let expected = user.aliases.map { $0.lowercased() }.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
            #expect(stored == expected, "\(label)")
        }
    }

    @Test("aliases that differ only in case are one")
    func aliasCase() throws {
        #expect(try DomainRules.validateProfile(of: User(domain: "d.example", name: "a", aliases: ["Bo", "bo", "BO"])) == ["bo"])
    }
}
