/// Berth's address book as an LDAP tree, read-only and pure: built from the domains and
/// users (`LDAPDirectory.Person`), searched by `search`.
///
///     dc=example,dc=com                      objectClass: top, domain, dcObject
///       ou=people,dc=example,dc=com          objectClass: top, organizationalUnit
///         uid=alice,ou=people,dc=example,dc=com   objectClass: … inetOrgPerson
///
/// One naming context per domain; the root DSE (RFC 4512 §5.1) and a minimal subschema
/// entry (`cn=Subschema`) for browsing tools.
public struct LDAPDirectory: Sendable {
    public struct Person: Equatable, Sendable {
        /// The mailbox's local part: `uid` and the RDN.
        public var uid: String
        public var domain: String
        public var displayName: String
        public var givenName: String
        public var surname: String
        /// The primary address first, then aliases.
        public var mail: [String]

        public init(uid: String, domain: String, displayName: String = "", givenName: String = "", surname: String = "", mail: [String]) {
            self.uid = uid
            self.domain = domain
            self.displayName = displayName
            self.givenName = givenName
            self.surname = surname
            self.mail = mail
        }
    }

    /// Attribute types filters may name (lower-case canonical names); any other is
    /// Undefined in a filter (RFC 4511 §4.5.1.7).
    public static let knownAttributes: Set<String> = [
        "objectclass", "dc", "ou", "uid", "cn", "sn", "givenname", "displayname", "mail", "o",
    ]
    public static let subschemaDN = try! LDAPDistinguishedName(parsing: "cn=Subschema")

    /// Every entry, in tree order (a domain, its people container, its people by uid).
    public let entries: [LDAPEntry]
    /// The domain each entry belongs to, same index as `entries`.
    let entryDomains: [String]
    let index: [LDAPDistinguishedName: Int]
    /// Canonical type → folded value → the positions of the entries holding it, ascending:
    /// an equality assertion finds its entries without a scan (slapd's `eq` index).
    let equalityIndex: [String: [String: [Int]]]
    /// Canonical type → its folded values with their entries, in UTF-8 order: an initial
    /// substring (`cn=ali*`, how mail clients complete names) is a range (slapd's `sub`).
    let orderedValues: [String: [IndexedValue]]

    struct IndexedValue: Sendable {
        var value: String
        var position: Int
    }
    public let namingContexts: [String]
    let contextSet: Set<LDAPDistinguishedName>
    public let rootDSE: LDAPEntry
    public let subschema: LDAPEntry

    public init(domains: [String], people: [Person], vendorVersion: String, saslMechanisms: [String] = []) {
        var entries: [LDAPEntry] = []
        var entryDomains: [String] = []
        var contexts: [String] = []
        let byDomain = Dictionary(grouping: people) { $0.domain.lowercased() }
        for domain in domains.map({ $0.lowercased() }).sorted() {
            let labels = domain.split(separator: ".").map(String.init)
            guard let suffix = try? LDAPDistinguishedName(parsing: labels.map { "dc=\(LDAPDistinguishedName.escape($0))" }.joined(separator: ","))
            else { continue }
            contexts.append(suffix.description)
            entries.append(LDAPEntry(dn: suffix, attributes: [
                .init("objectClass", ["top", "domain", "dcObject"]), .init("dc", [labels[0]]), .init("o", [domain]),
            ]))
            let people = LDAPDistinguishedName(rdns: [[.init(type: "ou", value: "people")]] + suffix.rdns)
            entries.append(LDAPEntry(dn: people, attributes: [.init("objectClass", ["top", "organizationalUnit"]), .init("ou", ["people"])]))
            entryDomains += [domain, domain]
            for person in (byDomain[domain] ?? []).sorted(by: { $0.uid.lowercased() < $1.uid.lowercased() }) {
                let dn = LDAPDistinguishedName(rdns: [[.init(type: "uid", value: person.uid)]] + people.rdns)
                entries.append(LDAPEntry(dn: dn, attributes: Self.attributes(of: person)))
                entryDomains.append(domain)
            }
        }
        self.entries = entries
        self.entryDomains = entryDomains
        var index: [LDAPDistinguishedName: Int] = [:]
        var equalityIndex: [String: [String: [Int]]] = [:]
        var orderedValues: [String: [IndexedValue]] = [:]
        for (position, entry) in entries.enumerated() {
            index[entry.dn] = position
            for attribute in entry.attributes {
                for value in Set(attribute.foldedValues) {
                    equalityIndex[attribute.canonicalName, default: [:]][value, default: []].append(position)
                    orderedValues[attribute.canonicalName, default: []].append(IndexedValue(value: value, position: position))
                }
            }
        }
        self.index = index
        self.equalityIndex = equalityIndex
        self.orderedValues = orderedValues.mapValues { $0.sorted { $0.value.utf8.lexicographicallyPrecedes($1.value.utf8) } }
        namingContexts = contexts
        contextSet = Set(contexts.compactMap { try? LDAPDistinguishedName(parsing: $0) })
        rootDSE = LDAPEntry(dn: .root, attributes: [
            .init("objectClass", ["top"]),
            .init("namingContexts", contexts),
            .init("supportedLDAPVersion", ["3"]),
            .init("supportedExtension", [LDAPExtendedRequest.startTLS, LDAPExtendedRequest.whoAmI]),
            .init("supportedControl", [LDAPControl.pagedResults]),
            .init("supportedSASLMechanisms", saslMechanisms),
            .init("supportedFeatures", ["1.3.6.1.4.1.4203.1.5.1", "1.3.6.1.4.1.4203.1.5.3"]),  // all operational attrs, absolute true/false
            .init("subschemaSubentry", [Self.subschemaDN.description]),
            .init("vendorName", ["Berth"]),
            .init("vendorVersion", [vendorVersion]),
        ].filter { !$0.values.isEmpty })
        subschema = LDAPEntry(dn: Self.subschemaDN, attributes: [
            .init("objectClass", ["top", "subentry", "subschema", "extensibleObject"]),
            .init("cn", ["Subschema"]),
            .init("attributeTypes", Self.attributeTypes),
            .init("objectClasses", Self.objectClasses),
        ])
    }

    static func attributes(of person: Person) -> [LDAPEntry.Attribute] {
        let given = person.givenName.trimmed, surname = person.surname.trimmed, display = person.displayName.trimmed
        // person requires cn and sn (RFC 4519 §3.12): built from what there is.
        let commonName = !display.isEmpty ? display : [given, surname].filter { !$0.isEmpty }.joined(separator: " ")
        var attributes: [LDAPEntry.Attribute] = [
            .init("objectClass", ["top", "person", "organizationalPerson", "inetOrgPerson"]),
            .init("uid", [person.uid]),
            .init("cn", [commonName.isEmpty ? person.uid : commonName]),
            .init("sn", [surname.isEmpty ? (commonName.isEmpty ? person.uid : commonName) : surname]),
        ]
        if !given.isEmpty { attributes.append(.init("givenName", [given])) }
        if !display.isEmpty { attributes.append(.init("displayName", [display])) }
        attributes.append(.init("mail", person.mail))
        return attributes
    }

    public func entry(_ dn: LDAPDistinguishedName) -> LDAPEntry? {
        if dn == .root { return rootDSE }
        if dn == Self.subschemaDN { return subschema }
        return index[dn].map { entries[$0] }
    }

    /// The domain an entry is in; nil for the root DSE and the subschema.
    public func domain(of dn: LDAPDistinguishedName) -> String? {
        index[dn].map { entryDomains[$0] }
    }

    // MARK: - search

    public struct SearchResult: Equatable, Sendable {
        public var entries: [LDAPEntry]
        public var result: LDAPResult
        /// The paged results control for the done message: nil when paging was not asked.
        public var pagedCookie: [UInt8]?
    }

    /// Who searches, and how much the server allows.
    public struct SearchPolicy: Sendable {
        /// The domains whose entries the client may see; nil: all.
        public var visibleDomains: Set<String>?
        /// The server's limit on entries returned; a client asks for less with sizeLimit.
        public var sizeLimit: Int
        /// The server's limit on one search's time; a client asks for less with timeLimit.
        public var timeLimit: Duration?

        public init(visibleDomains: Set<String>? = nil, sizeLimit: Int = 1_000, timeLimit: Duration? = nil) {
            self.visibleDomains = visibleDomains
            self.sizeLimit = sizeLimit
            self.timeLimit = timeLimit
        }
    }

    /// A search's filter made ready and the entries the indexes leave it to test, worked
    /// out once: the caller reads `cost` to choose where to run it, then runs it.
    public struct SearchPlan: Sendable {
        let filter: LDAPPreparedFilter
        /// Ascending positions; nil: every entry.
        let positions: [Int]?
        /// How many entries the search tests at most.
        public let cost: Int
    }

    public func plan(_ request: LDAPSearchRequest) -> SearchPlan {
        let filter = request.filter.prepared(knownAttributes: Self.knownAttributes)
        guard request.scope != .baseObject else { return SearchPlan(filter: filter, positions: nil, cost: 1) }
        let positions = candidates(filter)
        return SearchPlan(filter: filter, positions: positions, cost: positions?.count ?? entries.count)
    }

    /// RFC 4511 §4.5: the entries in scope for which the filter is TRUE, at most the
    /// smaller size limit (then sizeLimitExceeded); with RFC 2696 paging, one page, and a
    /// cookie (the next offset and a digest of the search) that continues it. `plan`: the
    /// one `plan(request)` gave, when the caller already has it.
    public func search(
        _ request: LDAPSearchRequest, plan given: SearchPlan? = nil, paging: (size: Int, cookie: [UInt8])? = nil, policy: SearchPolicy
    ) -> SearchResult {
        let base: LDAPDistinguishedName
        do {
            base = try LDAPDistinguishedName(parsing: request.base)
        } catch {
            return SearchResult(entries: [], result: LDAPResult(.invalidDNSyntax, diagnosticMessage: "invalid DN \"\(request.base)\""))
        }
        // The server's size limit bounds one answer: a whole search, or one page of a paged
        // one (as Active Directory's MaxPageSize does), so that paging reads a directory of
        // any size in bounded pieces. The client's own sizeLimit bounds the whole search.
        let serverLimit = policy.sizeLimit > 0 ? policy.sizeLimit : Int.max
        let clientLimit = request.sizeLimit > 0 ? request.sizeLimit : Int.max
        let limit = paging == nil ? min(clientLimit, serverLimit) : clientLimit
        var digest: [UInt8] = []
        var offset = 0
        if let paging {
            digest = Self.digest(request)
            if !paging.cookie.isEmpty {
                guard paging.cookie.count == 12, Array(paging.cookie.suffix(8)) == digest else {
                    return SearchResult(entries: [], result: LDAPResult(.unwillingToPerform, diagnosticMessage: "paged results cookie is not this search's"))
                }
                offset = paging.cookie.prefix(4).reduce(0) { $0 << 8 | Int($1) }
            }
            if paging.size == 0 {
                // RFC 2696 §3: a size of zero abandons the paged search.
                return SearchResult(entries: [], result: LDAPResult(.success), pagedCookie: [])
            }
        }
        let pageSize = paging.map { min($0.size, serverLimit) } ?? Int.max
        // Matching stops once it has found one more than it can return: enough to know
        // that a limit was passed, or that another page follows.
        let (wanted, overflow) = min(limit, offset.addingReportingOverflow(pageSize).partialValue).addingReportingOverflow(1)
        let enough = overflow ? Int.max : wanted
        // RFC 4511 §4.5.1.5: the smaller of the client's time limit and the server's.
        let timeLimits = [request.timeLimit > 0 ? Duration.seconds(request.timeLimit) : nil, policy.timeLimit].compactMap { $0 }
        let deadline = timeLimits.min().map { ContinuousClock.now + $0 }
        var timedOut = false

        func visible(_ dn: LDAPDistinguishedName) -> Bool {
            guard let allowed = policy.visibleDomains, let domain = domain(of: dn) else { return true }
            return allowed.contains(domain)
        }
        let plan = given ?? self.plan(request)
        let filter = plan.filter
        /// The entries in scope for which the filter is TRUE, in tree order: those the
        /// indexes name when they can, else every entry.
        func matching(_ inScope: (Int) -> Bool) -> [LDAPEntry] {
            var found: [LDAPEntry] = []
            for (tested, position) in (plan.positions ?? Array(entries.indices)).enumerated() {
                if tested & 255 == 255, let deadline, ContinuousClock.now > deadline {
                    timedOut = true
                    break
                }
                guard inScope(position), policy.visibleDomains?.contains(entryDomains[position]) ?? true,
                      filter.evaluate(entries[position]) == .true
                else { continue }
                found.append(entries[position])
                if found.count >= enough { break }
            }
            return found
        }
        var matches: [LDAPEntry]
        if base == .root || base == Self.subschemaDN {
            // The root DSE and the subschema are found only by a base search (RFC 4512 §5.1).
            let special = base == .root ? rootDSE : subschema
            matches = request.scope == .baseObject && filter.evaluate(special) == .true ? [special] : []
            if base == .root, request.scope != .baseObject {
                // Below the root: the naming contexts (one level), or all of them (subtree).
                matches = matching { request.scope == .wholeSubtree || self.contextSet.contains(self.entries[$0].dn) }
            }
        } else {
            guard let position = index[base], visible(base) else {
                var matched = base.parent
                while let dn = matched, dn != .root, index[dn] == nil || !visible(dn) { matched = dn.parent }
                return SearchResult(entries: [], result: LDAPResult(
                    .noSuchObject, matchedDN: matched.map(\.description) ?? "", diagnosticMessage: "no entry \(base)"))
            }
            switch request.scope {
            case .baseObject:
                matches = filter.evaluate(entries[position]) == .true ? [entries[position]] : []
            case .singleLevel:
                matches = matching { self.entries[$0].dn.parent == base }
            case .wholeSubtree:
                matches = matching { self.entries[$0].dn.isWithin(base) }
            }
        }
        var code = LDAPResultCode.success
        if matches.count > limit {
            matches = Array(matches.prefix(limit))
            code = .sizeLimitExceeded
        }
        if timedOut {
            // What was found in time is returned (§4.5.2); a paged search ends here.
            let page = paging == nil ? matches : Array(matches.dropFirst(offset).prefix(pageSize))
            return SearchResult(
                entries: page, result: LDAPResult(.timeLimitExceeded, diagnosticMessage: "time limit reached; partial results"),
                pagedCookie: paging == nil ? nil : [])
        }
        guard paging != nil else { return SearchResult(entries: matches, result: LDAPResult(code)) }
        let page = Array(matches.dropFirst(offset).prefix(pageSize))
        let next = offset + page.count
        let cookie: [UInt8] = next < matches.count
            ? [UInt8(next >> 24 & 0xFF), UInt8(next >> 16 & 0xFF), UInt8(next >> 8 & 0xFF), UInt8(next & 0xFF)] + digest : []
        // sizeLimitExceeded belongs to the page that reaches the limit.
        return SearchResult(entries: page, result: LDAPResult(next < matches.count ? .success : code), pagedCookie: cookie)
    }

    /// The positions (ascending) of every entry the filter can be TRUE for, from the
    /// indexes; nil when they cannot tell (the caller scans). Each is still tested.
    func candidates(_ filter: LDAPPreparedFilter) -> [Int]? {
        switch filter {
        case .equality(let type, let value):
            return equalityIndex[type]?[value] ?? []
        case .substrings(let type, let initial?, _, _) where !initial.isEmpty:
            guard let values = orderedValues[type] else { return [] }
            let prefix = initial.utf8
            var low = 0, high = values.count
            while low < high {
                let middle = (low + high) / 2
                if values[middle].value.utf8.lexicographicallyPrecedes(prefix) { low = middle + 1 } else { high = middle }
            }
            var positions: [Int] = []
            while low < values.count, values[low].value.utf8.starts(with: prefix) {
                positions.append(values[low].position)
                low += 1
            }
            return Array(Set(positions)).sorted()
        case .constant(.false), .constant(.undefined):
            return []
        case .and(let filters):
            // The smallest list any part gives bounds the whole.
            var best: [Int]?
            for part in filters {
                if let found = candidates(part), best.map({ found.count < $0.count }) ?? true { best = found }
            }
            return best
        case .or(let filters):
            // Only when every part can tell; an empty or is FALSE (RFC 4526).
            var union = Set<Int>()
            for part in filters {
                guard let found = candidates(part) else { return nil }
                union.formUnion(found)
            }
            return union.sorted()
        default:
            return nil
        }
    }

    /// FNV-1a of the search's parameters: a cookie only continues the search it came from.
    static func digest(_ request: LDAPSearchRequest) -> [UInt8] {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in Array("\(request.base)|\(request.scope)|\(request.sizeLimit)|\(request.typesOnly)|\(request.filter)|\(request.attributes)".utf8) {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3
        }
        return (0..<8).map { UInt8(hash >> (56 - 8 * $0) & 0xFF) }
    }

    // RFC 4512 §4.1 descriptions of what the directory serves (RFC 4519, RFC 2798).
    static let attributeTypes = [
        "( 2.5.4.0 NAME 'objectClass' EQUALITY objectIdentifierMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.38 )",
        "( 2.5.4.41 NAME 'name' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",
        "( 2.5.4.3 NAME ( 'cn' 'commonName' ) SUP name )",
        "( 2.5.4.4 NAME ( 'sn' 'surname' ) SUP name )",
        "( 2.5.4.42 NAME ( 'givenName' 'gn' ) SUP name )",
        "( 2.5.4.11 NAME ( 'ou' 'organizationalUnitName' ) SUP name )",
        "( 2.5.4.10 NAME ( 'o' 'organizationName' ) SUP name )",
        "( 0.9.2342.19200300.100.1.1 NAME ( 'uid' 'userid' ) EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",
        "( 0.9.2342.19200300.100.1.3 NAME ( 'mail' 'rfc822Mailbox' ) EQUALITY caseIgnoreIA5Match SUBSTR caseIgnoreIA5SubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 )",
        "( 0.9.2342.19200300.100.1.25 NAME ( 'dc' 'domainComponent' ) EQUALITY caseIgnoreIA5Match SUBSTR caseIgnoreIA5SubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 SINGLE-VALUE )",
        "( 2.16.840.1.113730.3.1.241 NAME 'displayName' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )",
    ]
    static let objectClasses = [
        "( 2.5.6.0 NAME 'top' ABSTRACT MUST objectClass )",
        "( 2.5.6.6 NAME 'person' SUP top STRUCTURAL MUST ( sn $ cn ) )",
        "( 2.5.6.7 NAME 'organizationalPerson' SUP person STRUCTURAL MAY ou )",
        "( 2.16.840.1.113730.3.2.2 NAME 'inetOrgPerson' SUP organizationalPerson STRUCTURAL MAY ( displayName $ givenName $ mail $ uid ) )",
        "( 2.5.6.5 NAME 'organizationalUnit' SUP top STRUCTURAL MUST ou )",
        "( 0.9.2342.19200300.100.4.13 NAME 'domain' SUP top STRUCTURAL MUST dc MAY o )",
        "( 1.3.6.1.4.1.1466.344 NAME 'dcObject' SUP top AUXILIARY MUST dc )",
    ]
}

extension String {
    fileprivate var trimmed: String {
        var text = Substring(self)
        while text.first == " " { text.removeFirst() }
        while text.last == " " { text.removeLast() }
        return String(text)
    }
}
