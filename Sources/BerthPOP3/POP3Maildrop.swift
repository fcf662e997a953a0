/// What the caller found when it opened (and locked) a user's maildrop: each message's
/// size and unique id, in message-number order (message 1 first). RFC 1939 §5 fixes the
/// numbering for the session: messages arriving later are not seen until the next one.
public struct POP3Maildrop: Sendable, Hashable {
    public struct Message: Sendable, Hashable {
        /// Octets as the message is served: CRLF line ends, before dot-stuffing (RFC 1939
        /// §5 STAT/LIST: the "exact size", which clients compare with what RETR delivers).
        public var size: Int
        /// RFC 1939 §7 UIDL: see `POP3UniqueID`.
        public var uniqueID: String

        public init(size: Int, uniqueID: String) {
            self.size = size
            self.uniqueID = uniqueID
        }
    }

    public var messages: [Message]

    public init(messages: [Message]) {
        self.messages = messages
    }
}

/// The caller's answer to `POP3Session.Action.openMaildrop`.
public enum POP3MaildropOpening: Sendable, Hashable {
    case opened(POP3Maildrop)
    /// Another session holds the maildrop's lock (RFC 1939 §8 PASS, RFC 2449 §8.1.2).
    case locked
    /// The store could not list the maildrop.
    case failed
}
