/// A distinguished name (RFC 4514), for matching: the attribute types of its RDNs folded to
/// their canonical names, values unescaped and compared without case (every naming
/// attribute of Berth's directory — dc, ou, uid, cn — has a case-ignore equality rule).
public struct LDAPDistinguishedName: Hashable, Sendable, CustomStringConvertible {
    /// One attribute type and value of an RDN.
    public struct Attribute: Hashable, Sendable {
        public var type: String
        public var value: String

        public init(type: String, value: String) {
            self.type = LDAPSchema.canonicalName(type)
            self.value = value
        }
    }

    /// RDNs from the leaf to the root; a multi-valued RDN holds its values sorted.
    public private(set) var rdns: [[Attribute]]

    public init(rdns: [[Attribute]]) {
        self.rdns = rdns.map { $0.sorted { ($0.type, $0.value.lowercased()) < ($1.type, $1.value.lowercased()) } }
    }

    /// The root DSE's name, "".
    public static let root = LDAPDistinguishedName(rdns: [])

    public enum ParseError: Error, Equatable {
        case invalid(String)
    }

    /// RFC 4514 §3: `rdn *( "," rdn )`, `attributeTypeAndValue *( "+" ... )`, with `\`
    /// escapes (a special character, or two hex digits) and `#hex` values. Spaces around
    /// the separators are taken as RFC 2253 readers did. At most 64 RDNs.
    public init(parsing text: String) throws(ParseError) {
        var rdns: [[Attribute]] = []
        var current: [Attribute] = []
        var scalars = Array(text.unicodeScalars)[...]
        func skipSpaces() { while scalars.first == " " { scalars.removeFirst() } }
        skipSpaces()
        if scalars.isEmpty {
            self.init(rdns: [])
            return
        }
        while true {
            skipSpaces()
            var type = ""
            while let c = scalars.first, c != "=" {
                guard c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "-" || c == "." || c == " " else {
                    throw .invalid("attribute type in \"\(text)\"")
                }
                type.unicodeScalars.append(c)
                scalars.removeFirst()
            }
            type = String(type.reversed().drop { $0 == " " }.reversed())
            guard scalars.first == "=", !type.isEmpty else { throw .invalid("no attribute=value in \"\(text)\"") }
            scalars.removeFirst()
            skipSpaces()
            var value = [UInt8]()
            var trailingSpaces = 0
            if scalars.first == "#" {
                scalars.removeFirst()
                var digits = ""
                while let c = scalars.first, c.properties.isASCIIHexDigit { digits.unicodeScalars.append(c); scalars.removeFirst() }
                guard !digits.isEmpty, digits.count % 2 == 0 else { throw .invalid("#hex value in \"\(text)\"") }
                // A BER-encoded value; its bytes stand for it here (compared, not decoded).
                var index = digits.startIndex
                while index < digits.endIndex {
                    let next = digits.index(index, offsetBy: 2)
                    value.append(UInt8(digits[index..<next], radix: 16)!)
                    index = next
                }
            } else {
                while let c = scalars.first, c != ",", c != "+", c != ";" {
                    scalars.removeFirst()
                    if c == "\\" {
                        guard let escaped = scalars.first else { throw .invalid("escape at the end of \"\(text)\"") }
                        if escaped.properties.isASCIIHexDigit {
                            scalars.removeFirst()
                            guard let low = scalars.first, low.properties.isASCIIHexDigit,
                                  let byte = UInt8(String(escaped) + String(low), radix: 16)
                            else { throw .invalid("\\hex escape in \"\(text)\"") }
                            scalars.removeFirst()
                            value.append(byte)
                        } else {
                            scalars.removeFirst()
                            value.append(contentsOf: Array(String(escaped).utf8))
                        }
                        trailingSpaces = 0
                    } else {
                        trailingSpaces = c == " " ? trailingSpaces + 1 : 0
                        value.append(contentsOf: Array(String(c).utf8))
                    }
                }
                value.removeLast(trailingSpaces)  // unescaped trailing spaces are not part of it
            }
            let string = String(decoding: value, as: UTF8.self)
            guard string.utf8.elementsEqual(value) else { throw .invalid("value not UTF-8 in \"\(text)\"") }
            current.append(Attribute(type: type, value: string))
            guard let separator = scalars.first else { break }
            scalars.removeFirst()
            if separator != "+" {
                rdns.append(current)
                current = []
                guard rdns.count < 64 else { throw .invalid("more than 64 RDNs") }
            }
        }
        rdns.append(current)
        self.init(rdns: rdns)
    }

    /// The DN one level up; nil for the root.
    public var parent: LDAPDistinguishedName? {
        rdns.isEmpty ? nil : LDAPDistinguishedName(rdns: Array(rdns.dropFirst()))
    }

    /// Whether `self` is `ancestor` or below it.
    public func isWithin(_ ancestor: LDAPDistinguishedName) -> Bool {
        rdns.count >= ancestor.rdns.count && Array(rdns.suffix(ancestor.rdns.count)).elementsEqual(ancestor.rdns, by: Self.sameRDN)
    }

    /// RFC 4514 §2 form, with the types' canonical names.
    public var description: String {
        rdns.map { rdn in rdn.map { "\($0.type)=\(Self.escape($0.value))" }.joined(separator: "+") }.joined(separator: ",")
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.rdns.count == rhs.rdns.count && lhs.rdns.elementsEqual(rhs.rdns, by: sameRDN)
    }

    public func hash(into hasher: inout Hasher) {
        for rdn in rdns {
            for attribute in rdn {
                hasher.combine(attribute.type)
                hasher.combine(LDAPSchema.fold(attribute.value))
            }
        }
    }

    static func sameRDN(_ a: [Attribute], _ b: [Attribute]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.type == $1.type && LDAPSchema.fold($0.value) == LDAPSchema.fold($1.value) }
    }

    /// RFC 4514 §2.4.
    static func escape(_ value: String) -> String {
        var out = ""
        let scalars = Array(value.unicodeScalars)
        for (index, c) in scalars.enumerated() {
            let special = "\"+,;<>\\".unicodeScalars.contains(c) || (index == 0 && (c == "#" || c == " "))
                || (index == scalars.count - 1 && c == " ")
            if c == "\0" {
                out += "\\00"
            } else {
                if special { out += "\\" }
                out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
