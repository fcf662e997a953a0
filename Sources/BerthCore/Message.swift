/// Who a recipient is, as far as this server is concerned.
public enum RecipientClass: Sendable, Hashable {
    /// A mailbox here.
    case local(domain: String, user: String)
    /// A configured domain without that user (RFC 5321 550 5.1.1).
    case unknownLocalUser
    /// A mailbox here whose quota is used up (RFC 3463 X.2.2: 452 4.2.2, try later).
    case mailboxFull
    /// Somewhere else: relaying, allowed only for authenticated senders.
    case remote
}

/// A message as it will be stored: `Return-Path:`, the trace header, then the content,
/// with LF line ends (the Maildir convention).
public enum MessageBody: Sendable, Hashable {
    /// Small enough to have stayed in memory.
    case bytes([UInt8])
    /// Written in full to a spool file, which the store takes over (links into the
    /// mailboxes, then removes).
    case file(path: String, size: Int)

    public var size: Int {
        switch self {
        case .bytes(let bytes): return bytes.count
        case .file(_, let size): return size
        }
    }
}

/// A message accepted by SMTP, ready to be stored.
public struct InboundMessage: Sendable {
    /// The id the `250` reply, the `Received:` header and the mail log share.
    public var queueID: String
    /// Reverse-path without brackets; empty for the null sender (bounces).
    public var sender: String
    public var recipients: [(address: String, class: RecipientClass)]
    public var body: MessageBody
    public var authenticatedUser: String?

    public init(
        queueID: String, sender: String, recipients: [(address: String, class: RecipientClass)], body: MessageBody,
        authenticatedUser: String? = nil
    ) {
        self.queueID = queueID
        self.sender = sender
        self.recipients = recipients
        self.body = body
        self.authenticatedUser = authenticatedUser
    }
}
