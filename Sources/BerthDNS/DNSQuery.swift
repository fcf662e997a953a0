/// A query Berth sends: one question, recursion desired, EDNS0 (RFC 6891) advertising
/// `DNSLimits.advertisedUDPPayload`.
public struct DNSQuery: Sendable, Hashable {
    public var id: UInt16
    public var question: DNSQuestion

    /// - Parameter name: a host or domain name in ASCII (A-labels for IDNs, RFC 5890), with or
    ///   without the trailing dot. It is lower-cased.
    public init(id: UInt16, name: String, type: DNSRecordType) throws(DNSError) {
        self.id = id
        self.question = DNSQuestion(name: try Self.normalize(name), type: type)
    }

    /// Lower-case text without the trailing dot, checked against RFC 1035 §2.3.4 limits.
    static func normalize(_ name: String) throws(DNSError) -> String {
        var text = name.lowercased()
        if text.hasSuffix(".") { text.removeLast() }
        guard !text.isEmpty else { throw .invalidName(name: name, reason: "the name is empty") }
        var wireLength = 1
        for label in text.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty else { throw .invalidName(name: name, reason: "it has an empty label") }
            guard label.utf8.count <= DNSLimits.labelLength else {
                throw .invalidName(name: name, reason: "a label is longer than \(DNSLimits.labelLength) octets")
            }
            guard label.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") }) else {
                throw .invalidName(name: name, reason: "only printable ASCII is allowed; convert IDNs to A-labels")
            }
            wireLength += label.utf8.count + 1
        }
        guard wireLength <= DNSLimits.nameLength else {
            throw .invalidName(name: name, reason: "it is longer than \(DNSLimits.nameLength) octets")
        }
        return text
    }

    /// The message on the wire (RFC 1035 §4.1): header, the question, and an OPT record in
    /// the additional section unless `udpPayload` is nil. Over TCP the 2-octet length prefix
    /// of RFC 1035 §4.2.2 is the caller's.
    public func encoded(udpPayload: UInt16? = DNSLimits.advertisedUDPPayload) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(DNSLimits.headerLength + question.name.utf8.count + 2 + 4 + 11)
        func append16(_ value: UInt16) { bytes.append(UInt8(value >> 8)); bytes.append(UInt8(value & 0xFF)) }
        append16(id)
        append16(DNSHeader(id: id, recursionDesired: true).flags)
        append16(1)  // QDCOUNT
        append16(0)  // ANCOUNT
        append16(0)  // NSCOUNT
        append16(udpPayload == nil ? 0 : 1)  // ARCOUNT
        for label in question.name.split(separator: ".") {
            bytes.append(UInt8(label.utf8.count))
            bytes.append(contentsOf: label.utf8)
        }
        bytes.append(0)
        append16(question.type.rawValue)
        append16(question.recordClass)
        if let udpPayload {
            // RFC 6891 §6.1.2: root owner, TYPE OPT, CLASS = payload size, TTL = extended
            // RCODE 0, version 0, DO clear; no options.
            bytes.append(0)
            append16(DNSRecordType.opt.rawValue)
            append16(udpPayload)
            append16(0)
            append16(0)
            append16(0)
        }
        return bytes
    }

    /// Whether a response answers this query: QR set, the same id and opcode, and exactly this
    /// question (RFC 5452 §9.1). Anything else is ignored, not treated as the answer, so a
    /// stray or forged datagram cannot end the wait.
    public func isAnswered(by header: DNSHeader, questions: [DNSQuestion]) -> Bool {
        header.isResponse && header.id == id && header.opcode == 0 && questions == [question]
    }
}

/// What a received message means for a waiting query.
enum DNSReply: Sendable, Hashable {
    /// Not an answer to this query (wrong id, question or QR bit, or unparsable): keep waiting.
    case ignore
    /// The answer.
    case answer(DNSMessage)
    /// It claims to answer this query (id and question match) but its records do not parse.
    case malformed(DNSMessageError)

    init(_ bytes: [UInt8], to query: DNSQuery, maximumSize: Int) {
        do {
            let message = try DNSMessage(parsing: bytes, maximumSize: maximumSize)
            self = query.isAnswered(by: message.header, questions: message.questions) ? .answer(message) : .ignore
        } catch {
            if let (header, questions) = try? DNSMessage.parseIdentity(bytes),
               query.isAnswered(by: header, questions: questions) {
                self = .malformed(error)
            } else {
                self = .ignore
            }
        }
    }
}
