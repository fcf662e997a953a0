import BerthIMAP

extension MIMEMessage {
    /// The values of every top-level field named `name`, RFC 2047 decoded (SEARCH HEADER,
    /// FROM, SUBJECT..., RFC 3501 §6.4.4).
    public func decodedHeaderValues(_ name: String) -> [String] {
        root.header.values(name).map(MIMEHeader.decodedValue)
    }

    /// SEARCH BODY's text: text/* parts (those of attached messages included) decoded from
    /// their transfer encoding and charset, each followed by a newline; other parts skipped.
    /// At most `limits.maxSearchTextSize` UTF-8 octets.
    public var bodyText: String {
        var collector = TextCollector(limit: limits.maxSearchTextSize)
        collectBody(root, into: &collector)
        return collector.text
    }

    /// SEARCH TEXT's text: the decoded top-level header (`Name: value` lines), then the body
    /// text, within the same bound.
    public var fullText: String {
        var collector = TextCollector(limit: limits.maxSearchTextSize)
        collectHeader(root.header, into: &collector)
        collectBody(root, into: &collector)
        return collector.text
    }

    func collectHeader(_ header: MIMEHeader, into collector: inout TextCollector) {
        for field in header.fields {
            guard !collector.isFull else { return }
            collector.append(field.name + ": " + MIMEHeader.decodedValue(field.value) + "\n")
        }
    }

    func collectBody(_ part: MIMEPart, into collector: inout TextCollector) {
        guard !collector.isFull else { return }
        switch part.content {
        case .multipart(let parts):
            for child in parts { collectBody(child, into: &collector) }
        case .message(let inner):
            collectHeader(inner.header, into: &collector)
            collectBody(inner, into: &collector)
        case .single:
            guard part.contentType.isText else { return }
            // Enough encoded input for the room left (base64 and QP at most triple it).
            let room = (collector.limit - collector.count) * 4 + 4
            let body = bytes[part.bodyRange.lowerBound..<min(part.bodyRange.upperBound, part.bodyRange.lowerBound + room)]
            let decoded = MIMETransferEncoding.decode(body, encoding: part.transferEncoding ?? "7bit")
            let text = part.contentType.parameters.decodedValue("charset").flatMap(MIMECharset.init(name:))?.decode(decoded)
                ?? decodeText(decoded)
            collector.append(text)
            collector.append("\n")
        }
    }
}

/// Text appended up to a size in UTF-8 octets, cut on a character boundary.
struct TextCollector {
    let limit: Int
    var text = ""
    var count = 0

    init(limit: Int) { self.limit = limit }

    var isFull: Bool { count >= limit }

    mutating func append(_ piece: String) {
        guard !isFull else { return }
        let size = piece.utf8.count
        if count + size <= limit {
            text += piece
            count += size
            return
        }
        for character in piece {
            let characterSize = character.utf8.count
            guard count + characterSize <= limit else { break }
            text.append(character)
            count += characterSize
        }
        count = limit
    }
}
