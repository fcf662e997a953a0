/// One directory entry: its DN and its attributes in the order they are served.
public struct LDAPEntry: Equatable, Sendable {
    public struct Attribute: Equatable, Sendable {
        /// The name as served (`givenName`).
        public let name: String
        public let values: [String]
        /// What matching compares, computed once when the entry is built (a search
        /// compares every candidate): the canonical type and the case-folded values.
        public let canonicalName: String
        public let foldedValues: [String]

        public init(_ name: String, _ values: [String]) {
            self.name = name
            self.values = values
            canonicalName = LDAPSchema.canonicalName(name)
            foldedValues = values.map(LDAPSchema.fold)
        }
    }

    public var dn: LDAPDistinguishedName
    public var attributes: [Attribute]

    public init(dn: LDAPDistinguishedName, attributes: [Attribute]) {
        self.dn = dn
        self.attributes = attributes
    }

    /// The values of an attribute description (any alias, any options); nil if the entry
    /// has none.
    public func values(_ description: String) -> [String]? {
        attribute(canonical: LDAPSchema.canonicalName(description))?.values
    }

    /// The attribute of a canonical type name (`LDAPSchema.canonicalName`).
    func attribute(canonical name: String) -> Attribute? {
        attributes.first { $0.canonicalName == name }
    }

    /// The attributes a search returns (RFC 4511 §4.5.1.8): all user attributes for an
    /// empty list or `*`; none for `1.1` alone; else those named, in the entry's order.
    /// With `typesOnly`, names without values.
    public func selecting(_ requested: [String], typesOnly: Bool) -> [LDAPAttribute] {
        let names = Set(requested.map(LDAPSchema.canonicalName))
        let all = requested.isEmpty || names.contains("*")
        let chosen = attributes.filter { all || names.contains($0.canonicalName) }
        return chosen.map { LDAPAttribute($0.name, strings: typesOnly ? [] : $0.values) }
    }
}
