/// Why a DNS message was refused. Positions are byte offsets into the message.
public enum DNSMessageError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The message is longer than the transport allows (RFC 1035 §4.2).
    case tooLarge(size: Int, limit: Int)
    /// The message ends before the field that starts at `offset`.
    case truncated(offset: Int)
    /// A length octet with the reserved top bits 01 or 10: a label over 63 octets (RFC 1035 §4.1.4, RFC 6891 §5).
    case labelTooLong(offset: Int)
    /// A name over 255 octets (RFC 1035 §2.3.4).
    case nameTooLong(offset: Int)
    /// A compression pointer that does not point strictly before the name it continues,
    /// the only way loops and forward chains can be refused in one rule (RFC 1035 §4.1.4: "a prior occurrence").
    case badPointer(offset: Int, target: Int)
    /// More compression pointers in one name than `DNSLimits.compressionPointers`.
    case tooManyPointers(offset: Int)
    /// RDATA whose contents do not fill its RDLENGTH exactly, or run past it.
    case badRecordData(type: DNSRecordType, offset: Int)

    public var description: String {
        switch self {
        case .tooLarge(let size, let limit): "DNS message of \(size) octets exceeds the \(limit)-octet limit"
        case .truncated(let offset): "DNS message ends early (at octet \(offset))"
        case .labelTooLong(let offset): "DNS label longer than 63 octets or of a reserved type at octet \(offset)"
        case .nameTooLong(let offset): "DNS name longer than 255 octets at octet \(offset)"
        case .badPointer(let offset, let target): "DNS compression pointer at octet \(offset) to \(target) does not point backwards"
        case .tooManyPointers(let offset): "DNS name at octet \(offset) has too many compression pointers"
        case .badRecordData(let type, let offset): "DNS \(type) record data at octet \(offset) does not match its length"
        }
    }
}

extension DNSMessage {
    /// Parses a whole message (RFC 1035 §4.1).
    ///
    /// Nothing is allocated from a count or length before the bytes it describes exist: each
    /// record needs at least 11 octets, so section counts cannot make the parser loop or
    /// reserve past the end. A response with TC set (RFC 1035 §4.1.1) may end inside a record
    /// section; the records read so far are kept and the caller is expected to retry over TCP.
    ///
    /// - Parameter maximumSize: `DNSLimits.udpResponseSize` or `DNSLimits.tcpResponseSize`.
    public init(parsing bytes: [UInt8], maximumSize: Int = DNSLimits.tcpResponseSize) throws(DNSMessageError) {
        guard bytes.count <= maximumSize else { throw .tooLarge(size: bytes.count, limit: maximumSize) }
        var reader = DNSReader(bytes: bytes)
        let (header, counts) = try reader.readHeader()
        var questions: [DNSQuestion] = []
        for _ in 0..<counts.questions {
            questions.append(try reader.readQuestion())
        }
        self.init(header: header, questions: questions)
        do throws(DNSMessageError) {
            for _ in 0..<counts.answers { answers.append(try reader.readRecord()) }
            for _ in 0..<counts.authorities { authorities.append(try reader.readRecord()) }
            for _ in 0..<counts.additionals { additionals.append(try reader.readRecord()) }
        } catch {
            guard header.truncated, case .truncated = error else { throw error }
            return
        }
        // Octets after the last record are ignored, as resolvers commonly do.
    }

    /// The header and questions alone, to match a response whose records did not parse
    /// against the query it claims to answer.
    public static func parseIdentity(_ bytes: [UInt8]) throws(DNSMessageError) -> (DNSHeader, [DNSQuestion]) {
        var reader = DNSReader(bytes: bytes)
        let (header, counts) = try reader.readHeader()
        var questions: [DNSQuestion] = []
        for _ in 0..<counts.questions {
            questions.append(try reader.readQuestion())
        }
        return (header, questions)
    }
}

/// A cursor over a message's bytes. Every read checks the bounds first.
struct DNSReader {
    let bytes: [UInt8]
    var position = 0

    struct Counts {
        var questions: Int, answers: Int, authorities: Int, additionals: Int
    }

    mutating func readUInt8() throws(DNSMessageError) -> UInt8 {
        guard position < bytes.count else { throw .truncated(offset: position) }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func readUInt16() throws(DNSMessageError) -> UInt16 {
        guard bytes.count - position >= 2 else { throw .truncated(offset: position) }
        defer { position += 2 }
        return UInt16(bytes[position]) << 8 | UInt16(bytes[position + 1])
    }

    mutating func readUInt32() throws(DNSMessageError) -> UInt32 {
        let high = try readUInt16()
        return UInt32(high) << 16 | UInt32(try readUInt16())
    }

    /// RFC 1035 §4.1.1.
    mutating func readHeader() throws(DNSMessageError) -> (DNSHeader, Counts) {
        guard bytes.count >= DNSLimits.headerLength else { throw .truncated(offset: bytes.count) }
        let id = try readUInt16()
        let flags = try readUInt16()
        let counts = Counts(
            questions: Int(try readUInt16()),
            answers: Int(try readUInt16()),
            authorities: Int(try readUInt16()),
            additionals: Int(try readUInt16())
        )
        return (DNSHeader(id: id, flags: flags), counts)
    }

    /// RFC 1035 §4.1.2: QNAME QTYPE QCLASS.
    mutating func readQuestion() throws(DNSMessageError) -> DNSQuestion {
        let name = try readName()
        let type = DNSRecordType(rawValue: try readUInt16())
        return DNSQuestion(name: name, type: type, recordClass: try readUInt16())
    }

    /// RFC 1035 §4.1.3: NAME TYPE CLASS TTL RDLENGTH RDATA.
    mutating func readRecord() throws(DNSMessageError) -> DNSResourceRecord {
        let name = try readName()
        let type = DNSRecordType(rawValue: try readUInt16())
        let recordClass = try readUInt16()
        let ttl = try readUInt32()
        let length = Int(try readUInt16())
        let start = position
        guard bytes.count - start >= length else { throw .truncated(offset: start) }
        let end = start + length
        let data = try readRecordData(type: type, end: end)
        guard position == end else { throw .badRecordData(type: type, offset: start) }
        // RFC 2181 §8: a TTL with the top bit set is read as zero.
        return DNSResourceRecord(name: name, type: type, recordClass: recordClass, ttl: ttl > Int32.max.magnitude ? 0 : ttl, data: data)
    }

    /// Reads RDATA that must end exactly at `end`; reads past `end` are refused even where the
    /// message goes on, so a record cannot borrow the next one's bytes.
    private mutating func readRecordData(type: DNSRecordType, end: Int) throws(DNSMessageError) -> DNSRecordData {
        let start = position
        let length = end - start
        let bad = DNSMessageError.badRecordData(type: type, offset: start)
        switch type {
        case .a:
            guard length == 4 else { throw bad }
            return .a(.init(try readUInt32()))
        case .aaaa:
            guard length == 16 else { throw bad }
            var groups: [UInt16] = []
            groups.reserveCapacity(8)
            for _ in 0..<8 { groups.append(try readUInt16()) }
            return .aaaa(.init(groups: groups))
        case .mx:
            guard length >= 3 else { throw bad }
            let preference = try readUInt16()
            let exchange = try readName()
            guard position <= end else { throw bad }
            return .mx(preference: preference, exchange: exchange)
        case .cname:
            let target = try readName()
            guard position <= end else { throw bad }
            return .cname(target)
        case .txt:
            var strings: [[UInt8]] = []
            while position < end {
                let count = Int(try readUInt8())
                guard end - position >= count else { throw bad }
                strings.append(Array(bytes[position..<(position + count)]))
                position += count
            }
            return .txt(strings)
        case .soa:
            let primary = try readName()
            let mailbox = try readName()
            guard end - position == 20 else { throw bad }
            let serial = try readUInt32()
            position += 12  // REFRESH, RETRY, EXPIRE
            return .soa(primary: primary, mailbox: mailbox, serial: serial, minimum: try readUInt32())
        default:
            position = end
            return .other
        }
    }

    /// RFC 1035 §3.1 and §4.1.4: a sequence of labels ending in the root label or a pointer.
    ///
    /// Each pointer must point strictly before the first octet of the segment that holds it,
    /// so every jump moves to bytes never visited: loops and forward chains are impossible,
    /// and the jump count is capped besides. The result is lower-case without a trailing dot;
    /// octets other than letters, digits and printable punctuation are written `\DDD`, as in
    /// RFC 1035 §5.1 master files, and so are "." and "\" inside a label.
    mutating func readName() throws(DNSMessageError) -> String {
        var cursor = position
        var segmentStart = position
        var resumeAt: Int?
        var pointers = 0
        var wireLength = 1  // the root label
        var text: [UInt8] = []
        while true {
            guard cursor < bytes.count else { throw .truncated(offset: cursor) }
            let length = bytes[cursor]
            switch length & 0xC0 {
            case 0x00:
                if length == 0 {
                    position = resumeAt ?? (cursor + 1)
                    return String(decoding: text, as: UTF8.self)
                }
                let count = Int(length)
                wireLength += count + 1
                guard wireLength <= DNSLimits.nameLength else { throw .nameTooLong(offset: cursor) }
                guard bytes.count - (cursor + 1) >= count else { throw .truncated(offset: cursor + 1) }
                if !text.isEmpty { text.append(UInt8(ascii: ".")) }
                for byte in bytes[(cursor + 1)...(cursor + count)] {
                    Self.appendEscaped(byte, to: &text)
                }
                cursor += count + 1
            case 0xC0:
                guard bytes.count - cursor >= 2 else { throw .truncated(offset: cursor) }
                let target = Int(length & 0x3F) << 8 | Int(bytes[cursor + 1])
                guard target < segmentStart else { throw .badPointer(offset: cursor, target: target) }
                pointers += 1
                guard pointers <= DNSLimits.compressionPointers else { throw .tooManyPointers(offset: position) }
                if resumeAt == nil { resumeAt = cursor + 2 }
                cursor = target
                segmentStart = target
            default:
                throw .labelTooLong(offset: cursor)
            }
        }
    }

    private static func appendEscaped(_ byte: UInt8, to text: inout [UInt8]) {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"):
            text.append(byte | 0x20)
        case UInt8(ascii: "."), UInt8(ascii: "\\"):
            text.append(UInt8(ascii: "\\"))
            text.append(byte)
        case 0x21...0x7E:
            text.append(byte)
        default:
            text.append(UInt8(ascii: "\\"))
            text.append(contentsOf: [byte / 100, byte / 10 % 10, byte % 10].map { $0 + UInt8(ascii: "0") })
        }
    }
}
