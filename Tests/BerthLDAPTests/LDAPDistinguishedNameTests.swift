import Testing
@testable import BerthLDAP

@Suite("Distinguished names (RFC 4514): parsing, comparing, escaping")
struct LDAPDistinguishedNameTests {
    static let equal: [(String, String)] = [
        ("uid=alice,ou=people,dc=example,dc=com", "UID=Alice, OU=People, DC=Example, DC=COM"),
        ("uid=alice,ou=people,dc=example,dc=com", "userid=alice,ou=people,dc=example,dc=com"),
        ("cn=Alice  Liddell,dc=com", "commonName=alice liddell ,dc=com"),
        ("cn=a\\,b,dc=com", "cn=a\\2cb,dc=com"),
        ("cn=x+sn=y,dc=com", "sn=y+cn=x,dc=com"),
        ("dc=example,dc=com", "0.9.2342.19200300.100.1.25=example,dc=com"),
        ("", "  "),
    ]

    @Test("Equal names", arguments: equal)
    func equalNames(a: String, b: String) throws {
        #expect(try LDAPDistinguishedName(parsing: a) == LDAPDistinguishedName(parsing: b))
        #expect(try LDAPDistinguishedName(parsing: a).hashValue == LDAPDistinguishedName(parsing: b).hashValue)
    }

    @Test("Different names", arguments: [
        ("uid=alice,dc=com", "uid=alice,dc=org"),
        ("uid=alice,dc=com", "cn=alice,dc=com"),
        ("cn=x+sn=y,dc=com", "cn=x,sn=y,dc=com"),
        ("dc=com", ""),
    ])
    func differentNames(a: String, b: String) throws {
        #expect(try LDAPDistinguishedName(parsing: a) != LDAPDistinguishedName(parsing: b))
    }

    @Test("Refused", arguments: ["uid", "=alice", "uid=alice,", "u!d=a", "cn=a\\", "cn=a\\4", "cn=#4", "cn=\\ff\\fe",
                                  String(repeating: "dc=a,", count: 64) + "dc=b"])
    func refused(text: String) {
        #expect(throws: LDAPDistinguishedName.ParseError.self) { try LDAPDistinguishedName(parsing: text) }
    }

    @Test("Values unescaped; printed with canonical types and escapes")
    func printing() throws {
        let dn = try LDAPDistinguishedName(parsing: "CN=Smith\\, John \\ ,OU=People,DC=example")
        #expect(dn.rdns[0][0].value == "Smith, John  ")
        #expect(dn.description == "cn=Smith\\, John \\ ,ou=People,dc=example")
        #expect(try LDAPDistinguishedName(parsing: dn.description) == dn)
        #expect(try LDAPDistinguishedName(parsing: "cn=#04024869,dc=com").rdns[0][0].value == "\u{4}\u{2}Hi")
    }

    @Test("Ancestry")
    func ancestry() throws {
        let alice = try LDAPDistinguishedName(parsing: "uid=alice,ou=people,dc=example,dc=com")
        let base = try LDAPDistinguishedName(parsing: "DC=Example,DC=Com")
        #expect(alice.isWithin(base) && alice.isWithin(alice) && alice.isWithin(.root))
        #expect(!base.isWithin(alice))
        #expect(try !alice.isWithin(LDAPDistinguishedName(parsing: "dc=example,dc=org")))
        #expect(alice.parent?.parent == base)
        #expect(LDAPDistinguishedName.root.parent == nil)
    }
}
