/// Octets the grammar names.
enum ASCII {
    static let lf = UInt8(ascii: "\n")
    static let cr = UInt8(ascii: "\r")
    static let space = UInt8(ascii: " ")
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let zero = UInt8(ascii: "0")

    static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    static func uppercased(_ byte: UInt8) -> UInt8 {
        byte >= 0x61 && byte <= 0x7A ? byte - 0x20 : byte
    }
}

/// The character classes of RFC 3501 §9, shared by the framer, parser and encoder.
enum IMAPGrammar {
    /// `CTL = %x00-1F / %x7F` (RFC 5234).
    static func isCTL(_ byte: UInt8) -> Bool { byte < 0x20 || byte == 0x7F }

    /// `atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials /
    /// resp-specials`
    static func isAtomSpecial(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "{"), ASCII.space,
             UInt8(ascii: "%"), UInt8(ascii: "*"), ASCII.quote, ASCII.backslash, UInt8(ascii: "]"):
            true
        default:
            isCTL(byte)
        }
    }

    /// `ATOM-CHAR = <any CHAR except atom-specials>`; `CHAR = %x01-7F`.
    static func isAtomChar(_ byte: UInt8) -> Bool { byte < 0x80 && !isAtomSpecial(byte) }

    /// `ASTRING-CHAR = ATOM-CHAR / resp-specials`
    static func isAStringChar(_ byte: UInt8) -> Bool { isAtomChar(byte) || byte == UInt8(ascii: "]") }

    /// `tag = 1*<any ASTRING-CHAR except "+">`
    static func isTagChar(_ byte: UInt8) -> Bool { isAStringChar(byte) && byte != UInt8(ascii: "+") }

    /// `list-char = ATOM-CHAR / list-wildcards / resp-specials`
    static func isListChar(_ byte: UInt8) -> Bool {
        isAStringChar(byte) || byte == UInt8(ascii: "%") || byte == UInt8(ascii: "*")
    }

    /// `TEXT-CHAR = <any CHAR except CR and LF>`
    static func isTextChar(_ byte: UInt8) -> Bool {
        byte >= 0x01 && byte < 0x80 && byte != ASCII.cr && byte != ASCII.lf
    }

    /// The tag at the start of `bytes` when it is well formed and followed by SP, for
    /// error replies.
    static func readableTag(_ bytes: some Collection<UInt8>) -> String? {
        guard let space = bytes.firstIndex(of: ASCII.space) else { return nil }
        let tag = bytes[..<space]
        guard !tag.isEmpty, tag.count <= 128, tag.allSatisfy(isTagChar) else { return nil }
        return String(decoding: tag, as: UTF8.self)
    }
}
