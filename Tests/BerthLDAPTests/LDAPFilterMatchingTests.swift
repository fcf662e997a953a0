import Testing
@testable import BerthLDAP

@Suite("Filter evaluation: TRUE, FALSE and Undefined, case-insensitive per attribute syntax")
struct LDAPFilterMatchingTests {
    static let known: Set<String> = ["objectclass", "uid", "cn", "sn", "givenname", "displayname", "mail"]
    static let entry = LDAPEntry(
        dn: try! LDAPDistinguishedName(parsing: "uid=alice,ou=people,dc=example,dc=com"),
        attributes: [
            .init("objectClass", ["top", "person", "organizationalPerson", "inetOrgPerson"]),
            .init("uid", ["alice"]),
            .init("cn", ["Alice Liddell"]),
            .init("sn", ["Liddell"]),
            .init("givenName", ["Alice"]),
            .init("mail", ["alice@example.com", "al@example.com"]),
        ])

    static func v(_ text: String) -> [UInt8] { Array(text.utf8) }

    static let cases: [(String, LDAPFilter, LDAPTruth)] = [
        ("(uid=ALICE)", .equalityMatch(attribute: "uid", value: v("ALICE")), .true),
        ("(userid=alice): alias", .equalityMatch(attribute: "userid", value: v("alice")), .true),
        ("(cn=alice  liddell): spaces folded", .equalityMatch(attribute: "CN", value: v("alice  liddell")), .true),
        ("(mail=AL@Example.com): second value", .equalityMatch(attribute: "mail", value: v("AL@Example.com")), .true),
        ("(uid=bob)", .equalityMatch(attribute: "uid", value: v("bob")), .false),
        ("(telephoneNumber=1): unknown type", .equalityMatch(attribute: "telephoneNumber", value: v("1")), .undefined),
        ("(displayName=x): known, absent", .equalityMatch(attribute: "displayName", value: v("x")), .false),
        ("(uid=\\ff): not UTF-8", .equalityMatch(attribute: "uid", value: [0xFF]), .undefined),
        ("(objectClass=*)", .present(attribute: "objectClass"), .true),
        ("(givenName=*)", .present(attribute: "givenname;lang-en"), .true),
        ("(displayName=*)", .present(attribute: "displayName"), .false),
        ("(cn=al*)", .substrings(attribute: "cn", initial: v("al"), any: [], final: nil), .true),
        ("(cn=*DELL)", .substrings(attribute: "cn", initial: nil, any: [], final: v("DELL")), .true),
        ("(cn=a*ice*lid*ll)", .substrings(attribute: "cn", initial: v("a"), any: [v("ice"), v("lid")], final: v("ll")), .true),
        ("(cn=*lid*ice*): any out of order", .substrings(attribute: "cn", initial: nil, any: [v("lid"), v("ice")], final: nil), .false),
        ("(sn=lidd*dell): initial and final overlap", .substrings(attribute: "sn", initial: v("lidd"), any: [], final: v("dell")), .false),
        ("(sn>=L)", .greaterOrEqual(attribute: "sn", value: v("L")), .true),
        ("(sn>=M)", .greaterOrEqual(attribute: "sn", value: v("M")), .false),
        ("(sn<=m)", .lessOrEqual(attribute: "sn", value: v("m")), .true),
        ("(objectClass>=a): no ordering rule", .greaterOrEqual(attribute: "objectClass", value: v("a")), .undefined),
        ("(cn~=alice lidell): one letter off", .approxMatch(attribute: "cn", value: v("alice lidell")), .true),
        ("(cn~=Alice-Liddell): punctuation", .approxMatch(attribute: "cn", value: v("Alice-Liddell")), .true),
        ("(cn~=bob)", .approxMatch(attribute: "cn", value: v("bob")), .false),
        ("(cn:caseExactMatch:=Alice Liddell)", .extensibleMatch(rule: "caseExactMatch", attribute: "cn", value: v("Alice Liddell"), dnAttributes: false), .true),
        ("(cn:caseExactMatch:=alice liddell)", .extensibleMatch(rule: "caseExactMatch", attribute: "cn", value: v("alice liddell"), dnAttributes: false), .false),
        ("(cn:2.5.13.2:=alice liddell)", .extensibleMatch(rule: "2.5.13.2", attribute: "cn", value: v("alice liddell"), dnAttributes: false), .true),
        ("(:dn:2.5.13.2:=people): DN attributes", .extensibleMatch(rule: "2.5.13.2", attribute: nil, value: v("people"), dnAttributes: true), .true),
        ("(ou:=people): without :dn:", .extensibleMatch(rule: nil, attribute: "ou", value: v("people"), dnAttributes: false), .undefined),
        ("(cn:1.2.3:=x): unknown rule", .extensibleMatch(rule: "1.2.3", attribute: "cn", value: v("x"), dnAttributes: false), .undefined),
        ("(&)", .and([]), .true),
        ("(|)", .or([]), .false),
        ("(&(uid=alice)(x=1)): TRUE and Undefined", .and([.equalityMatch(attribute: "uid", value: v("alice")), .equalityMatch(attribute: "x", value: v("1"))]), .undefined),
        ("(&(uid=bob)(x=1)): FALSE and Undefined", .and([.equalityMatch(attribute: "uid", value: v("bob")), .equalityMatch(attribute: "x", value: v("1"))]), .false),
        ("(|(uid=bob)(x=1)): FALSE or Undefined", .or([.equalityMatch(attribute: "uid", value: v("bob")), .equalityMatch(attribute: "x", value: v("1"))]), .undefined),
        ("(|(uid=alice)(x=1)): TRUE or Undefined", .or([.equalityMatch(attribute: "uid", value: v("alice")), .equalityMatch(attribute: "x", value: v("1"))]), .true),
        ("(!(x=1)): not Undefined", .not(.equalityMatch(attribute: "x", value: v("1"))), .undefined),
        ("(!(uid=bob))", .not(.equalityMatch(attribute: "uid", value: v("bob"))), .true),
    ]

    @Test("Evaluates", arguments: cases)
    func evaluates(label: String, filter: LDAPFilter, expected: LDAPTruth) {
        #expect(filter.evaluate(Self.entry, knownAttributes: Self.known) == expected, "\(label)")
    }

    @Test("Attribute selection")
    func selection() {
        let entry = Self.entry
        #expect(entry.selecting([], typesOnly: false).count == 6)
        #expect(entry.selecting(["*"], typesOnly: false).count == 6)
        #expect(entry.selecting(["1.1"], typesOnly: false).isEmpty)
        #expect(entry.selecting(["MAIL", "commonName"], typesOnly: false).map(\.type) == ["cn", "mail"])
        #expect(entry.selecting(["mail"], typesOnly: true) == [LDAPAttribute("mail", [])])
        #expect(entry.values("rfc822Mailbox") == ["alice@example.com", "al@example.com"])
    }
}
