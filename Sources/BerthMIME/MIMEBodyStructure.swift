import BerthIMAP

extension MIMEMessage {
    /// BODYSTRUCTURE (RFC 3501 §7.4.2), extension data included, written as Dovecot does:
    /// types, parameters and encodings as the message spells them; a text part without a
    /// charset gets `("charset" "us-ascii")` appended (RFC 2045 §5.2); message/rfc822 is
    /// always `"message" "rfc822"`; an encoding defaults to `"7bit"`. Sizes and line
    /// counts are of the CRLF form, lines being the part's LFs (a last line without CRLF
    /// is not counted; the CRLF before a boundary belongs to the boundary).
    public var bodyStructure: IMAPBodyStructure { root.bodyStructure(bytes) }

    /// BODY: the same without extension data.
    public var body: IMAPBodyStructure { bodyStructure.withoutExtensionData }
}

extension IMAPBodyStructure {
    /// The non-extensible BODY form: every part's extension data removed.
    public var withoutExtensionData: IMAPBodyStructure {
        switch self {
        case .singlePart(var part):
            part.extensionData = nil
            if case .message(let envelope, let body, let lines) = part.kind {
                part.kind = .message(envelope: envelope, body: body.withoutExtensionData, lines: lines)
            }
            return .singlePart(part)
        case .multipart(var multipart):
            multipart.extensionData = nil
            multipart.parts = multipart.parts.map(\.withoutExtensionData)
            return .multipart(multipart)
        }
    }

    /// What a multipart without parts shows (IMAP needs at least one): an empty text/plain,
    /// as Dovecot writes it.
    static let emptyTextPart = IMAPBodyStructure.singlePart(IMAPBodyPart(
        type: "text", subtype: "plain",
        fields: IMAPBodyFields(parameters: [IMAPBodyParameter("charset", "us-ascii")], encoding: "7bit", octets: 0),
        kind: .text(lines: 0), extensionData: IMAPBodyPart.Extension()))
}

extension MIMEPart {
    /// This part's BODYSTRUCTURE; `bytes` is the message it was parsed from.
    public func bodyStructure(_ bytes: [UInt8]) -> IMAPBodyStructure {
        let disposition = header.value("Content-Disposition").flatMap(IMAPBodyDisposition.init(headerValue:))
        let language = header.value("Content-Language").map(Self.languages) ?? []
        let location = header.value("Content-Location")
        switch content {
        case .multipart(let parts):
            let children = parts.isEmpty ? [IMAPBodyStructure.emptyTextPart] : parts.map { $0.bodyStructure(bytes) }
            return .multipart(IMAPMultipartBody(
                parts: children, subtype: contentType.subtype,
                extensionData: .init(parameters: contentType.parameters, disposition: disposition, language: language,
                                     location: location)))
        case .single, .message:
            var type = contentType.type
            var subtype = contentType.subtype
            var parameters = contentType.parameters
            let octets = UInt32(clamping: bodyRange.count)
            let lines = UInt32(clamping: lineCount(bytes, bodyRange))
            let kind: IMAPBodyPart.Kind
            switch content {
            case .message(let inner):
                type = "message"
                subtype = "rfc822"
                kind = .message(envelope: inner.header.envelope, body: inner.bodyStructure(bytes), lines: lines)
            default:
                if contentType.isText {
                    if contentType.parameter("charset") == nil { parameters.append(IMAPBodyParameter("charset", "us-ascii")) }
                    kind = .text(lines: lines)
                } else {
                    kind = .basic
                }
            }
            return .singlePart(IMAPBodyPart(
                type: type, subtype: subtype,
                fields: IMAPBodyFields(parameters: parameters, id: header.value("Content-ID"),
                                       description: header.value("Content-Description"),
                                       encoding: transferEncoding ?? "7bit", octets: octets),
                kind: kind,
                extensionData: .init(md5: header.value("Content-MD5"), disposition: disposition, language: language,
                                     location: location)))
        }
    }

    /// `Content-Language: Language-Tag *("," Language-Tag)` (RFC 3282 §2).
    static func languages(_ value: String) -> [String] {
        var tags: [String] = []
        for piece in value.split(separator: ",") {
            let tag = MIMEParameterParser.parse(String(piece)).token
            if !tag.isEmpty, tags.count < 64 { tags.append(tag) }
        }
        return tags
    }
}

/// Line feeds in `bytes[range]`: IMAP's `body-fld-lines` (RFC 3501 §7.4.2), counted as
/// Dovecot does on the CRLF form, so a last line without CRLF is not counted.
func lineCount(_ bytes: [UInt8], _ range: Range<Int>) -> Int {
    var count = 0
    for index in range where bytes[index] == Byte.lf { count += 1 }
    return count
}
