/// A mailbox name as the server sees it: decoded from modified UTF-7 (RFC 3501 §5.1.3),
/// with `INBOX` in any case spelt `INBOX` (RFC 3501 §5.1).
public struct IMAPMailboxName: Sendable, Hashable, CustomStringConvertible {
    public let name: String

    public init(_ name: String) {
        self.name = name.uppercased() == "INBOX" ? "INBOX" : name
    }

    public static let inbox = IMAPMailboxName("INBOX")

    public var isInbox: Bool { name == "INBOX" }
    public var description: String { name }
}
