/// `Content-Transfer-Encoding` decoders (RFC 2045 §6.7, §6.8), lenient as real mail needs:
/// malformed input is decoded as far as it goes, never refused.
public enum MIMETransferEncoding {
    /// Quoted-printable (RFC 2045 §6.7): `=XX` octets, `=` CRLF soft line breaks. An `=`
    /// not followed by two hex digits or a line end is kept as it is.
    public static func decodeQuotedPrintable<Bytes: Collection>(_ input: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        decodeQ(Array(input), underscoreIsSpace: false)
    }

    /// RFC 2047 §4.2 "Q" is quoted-printable with `_` for space.
    static func decodeQ(_ bytes: [UInt8], underscoreIsSpace: Bool) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == Byte.equals {
                if index + 2 < bytes.count, let high = Byte.hexValue(bytes[index + 1]), let low = Byte.hexValue(bytes[index + 2]) {
                    output.append(high << 4 | low)
                    index += 3
                    continue
                }
                // A soft line break, allowing whitespace between "=" and the line end.
                var next = index + 1
                while next < bytes.count, Byte.isWhitespace(bytes[next]) { next += 1 }
                if next < bytes.count, bytes[next] == Byte.cr, next + 1 < bytes.count, bytes[next + 1] == Byte.lf {
                    index = next + 2
                    continue
                }
                if next < bytes.count, bytes[next] == Byte.lf {
                    index = next + 1
                    continue
                }
                if next == bytes.count, !underscoreIsSpace {
                    index = next
                    continue
                }
                output.append(byte)
            } else if underscoreIsSpace, byte == Byte.underscore {
                output.append(Byte.space)
            } else {
                output.append(byte)
            }
            index += 1
        }
        return output
    }

    /// Base64 (RFC 2045 §6.8), skipping line breaks and any octet outside the alphabet;
    /// `=` ends a group, so concatenated encodings decode too. Accepts the URL-safe
    /// alphabet and missing padding.
    public static func decodeBase64<Bytes: Collection>(_ input: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var output: [UInt8] = []
        output.reserveCapacity(input.count / 4 * 3 + 3)
        var accumulator: UInt32 = 0
        var bits = 0
        for byte in input {
            let value: UInt32
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = UInt32(byte - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = UInt32(byte - UInt8(ascii: "a")) + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = UInt32(byte - UInt8(ascii: "0")) + 52
            case UInt8(ascii: "+"), UInt8(ascii: "-"): value = 62
            case UInt8(ascii: "/"), UInt8(ascii: "_"): value = 63
            case Byte.equals:
                accumulator = 0
                bits = 0
                continue
            default: continue
            }
            accumulator = (accumulator << 6 | value) & 0xFF_FFFF
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8((accumulator >> UInt32(bits)) & 0xFF))
            }
        }
        return output
    }

    /// The body decoded by its `Content-Transfer-Encoding` name; 7bit, 8bit, binary and
    /// unknown encodings are returned as they are.
    public static func decode<Bytes: Collection>(_ input: Bytes, encoding: String) -> [UInt8] where Bytes.Element == UInt8 {
        switch encoding.trimmingWhitespace().lowercased() {
        case "quoted-printable": decodeQuotedPrintable(input)
        case "base64": decodeBase64(input)
        default: Array(input)
        }
    }
}
