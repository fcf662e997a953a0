/// A DNS message (RFC 1035 §4.1): header, question and the three record sections.
public struct DNSMessage: Sendable, Hashable {
    public var header: DNSHeader
    public var questions: [DNSQuestion]
    public var answers: [DNSResourceRecord]
    public var authorities: [DNSResourceRecord]
    public var additionals: [DNSResourceRecord]

    public init(
        header: DNSHeader,
        questions: [DNSQuestion] = [],
        answers: [DNSResourceRecord] = [],
        authorities: [DNSResourceRecord] = [],
        additionals: [DNSResourceRecord] = []
    ) {
        self.header = header
        self.questions = questions
        self.answers = answers
        self.authorities = authorities
        self.additionals = additionals
    }
}

/// The header (RFC 1035 §4.1.1). Section counts are not kept: they are the arrays' counts.
public struct DNSHeader: Sendable, Hashable {
    public var id: UInt16
    /// QR: set in a response.
    public var isResponse: Bool
    public var opcode: UInt8
    public var authoritative: Bool
    /// TC: the answer did not fit in the UDP datagram; ask again over TCP (RFC 7766 §5).
    public var truncated: Bool
    public var recursionDesired: Bool
    public var recursionAvailable: Bool
    public var rcode: DNSResponseCode

    public init(
        id: UInt16,
        isResponse: Bool = false,
        opcode: UInt8 = 0,
        authoritative: Bool = false,
        truncated: Bool = false,
        recursionDesired: Bool = true,
        recursionAvailable: Bool = false,
        rcode: DNSResponseCode = .noError
    ) {
        self.id = id
        self.isResponse = isResponse
        self.opcode = opcode
        self.authoritative = authoritative
        self.truncated = truncated
        self.recursionDesired = recursionDesired
        self.recursionAvailable = recursionAvailable
        self.rcode = rcode
    }

    /// The 16-bit flags word of RFC 1035 §4.1.1.
    var flags: UInt16 {
        var flags = UInt16(rcode.rawValue & 0x0F)
        if isResponse { flags |= 0x8000 }
        flags |= UInt16(opcode & 0x0F) << 11
        if authoritative { flags |= 0x0400 }
        if truncated { flags |= 0x0200 }
        if recursionDesired { flags |= 0x0100 }
        if recursionAvailable { flags |= 0x0080 }
        return flags
    }

    init(id: UInt16, flags: UInt16) {
        self.id = id
        isResponse = flags & 0x8000 != 0
        opcode = UInt8((flags >> 11) & 0x0F)
        authoritative = flags & 0x0400 != 0
        truncated = flags & 0x0200 != 0
        recursionDesired = flags & 0x0100 != 0
        recursionAvailable = flags & 0x0080 != 0
        rcode = DNSResponseCode(rawValue: UInt8(flags & 0x000F))
    }
}

/// RCODE (RFC 1035 §4.1.1; names from the IANA registry).
public struct DNSResponseCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let noError = DNSResponseCode(rawValue: 0)
    public static let formatError = DNSResponseCode(rawValue: 1)
    public static let serverFailure = DNSResponseCode(rawValue: 2)
    public static let nameError = DNSResponseCode(rawValue: 3)
    public static let notImplemented = DNSResponseCode(rawValue: 4)
    public static let refused = DNSResponseCode(rawValue: 5)

    public var description: String {
        switch rawValue {
        case 0: "NOERROR"
        case 1: "FORMERR"
        case 2: "SERVFAIL"
        case 3: "NXDOMAIN"
        case 4: "NOTIMP"
        case 5: "REFUSED"
        default: "RCODE \(rawValue)"
        }
    }
}

/// TYPE (RFC 1035 §3.2.2, RFC 3596 for AAAA, RFC 6891 for OPT).
public struct DNSRecordType: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let a = DNSRecordType(rawValue: 1)
    public static let ns = DNSRecordType(rawValue: 2)
    public static let cname = DNSRecordType(rawValue: 5)
    public static let soa = DNSRecordType(rawValue: 6)
    public static let mx = DNSRecordType(rawValue: 15)
    public static let txt = DNSRecordType(rawValue: 16)
    public static let aaaa = DNSRecordType(rawValue: 28)
    public static let opt = DNSRecordType(rawValue: 41)

    public var description: String {
        switch rawValue {
        case 1: "A"
        case 2: "NS"
        case 5: "CNAME"
        case 6: "SOA"
        case 15: "MX"
        case 16: "TXT"
        case 28: "AAAA"
        case 41: "OPT"
        default: "TYPE\(rawValue)"
        }
    }
}

/// CLASS IN (RFC 1035 §3.2.4), the only class Berth asks about.
public enum DNSClass {
    public static let internet: UInt16 = 1
}

/// A question (RFC 1035 §4.1.2). `name` is lower-case text without the trailing dot.
public struct DNSQuestion: Sendable, Hashable {
    public var name: String
    public var type: DNSRecordType
    public var recordClass: UInt16

    public init(name: String, type: DNSRecordType, recordClass: UInt16 = DNSClass.internet) {
        self.name = name
        self.type = type
        self.recordClass = recordClass
    }
}

/// A resource record (RFC 1035 §4.1.3). `name` is lower-case text without the trailing dot.
public struct DNSResourceRecord: Sendable, Hashable {
    public var name: String
    public var type: DNSRecordType
    public var recordClass: UInt16
    public var ttl: UInt32
    public var data: DNSRecordData

    public init(name: String, type: DNSRecordType, recordClass: UInt16 = DNSClass.internet, ttl: UInt32, data: DNSRecordData) {
        self.name = name
        self.type = type
        self.recordClass = recordClass
        self.ttl = ttl
        self.data = data
    }
}

/// RDATA of the types Berth reads; every other type is skipped by its RDLENGTH.
public enum DNSRecordData: Sendable, Hashable {
    /// RFC 1035 §3.4.1.
    case a(IPv4)
    /// RFC 3596 §2.2.
    case aaaa(IPv6)
    /// RFC 1035 §3.3.9; the exchange "" is the null MX "." of RFC 7505.
    case mx(preference: UInt16, exchange: String)
    /// RFC 1035 §3.3.14: one or more character-strings, kept as bytes.
    case txt([[UInt8]])
    /// RFC 1035 §3.3.1.
    case cname(String)
    /// RFC 1035 §3.3.13; only MINIMUM matters here, for negative caching (RFC 2308 §4).
    case soa(primary: String, mailbox: String, serial: UInt32, minimum: UInt32)
    /// Any other type, not decoded.
    case other

    /// An IPv4 address in network byte order.
    public struct IPv4: Sendable, Hashable, CustomStringConvertible {
        public var value: UInt32
        public init(_ value: UInt32) { self.value = value }
        /// Dotted quad.
        public var description: String { "\(value >> 24).\((value >> 16) & 0xFF).\((value >> 8) & 0xFF).\(value & 0xFF)" }
    }

    /// An IPv6 address as eight 16-bit groups.
    public struct IPv6: Sendable, Hashable, CustomStringConvertible {
        public var groups: [UInt16]
        /// `groups` must hold exactly eight values.
        public init(groups: [UInt16]) {
            precondition(groups.count == 8, "an IPv6 address has eight groups")
            self.groups = groups
        }

        /// RFC 5952 §4: lower-case hex without leading zeros, the longest run of two or more
        /// zero groups (the first on a tie) as "::"; §5: IPv4-mapped addresses end in a dotted quad.
        public var description: String {
            if groups[0..<5].allSatisfy({ $0 == 0 }) && groups[5] == 0xFFFF {
                return "::ffff:\(groups[6] >> 8).\(groups[6] & 0xFF).\(groups[7] >> 8).\(groups[7] & 0xFF)"
            }
            var bestStart = -1, bestLength = 0, index = 0
            while index < 8 {
                guard groups[index] == 0 else { index += 1; continue }
                var end = index
                while end < 8 && groups[end] == 0 { end += 1 }
                if end - index > bestLength { bestStart = index; bestLength = end - index }
                index = end
            }
            let hex = { (range: Range<Int>) in range.map { String(groups[$0], radix: 16) }.joined(separator: ":") }
            guard bestLength >= 2 else { return hex(0..<8) }
            return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
        }
    }
}
