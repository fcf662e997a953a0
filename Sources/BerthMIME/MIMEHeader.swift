/// One header field (RFC 5322 §2.2): its name, its unfolded value, and where its raw
/// bytes are in the message, so FETCH BODY[HEADER.FIELDS] can return it byte-exact.
public struct MIMEHeaderField: Sendable, Hashable {
    /// The name as written.
    public var name: String
    /// The name lower-cased, for lookup (field names are case-insensitive, RFC 5322 §1.2.2).
    public var lowercasedName: String
    /// The value unfolded (RFC 5322 §2.2.3: line breaks before whitespace removed), without
    /// leading and trailing whitespace, and cut at `MIMELimits.maxLineLength` octets.
    /// Encoded-words are left as they are (ENVELOPE wants them so); see
    /// `MIMEHeader.decodedValue(_:)`.
    public var value: String
    /// The whole field in the message: name, colon, folded value and its CRLF.
    public var range: Range<Int>

    public init(name: String, value: String, range: Range<Int>) {
        self.name = name
        self.lowercasedName = name.lowercased()
        self.value = value
        self.range = range
    }
}

/// A header section (RFC 5322 §2.2, §3): the fields and where the section is.
public struct MIMEHeader: Sendable, Hashable {
    /// The fields in order. Lines that are not fields (no colon, a name with spaces) are
    /// skipped, as are fields past `MIMELimits.maxHeaderFields`; both stay in the bytes.
    public var fields: [MIMEHeaderField]
    /// The header section with its terminating blank line, if it has one: what
    /// BODY[HEADER] and BODY[part.MIME] return.
    public var range: Range<Int>
    /// Whether a blank line ends the section (a message may have no body and no blank line).
    public var hasBlankLine: Bool

    public init(fields: [MIMEHeaderField] = [], range: Range<Int>, hasBlankLine: Bool) {
        self.fields = fields
        self.range = range
        self.hasBlankLine = hasBlankLine
    }

    /// Where the body starts: just after the blank line.
    public var bodyStart: Int { range.upperBound }

    /// The first field named `name` (any case).
    public func field(_ name: String) -> MIMEHeaderField? {
        let name = name.lowercased()
        return fields.first { $0.lowercasedName == name }
    }

    /// The value of the first field named `name` (any case), raw.
    public func value(_ name: String) -> String? { field(name)?.value }

    /// The values of every field named `name` (any case), raw.
    public func values(_ name: String) -> [String] {
        let name = name.lowercased()
        return fields.filter { $0.lowercasedName == name }.map(\.value)
    }

    /// Parses the header section at the start of `bytes[range]` (CRLF line ends; a bare LF
    /// is also taken as a line end). It ends at the first empty line, at the end of the
    /// range, or at `limits.maxHeaderSize` (then at the last whole field before it).
    public static func parse(_ bytes: [UInt8], in range: Range<Int>, limits: MIMELimits = .default) -> MIMEHeader {
        let end = range.upperBound
        let sizeLimit = range.lowerBound + min(range.count, limits.maxHeaderSize)
        var fields: [MIMEHeaderField] = []
        var position = range.lowerBound

        /// The index just after the line starting at `start`.
        func lineEnd(from start: Int) -> Int {
            var index = start
            while index < end {
                if bytes[index] == Byte.lf { return index + 1 }
                index += 1
            }
            return end
        }

        while position < end {
            // An empty line ends the header.
            if bytes[position] == Byte.lf {
                return MIMEHeader(fields: fields, range: range.lowerBound..<(position + 1), hasBlankLine: true)
            }
            if bytes[position] == Byte.cr, position + 1 < end, bytes[position + 1] == Byte.lf {
                return MIMEHeader(fields: fields, range: range.lowerBound..<(position + 2), hasBlankLine: true)
            }
            // One field: its first line and every continuation line (starting with WSP).
            let fieldStart = position
            var fieldEnd = lineEnd(from: position)
            while fieldEnd < end, Byte.isWhitespace(bytes[fieldEnd]), fieldEnd <= sizeLimit {
                fieldEnd = lineEnd(from: fieldEnd)
            }
            if fieldEnd > sizeLimit {
                // Too big: the header stops at the last whole field, the rest is body.
                return MIMEHeader(fields: fields, range: range.lowerBound..<fieldStart, hasBlankLine: false)
            }
            if fields.count < limits.maxHeaderFields,
               let field = Self.field(bytes, fieldStart..<fieldEnd, maxValueLength: limits.maxLineLength) {
                fields.append(field)
            }
            position = fieldEnd
        }
        return MIMEHeader(fields: fields, range: range, hasBlankLine: false)
    }

    /// `field-name ":" unstructured CRLF`; the name may be followed by whitespace
    /// (RFC 5322 §4.5 obs-optional). Nil for a line that is not a field.
    static func field(_ bytes: [UInt8], _ range: Range<Int>, maxValueLength: Int) -> MIMEHeaderField? {
        var colon = range.lowerBound
        // `ftext = %d33-57 / %d59-126`
        while colon < range.upperBound, bytes[colon] > 32, bytes[colon] < 127, bytes[colon] != Byte.colon { colon += 1 }
        let nameEnd = colon
        while colon < range.upperBound, Byte.isWhitespace(bytes[colon]) { colon += 1 }
        guard nameEnd > range.lowerBound, colon < range.upperBound, bytes[colon] == Byte.colon else { return nil }
        let name = String(decoding: bytes[range.lowerBound..<nameEnd], as: UTF8.self)
        return MIMEHeaderField(name: name, value: unfold(bytes, (colon + 1)..<range.upperBound, maxLength: maxValueLength),
                               range: range)
    }

    /// The value with CR and LF removed (unfolding), trimmed, at most `maxLength` octets.
    static func unfold(_ bytes: [UInt8], _ range: Range<Int>, maxLength: Int) -> String {
        var value: [UInt8] = []
        value.reserveCapacity(min(range.count, maxLength))
        for index in range {
            let byte = bytes[index]
            if Byte.isLineBreak(byte) { continue }
            if value.isEmpty, Byte.isWhitespace(byte) { continue }
            if value.count >= maxLength { break }
            value.append(byte)
        }
        while let last = value.last, Byte.isWhitespace(last) { value.removeLast() }
        return decodeText(value)
    }
}
