/// The charsets the parser decodes (RFC 2047 words, text/* bodies for SEARCH). Others are
/// left as they are.
public enum MIMECharset: Sendable, Hashable {
    case utf8, usASCII, iso8859_1, iso8859_15, windows1252

    /// A charset by its MIME name or a common alias, ignoring case; nil if unknown.
    public init?(name: String) {
        switch name.trimmingWhitespace().lowercased() {
        case "utf-8", "utf8": self = .utf8
        case "us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us": self = .usASCII
        case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1": self = .iso8859_1
        case "iso-8859-15", "iso8859-15", "iso_8859-15", "latin9", "latin-9": self = .iso8859_15
        case "windows-1252", "cp1252", "x-cp1252": self = .windows1252
        default: return nil
        }
    }

    /// The text of `bytes`. Malformed UTF-8 becomes U+FFFD; US-ASCII with 8-bit octets (a
    /// common mislabel) is read as UTF-8 when valid, else as Windows-1252.
    public func decode<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        switch self {
        case .utf8: return String(decoding: bytes, as: UTF8.self)
        case .usASCII: return decodeText(bytes)
        case .iso8859_1: return Self.singleByte(bytes) { Unicode.Scalar($0) }
        case .iso8859_15: return Self.singleByte(bytes) { Self.iso8859_15Scalar($0) }
        case .windows1252: return Self.singleByte(bytes) { Self.windows1252Scalar($0) }
        }
    }

    static func singleByte<Bytes: Collection>(_ bytes: Bytes, _ map: (UInt8) -> Unicode.Scalar) -> String
    where Bytes.Element == UInt8 {
        var scalars = String.UnicodeScalarView()
        for byte in bytes { scalars.append(map(byte)) }
        return String(scalars)
    }

    /// ISO-8859-15 is ISO-8859-1 with eight code points changed (the euro sign among them).
    static func iso8859_15Scalar(_ byte: UInt8) -> Unicode.Scalar {
        let code: UInt32 = switch byte {
        case 0xA4: 0x20AC
        case 0xA6: 0x0160
        case 0xA8: 0x0161
        case 0xB4: 0x017D
        case 0xB8: 0x017E
        case 0xBC: 0x0152
        case 0xBD: 0x0153
        case 0xBE: 0x0178
        default: UInt32(byte)
        }
        return Unicode.Scalar(code) ?? Unicode.Scalar(byte)
    }

    /// Windows-1252's 0x80-0x9F; the five unassigned octets map to the C1 controls, as the
    /// WHATWG encoding standard does.
    static let windows1252High: [UInt32] = [
        0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
        0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
    ]

    static func windows1252Scalar(_ byte: UInt8) -> Unicode.Scalar {
        guard (0x80...0x9F).contains(byte) else { return Unicode.Scalar(byte) }
        return Unicode.Scalar(windows1252High[Int(byte - 0x80)]) ?? Unicode.Scalar(byte)
    }
}

/// Raw header or body bytes of unknown charset as text: UTF-8 when they are valid UTF-8
/// (RFC 6532 headers, most 8-bit mail today), otherwise Windows-1252 (a superset of
/// ISO-8859-1 for printable text), so no octet is lost as U+FFFD.
func decodeText<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
    if bytes.allSatisfy({ $0 < 0x80 }) { return String(decoding: bytes, as: UTF8.self) }
    if let text = String(validating: bytes, as: UTF8.self) { return text }
    return MIMECharset.singleByte(bytes) { MIMECharset.windows1252Scalar($0) }
}

extension String {
    /// Without leading and trailing spaces and tabs.
    func trimmingWhitespace() -> String {
        let utf8 = Array(self.utf8)
        var start = 0
        var end = utf8.count
        while start < end, Byte.isWhitespace(utf8[start]) || Byte.isLineBreak(utf8[start]) { start += 1 }
        while end > start, Byte.isWhitespace(utf8[end - 1]) || Byte.isLineBreak(utf8[end - 1]) { end -= 1 }
        if start == 0, end == utf8.count { return self }
        return String(decoding: utf8[start..<end], as: UTF8.self)
    }
}
