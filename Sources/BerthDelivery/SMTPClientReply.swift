import BerthNet
import NIOCore

/// One SMTP reply as a client reads it (RFC 5321 §4.2): a code and its lines.
public struct SMTPClientReply: Sendable, Hashable, CustomStringConvertible {
    public var code: Int
    public var lines: [String]

    public init(code: Int, lines: [String]) {
        self.code = code
        self.lines = lines
    }

    public var isPositive: Bool { (200..<400).contains(code) }
    public var isTransient: Bool { (400..<500).contains(code) }
    public var isPermanent: Bool { code >= 500 }

    /// "250 2.0.0 Ok" with multi-line replies joined by " / ", for logs and DSNs.
    public var description: String {
        lines.map { "\(code) \($0)" }.joined(separator: " / ")
    }

    /// EHLO keywords, upper-cased, with their parameters (RFC 5321 §4.1.1.1): the first line is the greeting.
    public var extensions: [String: String] {
        var result: [String: String] = [:]
        for line in lines.dropFirst() {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard let keyword = parts.first else { continue }
            result[keyword.uppercased()] = parts.count > 1 ? String(parts[1]) : ""
        }
        return result
    }
}

/// Assembles replies from lines (`250-…` continues, `250 …` ends). Pure.
public struct SMTPReplyAssembler: Sendable {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case tooLong
        public var description: String {
            switch self {
            case .malformed(let line): return "malformed reply line '\(line.prefix(80))'"
            case .tooLong: return "reply too long"
            }
        }
    }

    /// RFC 5321 §4.5.3.1.5: 512 octets a reply line; servers exceed it, so allow more.
    public static let maxLineLength = 4096
    /// Lines in one reply: an EHLO answer has a dozen; a hundred is generous.
    public static let maxLines = 100

    private var framer = LineFramer()
    private var code: Int?
    private var lines: [String] = []

    public init() {}

    public var bufferedBytes: Int { framer.bufferedBytes }

    public mutating func append(_ bytes: ByteBuffer) { framer.append(bytes) }

    /// The next complete reply, or nil if more bytes are needed.
    public mutating func next() throws(Failure) -> SMTPClientReply? {
        while let frame = framer.nextLine(maxLength: Self.maxLineLength) {
            let line: String
            switch frame {
            case .line(let buffer): line = String(decoding: buffer.readableBytesView, as: UTF8.self)
            case .tooLong: throw .tooLong
            case .bareLineEnding: throw .malformed("bare CR or LF")
            }
            let bytes = Array(line.utf8)
            guard bytes.count >= 3, bytes[0...2].allSatisfy({ (0x30...0x39).contains($0) }),
                  bytes.count == 3 || bytes[3] == UInt8(ascii: " ") || bytes[3] == UInt8(ascii: "-"),
                  let value = Int(String(line.prefix(3))), (200...599).contains(value)
            else { throw .malformed(line) }
            if let code, code != value { throw .malformed(line) }
            code = value
            lines.append(bytes.count > 4 ? String(line.dropFirst(4)) : "")
            guard lines.count <= Self.maxLines else { throw .tooLong }
            if bytes.count == 3 || bytes[3] == UInt8(ascii: " ") {
                defer { (code, lines) = (nil, []) }
                return SMTPClientReply(code: value, lines: lines)
            }
        }
        return nil
    }
}
