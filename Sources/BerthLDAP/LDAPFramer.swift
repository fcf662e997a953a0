/// Where the first LDAPMessage ends in the bytes received so far.
///
/// RFC 4511 §5.1: an LDAPMessage is one BER SEQUENCE with a definite length, so the frame is
/// known from its first 2–6 bytes. The framer reads only those: nothing is allocated for a
/// length the client announces until the bytes themselves have arrived, and a message
/// larger than the limit is refused from its header.
public enum LDAPFramer {
    public enum Frame: Equatable, Sendable {
        /// Not even the header is complete, or the message is not.
        case needMore
        /// The first `length` bytes are one whole LDAPMessage.
        case message(length: Int)
    }

    public enum Error: Swift.Error, Equatable, Sendable, CustomStringConvertible {
        /// The first byte is not a SEQUENCE tag: not LDAP (or not in step with it).
        case notASequence(UInt8)
        /// The indefinite form, which LDAP does not use (RFC 4511 §5.1).
        case indefiniteLength
        /// More than 4 length octets, or a length over `maxSize`.
        case tooLarge(announced: UInt64)

        public var description: String {
            switch self {
            case .notASequence(let byte): "not an LDAP message (first byte 0x\(String(byte, radix: 16)))"
            case .indefiniteLength: "indefinite length (RFC 4511 §5.1 allows only the definite form)"
            case .tooLarge(let announced): "message of \(announced) bytes is over the limit"
            }
        }
    }

    public static func frame<Bytes: Collection<UInt8>>(_ bytes: Bytes, maxSize: Int) throws(Error) -> Frame {
        var index = bytes.startIndex
        guard index != bytes.endIndex else { return .needMore }
        let tag = bytes[index]
        guard tag == 0x30 else { throw .notASequence(tag) }
        bytes.formIndex(after: &index)
        guard index != bytes.endIndex else { return .needMore }
        let first = bytes[index]
        bytes.formIndex(after: &index)
        var header = 2
        var length: UInt64
        if first < 0x80 {
            length = UInt64(first)
        } else if first == 0x80 {
            throw .indefiniteLength
        } else {
            // X.690 §8.1.3.5: long form, 1–126 length octets; more than 4 can only be too large
            // (or padded with zeros, which no LDAP implementation sends).
            let octets = Int(first & 0x7F)
            guard octets <= 4 else { throw .tooLarge(announced: UInt64.max) }
            length = 0
            for _ in 0..<octets {
                guard index != bytes.endIndex else { return .needMore }
                length = length << 8 | UInt64(bytes[index])
                bytes.formIndex(after: &index)
            }
            header += octets
        }
        let total = UInt64(header) + length
        guard total <= UInt64(maxSize) else { throw .tooLarge(announced: total) }
        return bytes.count >= Int(total) ? .message(length: Int(total)) : .needMore
    }
}
