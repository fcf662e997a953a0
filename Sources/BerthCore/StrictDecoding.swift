/// What the admin API asks of a request body beyond well-formed JSON: no field it does not
/// know (a misspelt one would be silently ignored), no key twice in one object (which of
/// the two wins is parser-dependent), and whole numbers only (every number of the API is
/// an integer; `25.0` is not quietly 25).

/// Any key of a JSON object.
public struct AnyCodingKey: CodingKey, Hashable, Sendable {
    public var stringValue: String
    public var intValue: Int?
    public init(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
}

public enum StrictDecoding {
    /// The `debugDescription` of the `DecodingError.dataCorrupted` thrown for an unknown
    /// field; its coding path ends at the field.
    public static let unknownField = "unknown field"
}

extension Decoder {
    /// Refuses the first (in sorted order) key of the JSON object that `Keys` does not name.
    /// Call at the start of a body type's `init(from:)`.
    public func refuseUnknownKeys<Keys: CodingKey>(_ keys: Keys.Type) throws {
        let container = try container(keyedBy: AnyCodingKey.self)
        let unknown = container.allKeys.filter { Keys(stringValue: $0.stringValue) == nil }
        if let first = unknown.min(by: { $0.stringValue < $1.stringValue }) {
            throw DecodingError.dataCorruptedError(forKey: first, in: container, debugDescription: StrictDecoding.unknownField)
        }
    }
}

/// A port id as a request may write it: a JSON string (`"7"`, as the API returns ids) or
/// a whole number (`7`).
public struct PortID: Decodable, Hashable, Sendable {
    public var value: String

    public init(_ value: String) { self.value = value }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            value = text
        } else if let number = try? container.decode(Int.self) {
            value = String(number)
        } else {
            throw DecodingError.typeMismatch(
                PortID.self, .init(codingPath: decoder.codingPath, debugDescription: "a port id is a string or a whole number"))
        }
    }
}

/// A scan of JSON text (already known to be well-formed) for what `JSONDecoder` lets
/// through: a key twice in one object, a number with a fraction or exponent.
public enum StrictJSON {
    public enum Problem: Sendable, Hashable {
        case duplicateKey
        case notWholeNumber
    }

    /// The first problem and the path to it (`ports[0]`, `outbound.ipv4.mode`), or nil.
    public static func firstProblem(in bytes: [UInt8]) -> (path: String, problem: Problem)? {
        var scanner = Scanner(bytes: bytes)
        return scanner.value(path: "")
    }

    struct Scanner {
        let bytes: [UInt8]
        var index = 0
        /// Deeper than any API body; beyond it the scan stops (the decoder refuses such depth).
        static let maxDepth = 64
        var depth = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        mutating func value(path: String) -> (path: String, problem: Problem)? {
            skipSpace()
            guard index < bytes.count else { return nil }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                return object(path: path)
            case UInt8(ascii: "["):
                return array(path: path)
            case UInt8(ascii: "\""):
                _ = string()
                return nil
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                var whole = true
                while index < bytes.count, "-+.eE0123456789".utf8.contains(bytes[index]) {
                    if ".eE".utf8.contains(bytes[index]) { whole = false }
                    index += 1
                }
                return whole ? nil : (path, .notWholeNumber)
            default:  // true, false, null
                while index < bytes.count, bytes[index] >= UInt8(ascii: "a"), bytes[index] <= UInt8(ascii: "z") { index += 1 }
                return nil
            }
        }

        mutating func object(path: String) -> (path: String, problem: Problem)? {
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maxDepth else { return nil }
            index += 1
            var seen: Set<String> = []
            while true {
                skipSpace()
                guard index < bytes.count else { return nil }
                if bytes[index] == UInt8(ascii: "}") { index += 1; return nil }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                guard bytes[index] == UInt8(ascii: "\"") else { return nil }
                let key = string()
                let keyPath = path.isEmpty ? key : path + "." + key
                if !seen.insert(key).inserted { return (keyPath, .duplicateKey) }
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
                index += 1
                if let problem = value(path: keyPath) { return problem }
            }
        }

        mutating func array(path: String) -> (path: String, problem: Problem)? {
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maxDepth else { return nil }
            index += 1
            var position = 0
            while true {
                skipSpace()
                guard index < bytes.count else { return nil }
                if bytes[index] == UInt8(ascii: "]") { index += 1; return nil }
                if bytes[index] == UInt8(ascii: ",") { index += 1; position += 1; continue }
                if let problem = value(path: "\(path)[\(position)]") { return problem }
            }
        }

        /// Reads a string literal and returns its text, escapes decoded (so `"a"` and
        /// `"\u0061"` are the same key).
        mutating func string() -> String {
            index += 1
            var scalars = String.UnicodeScalarView()
            var raw: [UInt8] = []
            func flush() {
                scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
                raw.removeAll()
            }
            var pendingHigh: UInt32?
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                if byte == UInt8(ascii: "\"") { break }
                guard byte == UInt8(ascii: "\\"), index < bytes.count else {
                    raw.append(byte)
                    continue
                }
                let escape = bytes[index]
                index += 1
                flush()
                switch escape {
                case UInt8(ascii: "u"):
                    guard index + 4 <= bytes.count,
                          let code = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16)
                    else { continue }
                    index += 4
                    if (0xD800...0xDBFF).contains(code) {
                        pendingHigh = code
                    } else if (0xDC00...0xDFFF).contains(code), let high = pendingHigh {
                        let combined = 0x10000 + ((high - 0xD800) << 10) + (code - 0xDC00)
                        if let scalar = Unicode.Scalar(combined) { scalars.append(scalar) }
                        pendingHigh = nil
                    } else if let scalar = Unicode.Scalar(code) {
                        scalars.append(scalar)
                    }
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "b"): scalars.append("\u{08}")
                case UInt8(ascii: "f"): scalars.append("\u{0C}")
                default: scalars.append(Unicode.Scalar(escape))
                }
            }
            flush()
            return String(scalars)
        }
    }
}
