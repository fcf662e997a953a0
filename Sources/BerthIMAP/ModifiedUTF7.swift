/// Modified UTF-7, the mailbox name encoding of RFC 3501 §5.1.3: printable US-ASCII
/// stands for itself except "&", written "&-"; everything else is UTF-16BE in a base64
/// variant (',' for '/', no padding) between "&" and "-".
public enum ModifiedUTF7 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,".utf8)

    static func value(of byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): UInt32(byte - UInt8(ascii: "A"))
        case UInt8(ascii: "a")...UInt8(ascii: "z"): UInt32(byte - UInt8(ascii: "a")) + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0")) + 52
        case UInt8(ascii: "+"): 62
        case UInt8(ascii: ","): 63
        default: nil
        }
    }

    /// Encodes a name for the wire.
    public static func encode(_ name: String) -> String {
        var output: [UInt8] = []
        var pending: [UInt16] = []
        func flush() {
            guard !pending.isEmpty else { return }
            output.append(UInt8(ascii: "&"))
            var bytes: [UInt8] = []
            for unit in pending {
                bytes.append(UInt8(unit >> 8))
                bytes.append(UInt8(unit & 0xFF))
            }
            var accumulator: UInt32 = 0
            var bits = 0
            for byte in bytes {
                accumulator = (accumulator << 8) | UInt32(byte)
                bits += 8
                while bits >= 6 {
                    bits -= 6
                    output.append(alphabet[Int((accumulator >> UInt32(bits)) & 0x3F)])
                }
                accumulator &= (1 << UInt32(bits)) - 1
            }
            if bits > 0 {
                output.append(alphabet[Int((accumulator << UInt32(6 - bits)) & 0x3F)])
            }
            output.append(UInt8(ascii: "-"))
            pending = []
        }
        for scalar in name.unicodeScalars {
            if scalar.value >= 0x20 && scalar.value <= 0x7E {
                flush()
                output.append(UInt8(scalar.value))
                if scalar == "&" { output.append(UInt8(ascii: "-")) }
            } else {
                pending.append(contentsOf: String(scalar).utf16)
            }
        }
        flush()
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes a name from the wire; nil unless it is well-formed modified UTF-7: only
    /// printable US-ASCII, every "&" closed by "-", no padding bits set, valid UTF-16,
    /// and no printable US-ASCII character base64-encoded (RFC 3501 §5.1.3 forbids it).
    public static func decode(_ bytes: some Collection<UInt8>) -> String? {
        let bytes = Array(bytes)
        var scalars = String.UnicodeScalarView()
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            guard byte >= 0x20 && byte <= 0x7E else { return nil }
            guard byte == UInt8(ascii: "&") else {
                scalars.append(Unicode.Scalar(byte))
                index += 1
                continue
            }
            guard let dash = bytes[(index + 1)...].firstIndex(of: UInt8(ascii: "-")) else { return nil }
            if dash == index + 1 {
                scalars.append("&")
                index = dash + 1
                continue
            }
            var units: [UInt16] = []
            var accumulator: UInt32 = 0
            var bits = 0
            for char in bytes[(index + 1)..<dash] {
                guard let value = value(of: char) else { return nil }
                accumulator = (accumulator << 6) | value
                bits += 6
                if bits >= 16 {
                    bits -= 16
                    units.append(UInt16((accumulator >> UInt32(bits)) & 0xFFFF))
                    accumulator &= (1 << UInt32(bits)) - 1
                }
            }
            // Leftover bits are padding: fewer than 6 of them, and all zero.
            guard bits < 6, accumulator == 0, !units.isEmpty else { return nil }
            var iterator = units.makeIterator()
            var decoder = UTF16()
            decoding: while true {
                switch decoder.decode(&iterator) {
                case .scalarValue(let scalar):
                    guard scalar.value < 0x20 || scalar.value > 0x7E else { return nil }
                    scalars.append(scalar)
                case .emptyInput:
                    break decoding
                case .error:
                    return nil
                }
            }
            index = dash + 1
        }
        return String(scalars)
    }
}
