/// `flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" / flag-keyword /
/// flag-extension` (RFC 3501 §9). System flags are spelt canonically whatever case the
/// client used; keywords keep their spelling (compare them case-insensitively).
public struct IMAPFlag: Sendable, Hashable, CustomStringConvertible {
    public let name: String

    public init(_ name: String) {
        let canonical = Self.systemFlags.first { $0.uppercased() == name.uppercased() }
        self.name = canonical ?? name
    }

    public static let answered = IMAPFlag("\\Answered")
    public static let flagged = IMAPFlag("\\Flagged")
    public static let deleted = IMAPFlag("\\Deleted")
    public static let seen = IMAPFlag("\\Seen")
    public static let draft = IMAPFlag("\\Draft")
    /// Only in responses (RFC 3501 §2.3.2).
    public static let recent = IMAPFlag("\\Recent")
    /// `\*` in PERMANENTFLAGS: new keywords may be created (RFC 3501 §7.1).
    public static let wildcard = IMAPFlag("\\*")

    static let systemFlags = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\Recent"]

    public var isSystemFlag: Bool { name.hasPrefix("\\") }
    public var description: String { name }
}
