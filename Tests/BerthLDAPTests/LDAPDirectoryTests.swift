import Testing
@testable import BerthLDAP

@Suite("Directory: the tree from domains and users, and searches over it")
struct LDAPDirectoryTests {
    static let directory = LDAPDirectory(
        domains: ["example.com", "Example.ORG"],
        people: [
            .init(uid: "alice", domain: "example.com", givenName: "Alice", surname: "Liddell", mail: ["alice@example.com", "al@example.com"]),
            .init(uid: "bob", domain: "example.com", displayName: "Bob the Builder", mail: ["bob@example.com"]),
            .init(uid: "carol", domain: "example.com", mail: ["carol@example.com"]),
            .init(uid: "dave", domain: "example.com", surname: "Jones", mail: ["dave@example.com"]),
            .init(uid: "erin", domain: "example.com", mail: ["erin@example.com"]),
            .init(uid: "zoe", domain: "example.org", mail: ["zoe@example.org"]),
        ],
        vendorVersion: "1.0")

    static func search(_ base: String, _ scope: LDAPSearchRequest.Scope, _ filter: LDAPFilter = .present(attribute: "objectClass"),
                       sizeLimit: Int = 0, policy: LDAPDirectory.SearchPolicy = .init()) -> LDAPDirectory.SearchResult {
        directory.search(LDAPSearchRequest(base: base, scope: scope, sizeLimit: sizeLimit, filter: filter), policy: policy)
    }

    static func dns(_ result: LDAPDirectory.SearchResult) -> [String] { result.entries.map(\.dn.description) }

    @Test("The tree: one naming context per domain, people under ou=people")
    func tree() {
        let directory = Self.directory
        #expect(directory.namingContexts == ["dc=example,dc=com", "dc=example,dc=org"])
        #expect(directory.entries.count == 2 + 5 + 2 + 1)
        #expect(directory.rootDSE.values("supportedLDAPVersion") == ["3"])
        #expect(directory.rootDSE.values("supportedExtension") == ["1.3.6.1.4.1.1466.20037", "1.3.6.1.4.1.4203.1.11.3"])
        #expect(directory.rootDSE.values("vendorName") == ["Berth"])
    }

    @Test("A person's cn and sn are built from what there is", arguments: [
        ("alice", "Alice Liddell", "Liddell", "Alice", nil),
        ("bob", "Bob the Builder", "Bob the Builder", nil, "Bob the Builder"),
        ("carol", "carol", "carol", nil, nil),
        ("dave", "Jones", "Jones", nil, nil),
    ] as [(String, String, String, String?, String?)])
    func personAttributes(uid: String, cn: String, sn: String, givenName: String?, displayName: String?) throws {
        let entry = try #require(Self.directory.entry(LDAPDistinguishedName(parsing: "uid=\(uid),ou=people,dc=example,dc=com")))
        #expect(entry.values("cn") == [cn] && entry.values("sn") == [sn])
        #expect(entry.values("givenName") == givenName.map { [$0] } && entry.values("displayName") == displayName.map { [$0] })
        #expect(entry.values("objectClass") == ["top", "person", "organizationalPerson", "inetOrgPerson"])
    }

    @Test("Scopes")
    func scopes() {
        #expect(Self.dns(Self.search("", .baseObject)) == [""])
        #expect(Self.dns(Self.search("cn=subschema", .baseObject)) == ["cn=Subschema"])
        #expect(Self.dns(Self.search("", .singleLevel)) == ["dc=example,dc=com", "dc=example,dc=org"])
        #expect(Self.dns(Self.search("DC=Example,DC=Org", .wholeSubtree)) == ["dc=example,dc=org", "ou=people,dc=example,dc=org", "uid=zoe,ou=people,dc=example,dc=org"])
        #expect(Self.dns(Self.search("ou=people,dc=example,dc=com", .singleLevel)).count == 5)
        #expect(Self.dns(Self.search("uid=alice,ou=people,dc=example,dc=com", .baseObject)) == ["uid=alice,ou=people,dc=example,dc=com"])
        #expect(Self.dns(Self.search("dc=example,dc=com", .wholeSubtree, .equalityMatch(attribute: "mail", value: Array("AL@example.com".utf8))))
            == ["uid=alice,ou=people,dc=example,dc=com"])
    }

    @Test("Missing bases: noSuchObject with the nearest entry above; bad DNs: invalidDNSyntax")
    func missing() {
        let missing = Self.search("uid=zed,ou=people,dc=example,dc=com", .baseObject)
        #expect(missing.result.code == .noSuchObject && missing.result.matchedDN == "ou=people,dc=example,dc=com")
        #expect(Self.search("dc=com", .wholeSubtree).result == LDAPResult(.noSuchObject, diagnosticMessage: "no entry dc=com"))
        #expect(Self.search("uid", .baseObject).result.code == .invalidDNSyntax)
    }

    @Test("A user who sees only their domain finds nothing of another")
    func visibility() {
        let own = LDAPDirectory.SearchPolicy(visibleDomains: ["example.org"])
        #expect(Self.dns(Self.search("", .wholeSubtree, .present(attribute: "mail"), policy: own)) == ["uid=zoe,ou=people,dc=example,dc=org"])
        #expect(Self.search("dc=example,dc=com", .wholeSubtree, policy: own).result.code == .noSuchObject)
        #expect(Self.search("uid=alice,ou=people,dc=example,dc=com", .baseObject, policy: own).result.matchedDN == "")
    }

    @Test("Size limits: the smaller of the client's and the server's, then sizeLimitExceeded")
    func sizeLimits() {
        let people = LDAPFilter.present(attribute: "mail")
        #expect(Self.search("", .wholeSubtree, people, sizeLimit: 2).entries.count == 2)
        #expect(Self.search("", .wholeSubtree, people, sizeLimit: 2).result.code == .sizeLimitExceeded)
        #expect(Self.search("", .wholeSubtree, people, policy: .init(sizeLimit: 3)).result.code == .sizeLimitExceeded)
        #expect(Self.search("", .wholeSubtree, people, sizeLimit: 6).result.code == .success)
    }

    @Test("Paged results walk the whole result and refuse another search's cookie")
    func paging() {
        let request = LDAPSearchRequest(base: "dc=example,dc=com", scope: .wholeSubtree, filter: .present(attribute: "mail"))
        var cookie: [UInt8] = []
        var seen: [String] = []
        for page in 0..<3 {
            let result = Self.directory.search(request, paging: (2, cookie), policy: .init())
            #expect(result.result.code == .success)
            seen += Self.dns(result)
            cookie = result.pagedCookie ?? [0xFF]
            #expect(cookie.isEmpty == (page == 2))
        }
        #expect(seen == Self.dns(Self.directory.search(request, policy: .init())))
        let first = Self.directory.search(request, paging: (2, []), policy: .init())
        var other = request
        other.filter = .present(attribute: "uid")
        #expect(Self.directory.search(other, paging: (2, first.pagedCookie!), policy: .init()).result.code == .unwillingToPerform)
        let abandoned = Self.directory.search(request, paging: (0, first.pagedCookie!), policy: .init())
        #expect(abandoned.entries.isEmpty && abandoned.pagedCookie == [])
    }

    @Test("Paging: the server's limit bounds each page, not the whole search; the client's bounds the whole")
    func pagingLimits() {
        let request = LDAPSearchRequest(base: "dc=example,dc=com", scope: .wholeSubtree, filter: .present(attribute: "mail"))
        let all = Self.dns(Self.directory.search(request, policy: .init()))
        var cookie: [UInt8] = []
        var seen: [String] = []
        repeat {
            let result = Self.directory.search(request, paging: (100, cookie), policy: .init(sizeLimit: 1))
            #expect(result.entries.count == 1 && result.result.code == .success)
            seen += Self.dns(result)
            cookie = result.pagedCookie ?? []
        } while !cookie.isEmpty && seen.count < 10
        #expect(seen == all)
        var limited = request
        limited.sizeLimit = 1
        let first = Self.directory.search(limited, paging: (100, []), policy: .init())
        #expect(first.entries.count == 1 && first.result.code == .sizeLimitExceeded && first.pagedCookie == [])
    }

    static func v(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// Filters the indexes answer (equality, initial substrings, and/or of them) and ones
    /// they do not, labelled by their string form.
    static let indexedFilters: [(String, LDAPFilter)] = [
        ("(uid=ALICE)", .equalityMatch(attribute: "uid", value: v("ALICE"))),
        ("(mail=al@example.com)", .equalityMatch(attribute: "rfc822Mailbox", value: v("al@example.com"))),
        ("(cn=bob  the builder)", .equalityMatch(attribute: "cn", value: v("bob  the builder"))),
        ("(uid=nobody)", .equalityMatch(attribute: "uid", value: v("nobody"))),
        ("(title=x)", .equalityMatch(attribute: "title", value: v("x"))),
        ("(cn=B*)", .substrings(attribute: "cn", initial: v("B"), any: [], final: nil)),
        ("(mail=a*com)", .substrings(attribute: "mail", initial: v("a"), any: [], final: v("com"))),
        ("(mail=zz*)", .substrings(attribute: "mail", initial: v("zz"), any: [], final: nil)),
        ("(mail=*example.org)", .substrings(attribute: "mail", initial: nil, any: [], final: v("example.org"))),
        ("(|(cn=a*)(sn=j*)(mail=erin@example.com))", .or([
            .substrings(attribute: "cn", initial: v("a"), any: [], final: nil),
            .substrings(attribute: "sn", initial: v("j"), any: [], final: nil),
            .equalityMatch(attribute: "mail", value: v("erin@example.com")),
        ])),
        ("(&(objectClass=inetOrgPerson)(uid=c*))", .and([
            .equalityMatch(attribute: "objectClass", value: v("inetOrgPerson")),
            .substrings(attribute: "uid", initial: v("c"), any: [], final: nil),
        ])),
        ("(&(uid=*)(!(uid=alice)))", .and([.present(attribute: "uid"), .not(.equalityMatch(attribute: "uid", value: v("alice")))])),
        ("(|(uid=alice)(cn=*o*))", .or([
            .equalityMatch(attribute: "uid", value: v("alice")), .substrings(attribute: "cn", initial: nil, any: [v("o")], final: nil),
        ])),
        ("(|)", .or([])),
        ("(&)", .and([])),
    ]

    @Test("Indexed searches find exactly what a scan of every entry finds", arguments: indexedFilters)
    func indexMatchesScan(label: String, filter: LDAPFilter) {
        for (base, policy) in [("", LDAPDirectory.SearchPolicy()), ("dc=example,dc=com", .init(visibleDomains: ["example.com"]))] {
            let found = Self.dns(Self.search(base, .wholeSubtree, filter, policy: policy))
            let scanned = Self.directory.entries
                .filter { base.isEmpty || $0.dn.isWithin(try! LDAPDistinguishedName(parsing: base)) }
                .filter { filter.evaluate($0, knownAttributes: LDAPDirectory.knownAttributes) == .true }
                .map(\.dn.description)
            #expect(found == scanned, "\(label) under '\(base)'")
        }
    }

    /// One domain with `count` people p0, p1, … (each with a mail address).
    static func numbered(_ count: Int) -> LDAPDirectory {
        LDAPDirectory(
            domains: ["example.com"],
            people: (0..<count).map { .init(uid: "p\($0)", domain: "example.com", mail: ["p\($0)@example.com"]) },
            vendorVersion: "1.0")
    }

    /// (mail=*) under the domain.
    static let everyMail = LDAPSearchRequest(base: "dc=example,dc=com", scope: .wholeSubtree, filter: .present(attribute: "mail"))

    @Test("A search past its time limit answers timeLimitExceeded with what it found; a paged one ends")
    func timeLimit() {
        let many = Self.numbered(3000)
        let request = Self.everyMail
        let policy = LDAPDirectory.SearchPolicy(sizeLimit: 0, timeLimit: .nanoseconds(1))
        let result = many.search(request, policy: policy)
        #expect(result.result.code == .timeLimitExceeded)
        #expect(result.entries.count < 3000, "the clock is read every 256 entries tested")
        let paged = many.search(request, paging: (5000, []), policy: policy)
        #expect(paged.result.code == .timeLimitExceeded && paged.pagedCookie == [])
        #expect(many.search(request, policy: .init(sizeLimit: 0)).entries.count == 3000)
    }

    @Test("Matching stops one past what it can return, and still says a limit was passed")
    func earlyStop() {
        let many = Self.numbered(50)
        let request = Self.everyMail
        let limited = many.search(request, policy: .init(sizeLimit: 10))
        #expect(limited.entries.count == 10 && limited.result.code == .sizeLimitExceeded)
        let exact = many.search(request, policy: .init(sizeLimit: 50))
        #expect(exact.entries.count == 50 && exact.result.code == .success)
        var seen = 0, cookie: [UInt8] = [], pages = 0
        repeat {
            let page = many.search(request, paging: (20, cookie), policy: .init(sizeLimit: 1000))
            seen += page.entries.count
            cookie = page.pagedCookie ?? []
            pages += 1
        } while !cookie.isEmpty && pages < 10
        #expect(seen == 50 && pages == 3)
    }
}
