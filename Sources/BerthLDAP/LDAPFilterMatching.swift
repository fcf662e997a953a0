/// RFC 4511 §4.5.1.7: a filter is TRUE, FALSE or Undefined for an entry; an entry is
/// returned only when it is TRUE. Undefined comes from an attribute type the schema does
/// not know, a matching rule it does not have, or a value that is not UTF-8.
public enum LDAPTruth: Equatable, Sendable {
    case `true`, `false`, undefined

    init(_ value: Bool) { self = value ? .true : .false }

    static prefix func ! (value: LDAPTruth) -> LDAPTruth {
        switch value {
        case .true: .false
        case .false: .true
        case .undefined: .undefined
        }
    }
}

extension LDAPFilter {
    /// Longest value compared by approxMatch's edit distance; longer ones must be equal.
    static let approxLimit = 256

    public func evaluate(_ entry: LDAPEntry, knownAttributes: Set<String>) -> LDAPTruth {
        func known(_ attribute: String) -> Bool { knownAttributes.contains(LDAPSchema.canonicalName(attribute)) }
        func assertion(_ value: [UInt8]) -> String? {
            let text = String(decoding: value, as: UTF8.self)
            return text.utf8.elementsEqual(value) ? LDAPSchema.fold(text) : nil
        }
        /// TRUE if any value satisfies `test`, FALSE if none does (or the entry has none).
        func any(_ attribute: String, _ test: (String) -> Bool) -> LDAPTruth {
            guard known(attribute) else { return .undefined }
            return LDAPTruth(entry.values(attribute)?.contains { test(LDAPSchema.fold($0)) } ?? false)
        }
        switch self {
        case .and(let filters):
            var result = LDAPTruth.true
            for filter in filters {
                switch filter.evaluate(entry, knownAttributes: knownAttributes) {
                case .false: return .false
                case .undefined: result = .undefined
                case .true: break
                }
            }
            return result
        case .or(let filters):
            var result = LDAPTruth.false
            for filter in filters {
                switch filter.evaluate(entry, knownAttributes: knownAttributes) {
                case .true: return .true
                case .undefined: result = .undefined
                case .false: break
                }
            }
            return result
        case .not(let filter):
            return !filter.evaluate(entry, knownAttributes: knownAttributes)
        case .equalityMatch(let attribute, let value):
            guard let wanted = assertion(value) else { return .undefined }
            return any(attribute) { $0 == wanted }
        case .greaterOrEqual(let attribute, let value):
            guard let bound = assertion(value), LDAPSchema.canonicalName(attribute) != "objectclass" else { return .undefined }
            return any(attribute) { $0 >= bound }
        case .lessOrEqual(let attribute, let value):
            guard let bound = assertion(value), LDAPSchema.canonicalName(attribute) != "objectclass" else { return .undefined }
            return any(attribute) { $0 <= bound }
        case .present(let attribute):
            // objectClass is present in every entry (RFC 4512 §2.4.1), whatever the schema.
            if LDAPSchema.canonicalName(attribute) == "objectclass" { return .true }
            return LDAPTruth(entry.values(attribute) != nil)
        case .substrings(let attribute, let initial, let middle, let final):
            let start = initial.map(assertion), end = final.map(assertion), inner = middle.map(assertion)
            guard start != .some(nil), end != .some(nil), !inner.contains(nil) else { return .undefined }
            return any(attribute) { Self.substrings($0, initial: start ?? nil, any: inner.compactMap { $0 }, final: end ?? nil) }
        case .approxMatch(let attribute, let value):
            guard let wanted = assertion(value) else { return .undefined }
            return any(attribute) { Self.approximately($0, wanted) }
        case .extensibleMatch(let rule, let attribute, let value, let dnAttributes):
            let text = String(decoding: value, as: UTF8.self)
            guard text.utf8.elementsEqual(value) else { return .undefined }
            let exact: Bool
            switch rule {
            case nil, "2.5.13.2", "caseIgnoreMatch", "1.3.6.1.4.1.1466.109.114.2", "caseIgnoreIA5Match", "2.5.13.0",
                 "objectIdentifierMatch":
                exact = false
            case "2.5.13.5", "caseExactMatch", "1.3.6.1.4.1.1466.109.114.1", "caseExactIA5Match":
                exact = true
            default:
                return .undefined
            }
            let wanted = exact ? text : LDAPSchema.fold(text)
            func matches(_ candidate: String) -> Bool { (exact ? candidate : LDAPSchema.fold(candidate)) == wanted }
            var pairs: [(String, String)] = []
            for item in entry.attributes { for value in item.values { pairs.append((item.name, value)) } }
            if dnAttributes {
                for rdn in entry.dn.rdns { for part in rdn { pairs.append((part.type, part.value)) } }
            }
            if let attribute {
                guard known(attribute) else { return .undefined }
                let name = LDAPSchema.canonicalName(attribute)
                pairs = pairs.filter { LDAPSchema.canonicalName($0.0) == name }
            }
            return LDAPTruth(pairs.contains { matches($0.1) })
        }
    }

    /// X.501 substrings: initial at the start, each any after the one before, final at the
    /// end, none overlapping.
    static func substrings(_ value: String, initial: String?, any: [String], final: String?) -> Bool {
        var rest = Substring(value)
        if let initial {
            guard rest.hasPrefix(initial) else { return false }
            rest = rest.dropFirst(initial.count)
        }
        if let final {
            guard rest.hasSuffix(final) else { return false }
            rest = rest.dropLast(final.count)
        }
        for part in any where !part.isEmpty {
            guard let found = rest.firstRange(of: part) else { return false }
            rest = rest[found.upperBound...]
        }
        return true
    }

    /// "Sounds like", answered as: equal once everything but letters and digits is
    /// dropped, or one edit apart (a typo) when both have at least 4 of them.
    static func approximately(_ value: String, _ wanted: String) -> Bool {
        let a = Array(value.unicodeScalars.filter { $0.properties.isAlphabetic || $0.properties.numericType != nil })
        let b = Array(wanted.unicodeScalars.filter { $0.properties.isAlphabetic || $0.properties.numericType != nil })
        if a == b { return true }
        guard a.count >= 4, b.count >= 4, a.count <= approxLimit, b.count <= approxLimit, abs(a.count - b.count) <= 1 else {
            return false
        }
        // Levenshtein distance ≤ 1, in one pass.
        var i = 0, j = 0, edits = 0
        while i < a.count && j < b.count {
            if a[i] == b[j] {
                i += 1
                j += 1
                continue
            }
            edits += 1
            if edits > 1 { return false }
            if a.count > b.count { i += 1 } else if b.count > a.count { j += 1 } else { i += 1; j += 1 }
        }
        return edits + (a.count - i) + (b.count - j) <= 1
    }
}
