extension MIMEHeader {
    /// A header value with its RFC 2047 encoded-words (`=?charset?B|Q?text?=`) decoded, for
    /// SEARCH SUBJECT/FROM/HEADER. Whitespace between two adjacent encoded-words is dropped
    /// (RFC 2047 §6.2); adjacent words in one charset are joined before decoding, so a
    /// character split across two words survives. Words in an unknown charset stay as
    /// they are. Encoded-words inside other text are decoded too, as most mail readers do.
    public static func decodedValue(_ value: String) -> String {
        decodedValue(Array(value.utf8))
    }

    /// `decodedValue(_:)` on raw bytes; octets outside encoded-words are read as UTF-8, or
    /// Windows-1252 when they are not valid UTF-8.
    public static func decodedValue<Bytes: Collection>(_ value: Bytes) -> String where Bytes.Element == UInt8 {
        let bytes = Array(value)
        var output = ""
        var pending: [UInt8] = []
        var pendingCharset: MIMECharset?
        var literalStart = 0
        var afterEncodedWord = false
        var index = 0

        func flush() {
            if let charset = pendingCharset { output += charset.decode(pending) }
            pending.removeAll(keepingCapacity: true)
            pendingCharset = nil
        }

        while index + 1 < bytes.count {
            guard bytes[index] == Byte.equals, bytes[index + 1] == Byte.question,
                  let word = EncodedWord.parse(bytes, at: index)
            else {
                index += 1
                continue
            }
            let between = bytes[literalStart..<index]
            let betweenIsSpace = between.allSatisfy { Byte.isWhitespace($0) || Byte.isLineBreak($0) }
            if !(afterEncodedWord && betweenIsSpace) {
                flush()
                output += decodeText(between)
            }
            if let charset = word.charset {
                if pendingCharset != charset { flush() }
                pendingCharset = charset
                pending += word.decoded
                afterEncodedWord = true
            } else {
                flush()
                output += decodeText(bytes[index..<word.end])
                afterEncodedWord = false
            }
            index = word.end
            literalStart = word.end
        }
        flush()
        output += decodeText(bytes[literalStart...])
        return output
    }
}

/// `encoded-word = "=?" charset "?" encoding "?" encoded-text "?="` (RFC 2047 §2), with
/// RFC 2231 §5's `charset*language`.
struct EncodedWord {
    /// Nil for a charset this parser does not decode.
    var charset: MIMECharset?
    var decoded: [UInt8]
    /// Just past the closing `?=`.
    var end: Int

    /// The word starting at `start` (at "=?"), or nil. Every scan stops at the next `?` or
    /// whitespace, so trying at each "=?" stays linear.
    static func parse(_ bytes: [UInt8], at start: Int) -> EncodedWord? {
        var index = start + 2
        let charsetStart = index
        while index < bytes.count, bytes[index] != Byte.question, bytes[index] > 32, bytes[index] < 127 { index += 1 }
        guard index < bytes.count, bytes[index] == Byte.question, index > charsetStart else { return nil }
        var charsetName = String(decoding: bytes[charsetStart..<index], as: UTF8.self)
        if let star = charsetName.firstIndex(of: "*") { charsetName = String(charsetName[..<star]) }
        index += 1
        guard index + 1 < bytes.count, bytes[index + 1] == Byte.question else { return nil }
        let encoding = bytes[index] | 0x20
        guard encoding == UInt8(ascii: "b") || encoding == UInt8(ascii: "q") else { return nil }
        index += 2
        let textStart = index
        while index < bytes.count, bytes[index] != Byte.question, bytes[index] > 32, bytes[index] < 127 { index += 1 }
        guard index + 1 < bytes.count, bytes[index] == Byte.question, bytes[index + 1] == Byte.equals else { return nil }
        let text = Array(bytes[textStart..<index])
        let decoded = encoding == UInt8(ascii: "b")
            ? MIMETransferEncoding.decodeBase64(text)
            : MIMETransferEncoding.decodeQ(text, underscoreIsSpace: true)
        return EncodedWord(charset: MIMECharset(name: charsetName), decoded: decoded, end: index + 2)
    }
}
