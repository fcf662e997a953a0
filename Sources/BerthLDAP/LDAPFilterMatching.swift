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

/// A filter made ready to test many entries: attribute types canonical, assertion values
/// folded once, and what can only be Undefined (an unknown type or matching rule, a value
/// that is not UTF-8) already Undefined. Entries carry their folded values, so a test is
/// string comparisons only.
indirect enum LDAPPreparedFilter: Sendable {
    case and([LDAPPreparedFilter])
    case or([LDAPPreparedFilter])
    case not(LDAPPreparedFilter)
    case constant(LDAPTruth)
    case equality(String, String)
    case greaterOrEqual(String, String)
    case lessOrEqual(String, String)
    case present(String)
    case substrings(String, initial: String?, any: [String], final: String?)
    case approx(String, String)
    /// `type` nil: any attribute; `exact`: caseExact rules compare values as they are.
    case extensible(type: String?, value: String, exact: Bool, dnAttributes: Bool)

    func evaluate(_ entry: LDAPEntry) -> LDAPTruth {
        /// TRUE if any folded value satisfies `test`, FALSE if none does (or there is none).
        func any(_ type: String, _ test: (String) -> Bool) -> LDAPTruth {
            LDAPTruth(entry.attribute(canonical: type)?.foldedValues.contains(where: test) ?? false)
        }
        switch self {
        case .and(let filters):
            var result = LDAPTruth.true
            for filter in filters {
                switch filter.evaluate(entry) {
                case .false: return .false
                case .undefined: result = .undefined
                case .true: break
                }
            }
            return result
        case .or(let filters):
            var result = LDAPTruth.false
            for filter in filters {
                switch filter.evaluate(entry) {
                case .true: return .true
                case .undefined: result = .undefined
                case .false: break
                }
            }
            return result
        case .not(let filter):
            return !filter.evaluate(entry)
        case .constant(let truth):
            return truth
        case .equality(let type, let wanted):
            return any(type) { $0 == wanted }
        case .greaterOrEqual(let type, let bound):
            return any(type) { $0 >= bound }
        case .lessOrEqual(let type, let bound):
            return any(type) { $0 <= bound }
        case .present(let type):
            return LDAPTruth(entry.attribute(canonical: type) != nil)
        case .substrings(let type, let initial, let inner, let final):
            return any(type) { LDAPFilter.substrings($0, initial: initial, any: inner, final: final) }
        case .approx(let type, let wanted):
            return any(type) { LDAPFilter.approximately($0, wanted) }
        case .extensible(let type, let wanted, let exact, let dnAttributes):
            for attribute in entry.attributes where type == nil || attribute.canonicalName == type {
                if (exact ? attribute.values : attribute.foldedValues).contains(wanted) { return .true }
            }
            if dnAttributes {
                for rdn in entry.dn.rdns {
                    for part in rdn where type == nil || LDAPSchema.canonicalName(part.type) == type {
                        if (exact ? part.value : LDAPSchema.fold(part.value)) == wanted { return .true }
                    }
                }
            }
            return .false
        }
    }
}

extension LDAPFilter {
    /// Longest value compared by approxMatch's edit distance; longer ones must be equal.
    static let approxLimit = 256

    public func evaluate(_ entry: LDAPEntry, knownAttributes: Set<String>) -> LDAPTruth {
        prepared(knownAttributes: knownAttributes).evaluate(entry)
    }

    func prepared(knownAttributes: Set<String>) -> LDAPPreparedFilter {
        /// The canonical type, or nil when the schema does not know it.
        func known(_ attribute: String) -> String? {
            let type = LDAPSchema.canonicalName(attribute)
            return knownAttributes.contains(type) ? type : nil
        }
        func assertion(_ value: [UInt8]) -> String? {
            let text = String(decoding: value, as: UTF8.self)
            return text.utf8.elementsEqual(value) ? LDAPSchema.fold(text) : nil
        }
        let undefined = LDAPPreparedFilter.constant(.undefined)
        switch self {
        case .and(let filters):
            return .and(filters.map { $0.prepared(knownAttributes: knownAttributes) })
        case .or(let filters):
            return .or(filters.map { $0.prepared(knownAttributes: knownAttributes) })
        case .not(let filter):
            return .not(filter.prepared(knownAttributes: knownAttributes))
        case .equalityMatch(let attribute, let value):
            guard let type = known(attribute), let wanted = assertion(value) else { return undefined }
            return .equality(type, wanted)
        case .greaterOrEqual(let attribute, let value):
            guard let type = known(attribute), type != "objectclass", let bound = assertion(value) else { return undefined }
            return .greaterOrEqual(type, bound)
        case .lessOrEqual(let attribute, let value):
            guard let type = known(attribute), type != "objectclass", let bound = assertion(value) else { return undefined }
            return .lessOrEqual(type, bound)
        case .present(let attribute):
            // objectClass is present in every entry (RFC 4512 §2.4.1), whatever the schema;
            // a type no entry has is simply absent (FALSE), not Undefined.
            let type = LDAPSchema.canonicalName(attribute)
            return type == "objectclass" ? .constant(.true) : .present(type)
        case .substrings(let attribute, let initial, let middle, let final):
            let start = initial.map(assertion), end = final.map(assertion), inner = middle.map(assertion)
            guard let type = known(attribute), start != .some(nil), end != .some(nil), !inner.contains(nil) else { return undefined }
            return .substrings(type, initial: start ?? nil, any: inner.compactMap { $0 }, final: end ?? nil)
        case .approxMatch(let attribute, let value):
            guard let type = known(attribute), let wanted = assertion(value) else { return undefined }
            return .approx(type, wanted)
        case .extensibleMatch(let rule, let attribute, let value, let dnAttributes):
            let text = String(decoding: value, as: UTF8.self)
            guard text.utf8.elementsEqual(value) else { return undefined }
            let exact: Bool
            switch rule {
            case nil, "2.5.13.2", "caseIgnoreMatch", "1.3.6.1.4.1.1466.109.114.2", "caseIgnoreIA5Match", "2.5.13.0",
                 "objectIdentifierMatch":
                exact = false
            case "2.5.13.5", "caseExactMatch", "1.3.6.1.4.1.1466.109.114.1", "caseExactIA5Match":
                exact = true
            default:
                return undefined
            }
            var type: String?
            if let attribute {
                guard let canonical = known(attribute) else { return undefined }
                type = canonical
            }
            return .extensible(type: type, value: exact ? text : LDAPSchema.fold(text), exact: exact, dnAttributes: dnAttributes)
        }
    }

    /// X.501 substrings: initial at the start, each any after the one before, final at the
    /// end, none overlapping. Compared as UTF-8 bytes of the folded values (a scan of a
    /// whole directory runs this on every entry; byte search is many times faster than
    /// Character search, and folding already made equal text equal bytes).
    static func substrings(_ value: String, initial: String?, any: [String], final: String?) -> Bool {
        var value = value
        return value.withUTF8 { bytes in
            var low = 0, high = bytes.count
            if let initial {
                let prefix = initial.utf8
                guard prefix.count <= high, bytes[0..<prefix.count].elementsEqual(prefix) else { return false }
                low = prefix.count
            }
            if let final {
                let suffix = final.utf8
                guard suffix.count <= high - low, bytes[(high - suffix.count)..<high].elementsEqual(suffix) else { return false }
                high -= suffix.count
            }
            for part in any where !part.isEmpty {
                guard let found = find(part.utf8, in: bytes, from: low, to: high) else { return false }
                low = found
            }
            return true
        }
    }

    /// The index just past the first occurrence of `needle` in `haystack[from..<to]`.
    private static func find(_ needle: String.UTF8View, in haystack: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> Int? {
        let count = needle.count
        guard count <= to - from, let first = needle.first else { return nil }
        var position = from
        while position + count <= to {
            if haystack[position] == first && haystack[position..<(position + count)].elementsEqual(needle) {
                return position + count
            }
            position += 1
        }
        return nil
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
