/// One directory entry: its DN and its attributes in the order they are served.
public struct LDAPEntry: Equatable, Sendable {
    public struct Attribute: Equatable, Sendable {
        /// The name as served (`givenName`); matching uses its canonical form.
        public var name: String
        public var values: [String]

        public init(_ name: String, _ values: [String]) {
            self.name = name
            self.values = values
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
        let name = LDAPSchema.canonicalName(description)
        return attributes.first { LDAPSchema.canonicalName($0.name) == name }?.values
    }

    /// The attributes a search returns (RFC 4511 §4.5.1.8): all user attributes for an
    /// empty list or `*`; none for `1.1` alone; else those named, in the entry's order.
    /// With `typesOnly`, names without values.
    public func selecting(_ requested: [String], typesOnly: Bool) -> [LDAPAttribute] {
        let names = Set(requested.map(LDAPSchema.canonicalName))
        let all = requested.isEmpty || names.contains("*")
        let chosen = attributes.filter { all || names.contains(LDAPSchema.canonicalName($0.name)) }
        return chosen.map { LDAPAttribute($0.name, strings: typesOnly ? [] : $0.values) }
    }
}
