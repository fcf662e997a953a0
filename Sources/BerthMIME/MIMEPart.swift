import BerthCore
import BerthIMAP

/// One entity of a message (RFC 2045 §2.4): the message itself or a body part. Ranges point
/// into `MIMEMessage.bytes` (the CRLF form).
public struct MIMEPart: Sendable, Hashable {
    public var header: MIMEHeader
    public var bodyRange: Range<Int>
    public var contentType: MIMEContentType
    public var content: Content

    public indirect enum Content: Sendable, Hashable {
        /// A leaf (also a multipart or message past the limits, which becomes opaque).
        case single
        /// The parts of a multipart (RFC 2046 §5.1); may be empty when no boundary was found.
        case multipart([MIMEPart])
        /// The encapsulated message of a message/rfc822 part (RFC 2046 §5.2.1).
        case message(MIMEPart)
    }

    public init(header: MIMEHeader, bodyRange: Range<Int>, contentType: MIMEContentType, content: Content) {
        self.header = header
        self.bodyRange = bodyRange
        self.contentType = contentType
        self.content = content
    }

    /// Header and body.
    public var range: Range<Int> { header.range.lowerBound..<bodyRange.upperBound }

    /// `Content-Transfer-Encoding` as written, nil when absent (7bit, RFC 2045 §6.1).
    public var transferEncoding: String? {
        header.value("Content-Transfer-Encoding").flatMap { value in
            let token = MIMEParameterParser.parse(value).token
            return token.isEmpty ? nil : token
        }
    }
}

/// A parsed message: its CRLF-normalized bytes and its MIME tree. Pure and immutable; build
/// one per message and ask it for the ENVELOPE, BODYSTRUCTURE, sections and search text.
public struct MIMEMessage: Sendable {
    /// The message with bare LFs turned into CRLF (`LineEnds.toCRLF`): what IMAP serves, and
    /// what every range, size and line count here refers to.
    public let bytes: [UInt8]
    public let root: MIMEPart
    public let limits: MIMELimits
    /// Entities in the tree, the message itself included.
    public let partCount: Int
    /// Whether a depth or part limit cut the structure short.
    public let isTruncated: Bool

    public init<Bytes: Collection>(_ bytes: Bytes, limits: MIMELimits = .default) where Bytes.Element == UInt8 {
        let normalized = LineEnds.toCRLF(bytes)
        var parser = MIMEParser(bytes: normalized, limits: limits)
        root = parser.parseEntity(0..<normalized.count, depth: 0, defaultType: .textPlain)
        self.bytes = normalized
        self.limits = limits
        partCount = parser.partCount
        isTruncated = parser.isTruncated
    }

    /// The top-level header.
    public var header: MIMEHeader { root.header }

    /// RFC822.SIZE: octets of the CRLF form.
    public var size: Int { bytes.count }
}

/// Builds the tree. Each multipart level scans only its own body, so the work is linear in
/// the message size times the nesting depth, and the depth is capped.
struct MIMEParser {
    let bytes: [UInt8]
    let limits: MIMELimits
    var partCount = 0
    var isTruncated = false

    init(bytes: [UInt8], limits: MIMELimits) {
        self.bytes = bytes
        self.limits = limits
    }

    /// A header and body in `range`. `depth` is the number of enclosing multiparts and
    /// messages. `limit` (the start of the next delimiter line) is how far the entity may
    /// grow: a multipart whose close delimiter is its last line keeps that line's CRLF, even
    /// though RFC 2046 gives it to the enclosing delimiter, as Dovecot counts it.
    mutating func parseEntity(_ range: Range<Int>, limit: Int? = nil, depth: Int, defaultType: MIMEContentType) -> MIMEPart {
        partCount += 1
        let limit = max(limit ?? range.upperBound, range.upperBound)
        let header = MIMEHeader.parse(bytes, in: range, limits: limits)
        var end = range.upperBound
        var contentType = header.value("Content-Type").flatMap(MIMEContentType.init) ?? defaultType
        var content = MIMEPart.Content.single
        if contentType.isMultipart || contentType.isMessageRFC822 {
            if depth >= limits.maxDepth || partCount >= limits.maxParts {
                isTruncated = true
                contentType = .opaque
            } else if contentType.isMultipart {
                let childDefault: MIMEContentType = contentType.subtype.lowercased() == "digest" ? .messageRFC822 : .textPlain
                var children: [MIMEPart] = []
                if let boundary = contentType.parameter("boundary"), !boundary.isEmpty {
                    let split = Self.split(bytes, header.bodyStart..<range.upperBound, boundary: Array(boundary.utf8))
                    for part in split.parts {
                        guard partCount < limits.maxParts else {
                            isTruncated = true
                            break
                        }
                        children.append(parseEntity(part.range, limit: part.limit, depth: depth + 1, defaultType: childDefault))
                    }
                    if split.closeLineEnd == range.upperBound { end = lineBreakEnd(range.upperBound, limit: limit) }
                }
                content = .multipart(children)
            } else {
                let inner = parseEntity(header.bodyStart..<range.upperBound, limit: limit, depth: depth + 1, defaultType: .textPlain)
                end = inner.bodyRange.upperBound
                content = .message(inner)
            }
        }
        return MIMEPart(header: header, bodyRange: header.bodyStart..<end, contentType: contentType, content: content)
    }

    /// Past the CRLF (or LF) at `index`, if it lies before `limit`.
    func lineBreakEnd(_ index: Int, limit: Int) -> Int {
        if index + 2 <= limit, bytes[index] == Byte.cr, bytes[index + 1] == Byte.lf { return index + 2 }
        if index + 1 <= limit, bytes[index] == Byte.lf { return index + 1 }
        return index
    }

    /// The parts of a multipart body (RFC 2046 §5.1.1): the text between delimiter lines
    /// `--boundary`, up to the close delimiter `--boundary--`. The CRLF before a delimiter
    /// belongs to it, not to the part. The preamble and epilogue are dropped; without a
    /// close delimiter the last part runs to the end. A delimiter line may carry trailing
    /// whitespace (transport padding) but nothing else, so boundary `b` does not match `--b2`.
    /// Each part comes with the start of the delimiter line after it; `closeLineEnd` is
    /// where the close delimiter line's text ends (before its line break).
    static func split(_ bytes: [UInt8], _ body: Range<Int>, boundary: [UInt8])
        -> (parts: [(range: Range<Int>, limit: Int)], closeLineEnd: Int?) {
        var parts: [(range: Range<Int>, limit: Int)] = []
        var partStart: Int?
        var lineStart = body.lowerBound
        let end = body.upperBound
        while lineStart < end {
            var lineEnd = lineStart
            while lineEnd < end, bytes[lineEnd] != Byte.lf { lineEnd += 1 }
            let next = lineEnd < end ? lineEnd + 1 : end
            var contentEnd = lineEnd
            if contentEnd > lineStart, bytes[contentEnd - 1] == Byte.cr { contentEnd -= 1 }
            if let close = delimiter(bytes, lineStart..<contentEnd, boundary: boundary) {
                if let start = partStart {
                    var partEnd = lineStart
                    if partEnd - start >= 2, bytes[partEnd - 2] == Byte.cr, bytes[partEnd - 1] == Byte.lf {
                        partEnd -= 2
                    } else if partEnd - start >= 1, bytes[partEnd - 1] == Byte.lf {
                        partEnd -= 1
                    }
                    parts.append((start..<partEnd, lineStart))
                }
                if close { return (parts, contentEnd) }
                partStart = next
            }
            lineStart = next
        }
        if let start = partStart { parts.append((start..<end, end)) }
        return (parts, nil)
    }

    /// Nil if the line is not a delimiter; true for the close delimiter.
    static func delimiter(_ bytes: [UInt8], _ line: Range<Int>, boundary: [UInt8]) -> Bool? {
        guard line.count >= boundary.count + 2, bytes[line.lowerBound] == Byte.dash, bytes[line.lowerBound + 1] == Byte.dash
        else { return nil }
        var index = line.lowerBound + 2
        for byte in boundary {
            guard bytes[index] == byte else { return nil }
            index += 1
        }
        var close = false
        if index + 1 < line.upperBound, bytes[index] == Byte.dash, bytes[index + 1] == Byte.dash {
            close = true
            index += 2
        }
        while index < line.upperBound {
            guard Byte.isWhitespace(bytes[index]) else { return nil }
            index += 1
        }
        return close
    }
}
