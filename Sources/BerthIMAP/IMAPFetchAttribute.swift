/// `fetch-att` (RFC 3501 §6.4.5, §9) and MODSEQ (RFC 7162 §3.1.4). The macros ALL, FAST
/// and FULL are expanded by the parser.
public enum IMAPFetchAttribute: Sendable, Hashable {
    case envelope, flags, internalDate, uid, modSeq
    case rfc822, rfc822Header, rfc822Size, rfc822Text
    /// `BODY`: the non-extensible body structure.
    case body
    case bodyStructure
    /// `BODY[section]<partial>` or, with `peek`, `BODY.PEEK[...]` (does not set \Seen).
    case bodySection(IMAPSection, partial: IMAPPartial?, peek: Bool)

    /// RFC 3501 §6.4.5: `ALL` = `(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)`.
    public static let all: [IMAPFetchAttribute] = [.flags, .internalDate, .rfc822Size, .envelope]
    /// `FAST` = `(FLAGS INTERNALDATE RFC822.SIZE)`.
    public static let fast: [IMAPFetchAttribute] = [.flags, .internalDate, .rfc822Size]
    /// `FULL` = `(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY)`.
    public static let full: [IMAPFetchAttribute] = [.flags, .internalDate, .rfc822Size, .envelope, .body]
}

/// `section = "[" [section-spec] "]"`: a part path (`1.2.3`, empty for the whole message)
/// and what of it.
public struct IMAPSection: Sendable, Hashable {
    public var part: [UInt32]
    public var text: IMAPSectionText?

    public init(part: [UInt32] = [], text: IMAPSectionText? = nil) {
        self.part = part
        self.text = text
    }

    /// `[]`: the whole message.
    public static let complete = IMAPSection()
}

/// `section-text = section-msgtext / "MIME"`
public enum IMAPSectionText: Sendable, Hashable {
    case header
    /// Field names upper-cased (they are case-insensitive, RFC 5322 §1.2.2).
    case headerFields([String])
    case headerFieldsNot([String])
    case text
    /// Only after a part number.
    case mime
}

/// `"<" number "." nz-number ">"`: a byte range of the section.
public struct IMAPPartial: Sendable, Hashable {
    public var offset: UInt32
    public var length: UInt32

    public init(offset: UInt32, length: UInt32) {
        self.offset = offset
        self.length = length
    }
}

/// `fetch-modifier` (RFC 7162 §3.1.4.1, §3.2.6).
public enum IMAPFetchModifier: Sendable, Hashable {
    case changedSince(UInt64)
    case vanished
}
