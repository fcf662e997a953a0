import NIOCore

/// An SMTP reply: a code, an optional enhanced status code (RFC 3463) and one or more lines.
public struct SMTPReply: Sendable, Hashable, CustomStringConvertible {
    public var code: Int
    public var enhanced: String?
    public var lines: [String]

    public init(_ code: Int, _ enhanced: String? = nil, _ lines: String...) {
        self.code = code
        self.enhanced = enhanced
        self.lines = lines
    }

    public init(code: Int, enhanced: String?, lines: [String]) {
        self.code = code
        self.enhanced = enhanced
        self.lines = lines
    }

    /// RFC 5321 §4.2.1: `code-text` on every line but the last, `code text` on the last.
    /// The enhanced code goes on every line (RFC 2034 §4).
    public func encode(into buffer: inout ByteBuffer) {
        let lines = self.lines.isEmpty ? [""] : self.lines
        for (index, line) in lines.enumerated() {
            buffer.writeString(String(code))
            buffer.writeInteger(index == lines.count - 1 ? UInt8(ascii: " ") : UInt8(ascii: "-"))
            if let enhanced { buffer.writeString(enhanced + " ") }
            Self.writeSevenBit(line, into: &buffer)
            buffer.writeStaticString("\r\n")
        }
    }

    /// RFC 5321 §4.2: reply text is 7-bit ASCII. Client text echoed in a reply (a HELO
    /// name, an address) has anything else, and any control character, shown as "?".
    static func writeSevenBit(_ text: String, into buffer: inout ByteBuffer) {
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
            buffer.writeString(text)  // the common case, in one copy
            return
        }
        for byte in text.utf8 {
            buffer.writeInteger(byte >= 0x20 && byte < 0x7F ? byte : UInt8(ascii: "?"))
        }
    }

    public var description: String {
        var buffer = ByteBuffer()
        encode(into: &buffer)
        return String(buffer: buffer)
    }

    public var isPositive: Bool { code < 400 }
}

extension SMTPReply {
    static let ok = SMTPReply(250, "2.0.0", "Ok")
    static let bye = SMTPReply(221, "2.0.0", "Bye")
    static func badSequence(_ text: String) -> SMTPReply { SMTPReply(503, "5.5.1", "Error: \(text)") }
    static func syntax(_ text: String) -> SMTPReply { SMTPReply(501, "5.5.4", "Syntax: \(text)") }
    static let unrecognized = SMTPReply(500, "5.5.2", "Error: command not recognized")
    static let lineTooLong = SMTPReply(500, "5.5.2", "Error: line too long (512 octets at most, RFC 5321 section 4.5.3.1.4)")
    static let bareLineEnding = SMTPReply(500, "5.5.2", "Error: bare CR or LF; end lines with CRLF (RFC 5321 section 2.3.8)")
    static func shuttingDown(_ host: String) -> SMTPReply { SMTPReply(421, "4.3.2", "\(host) Service shutting down, closing connection") }
    static let tlsFirst = SMTPReply(530, "5.7.0", "Must issue a STARTTLS command first")
    static let authFirst = SMTPReply(530, "5.7.0", "Authentication required")
}
