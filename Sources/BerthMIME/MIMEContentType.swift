import BerthIMAP

/// A `Content-Type` (RFC 2045 §5.1), type, subtype and parameter names kept as written, as
/// Dovecot reports them in BODYSTRUCTURE.
public struct MIMEContentType: Sendable, Hashable {
    public var type: String
    public var subtype: String
    public var parameters: [IMAPBodyParameter]
    /// True when the part had no usable Content-Type and got the RFC 2045 §5.2 default
    /// (or RFC 2046 §5.1.5's message/rfc822 in a multipart/digest).
    public var isDefault: Bool

    public init(type: String, subtype: String, parameters: [IMAPBodyParameter] = [], isDefault: Bool = false) {
        self.type = type
        self.subtype = subtype
        self.parameters = parameters
        self.isDefault = isDefault
    }

    /// RFC 2045 §5.2: `text/plain; charset=us-ascii` (the charset is added when the
    /// structure is written, see `MIMEMessage.bodyStructure`).
    public static let textPlain = MIMEContentType(type: "text", subtype: "plain", isDefault: true)
    /// RFC 2046 §5.1.5: the default in a multipart/digest.
    public static let messageRFC822 = MIMEContentType(type: "message", subtype: "rfc822", isDefault: true)
    /// What a part past the depth or part limits becomes.
    public static let opaque = MIMEContentType(type: "application", subtype: "octet-stream", isDefault: true)

    public var isMultipart: Bool { type.lowercased() == "multipart" }
    public var isText: Bool { type.lowercased() == "text" }
    public var isMessageRFC822: Bool { type.lowercased() == "message" && subtype.lowercased() == "rfc822" }

    /// The first parameter named `name` (any case), as written.
    public func parameter(_ name: String) -> String? {
        let name = name.lowercased()
        return parameters.first { $0.name.lowercased() == name }?.value
    }

    /// `Content-Type: type "/" subtype *(";" parameter)`; nil when there is no `type/subtype`.
    public init?(_ value: String) {
        let (token, parameters) = MIMEParameterParser.parse(value)
        guard let slash = token.firstIndex(of: "/") else { return nil }
        let type = token[..<slash].trimmingWhitespace()
        let subtype = token[token.index(after: slash)...].trimmingWhitespace()
        guard !type.isEmpty, !subtype.isEmpty else { return nil }
        self.init(type: type, subtype: subtype, parameters: parameters)
    }
}

extension Substring {
    func trimmingWhitespace() -> String { String(self).trimmingWhitespace() }
}

/// `Content-Disposition` (RFC 2183) as BODYSTRUCTURE wants it.
extension IMAPBodyDisposition {
    init?(headerValue value: String) {
        let (token, parameters) = MIMEParameterParser.parse(value)
        guard !token.isEmpty else { return nil }
        self.init(type: token, parameters: parameters)
    }
}

/// Parses `token *(";" attribute "=" value)` (RFC 2045 §5.1) with RFC 822 comments, and
/// merges RFC 2231 continuations.
enum MIMEParameterParser {
    static func parse(_ value: String) -> (token: String, parameters: [IMAPBodyParameter]) {
        let bytes = Array(value.utf8)
        var index = 0

        func skipSpaceAndComments() {
            while index < bytes.count {
                if Byte.isWhitespace(bytes[index]) || Byte.isLineBreak(bytes[index]) {
                    index += 1
                } else if bytes[index] == Byte.openParen {
                    var depth = 0
                    while index < bytes.count {
                        let byte = bytes[index]
                        index += 1
                        if byte == Byte.backslash {
                            index = min(index + 1, bytes.count)
                        } else if byte == Byte.openParen {
                            depth += 1
                        } else if byte == Byte.closeParen {
                            depth -= 1
                            if depth == 0 { break }
                        }
                    }
                } else {
                    return
                }
            }
        }

        /// Up to `;` (or, with `stopAtEquals`, `=`), whitespace and comments dropped at the
        /// edges. A quoted string is unquoted; junk after a value is skipped.
        func readValue(stopAtEquals: Bool) -> String {
            func isStop(_ byte: UInt8) -> Bool { byte == Byte.semicolon || (stopAtEquals && byte == Byte.equals) }
            skipSpaceAndComments()
            var text: [UInt8] = []
            if index < bytes.count, bytes[index] == Byte.quote {
                index += 1
                while index < bytes.count, bytes[index] != Byte.quote {
                    if bytes[index] == Byte.backslash, index + 1 < bytes.count { index += 1 }
                    text.append(bytes[index])
                    index += 1
                }
                index = min(index + 1, bytes.count)
            } else {
                while index < bytes.count, !isStop(bytes[index]), bytes[index] != Byte.openParen {
                    text.append(bytes[index])
                    index += 1
                }
                while let last = text.last, Byte.isWhitespace(last) || Byte.isLineBreak(last) { text.removeLast() }
            }
            while index < bytes.count, !isStop(bytes[index]) {
                if bytes[index] == Byte.openParen { skipSpaceAndComments() } else { index += 1 }
            }
            return decodeText(text)
        }

        let token = readValue(stopAtEquals: false)
        var plain: [IMAPBodyParameter] = []
        // RFC 2231 §3 sections: name -> [(number, extended, value)], in order of appearance.
        var sectionNames: [String] = []
        var sections: [String: [(number: Int, extended: Bool, value: String)]] = [:]
        while index < bytes.count, bytes[index] == Byte.semicolon {
            index += 1
            let name = readValue(stopAtEquals: true)
            guard index < bytes.count, bytes[index] == Byte.equals else { continue }
            index += 1
            let value = readValue(stopAtEquals: false)
            guard !name.isEmpty else { continue }
            if let section = continuation(name) {
                let key = section.name.lowercased()
                if sections[key] == nil {
                    guard sectionNames.count < 64 else { continue }
                    sectionNames.append(section.name)
                }
                if (sections[key]?.count ?? 0) < 256 {
                    sections[key, default: []].append((section.number, section.extended, value))
                }
            } else {
                plain.append(IMAPBodyParameter(name, value))
            }
        }
        // RFC 2231 §3: `name*0*`, `name*1`... become one `name*` (if the first section is
        // extended) or `name`, values joined in section order, still encoded, as Dovecot does.
        for name in sectionNames {
            guard let parts = sections[name.lowercased()]?.sorted(by: { $0.number < $1.number }) else { continue }
            let extended = parts.first?.extended ?? false
            plain.append(IMAPBodyParameter(extended ? name + "*" : name, parts.map(\.value).joined()))
        }
        return (token, plain)
    }

    /// `name*N` or `name*N*` (RFC 2231 §3, §4.1); nil for any other name, `name*` included.
    static func continuation(_ name: String) -> (name: String, number: Int, extended: Bool)? {
        guard let star = name.firstIndex(of: "*") else { return nil }
        var rest = name[name.index(after: star)...]
        let extended = rest.hasSuffix("*")
        if extended { rest = rest.dropLast() }
        guard !rest.isEmpty, rest.count <= 4, rest.allSatisfy(\.isASCII), let number = Int(rest), number >= 0 else { return nil }
        return (String(name[..<star]), number, extended)
    }

    /// An RFC 2231 §4 extended value `charset'language'%XX...` decoded; a value that is not
    /// one is returned as it is.
    static func decodeExtendedValue(_ value: String) -> String {
        let bytes = Array(value.utf8)
        guard let first = bytes.firstIndex(of: Byte.apostrophe),
              let second = bytes[(first + 1)...].firstIndex(of: Byte.apostrophe)
        else { return value }
        let charset = MIMECharset(name: String(decoding: bytes[..<first], as: UTF8.self))
        var decoded: [UInt8] = []
        var index = second + 1
        while index < bytes.count {
            if bytes[index] == Byte.percent, index + 2 < bytes.count,
               let high = Byte.hexValue(bytes[index + 1]), let low = Byte.hexValue(bytes[index + 2]) {
                decoded.append(high << 4 | low)
                index += 3
            } else {
                decoded.append(bytes[index])
                index += 1
            }
        }
        return charset?.decode(decoded) ?? decodeText(decoded)
    }
}

extension [IMAPBodyParameter] {
    /// The value of parameter `name` decoded: RFC 2231 (`name*`, `name*0*`...) preferred,
    /// then the plain one with its RFC 2047 encoded-words decoded (a common misuse).
    public func decodedValue(_ name: String) -> String? {
        let lower = name.lowercased()
        if let extended = first(where: { $0.name.lowercased() == lower + "*" }) {
            return MIMEParameterParser.decodeExtendedValue(extended.value)
        }
        if let plain = first(where: { $0.name.lowercased() == lower }) {
            return MIMEHeader.decodedValue(plain.value)
        }
        return nil
    }
}
