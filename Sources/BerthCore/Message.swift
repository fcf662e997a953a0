/// Who a recipient is, as far as this server is concerned.
public enum RecipientClass: Sendable, Hashable {
    /// A mailbox here.
    case local(domain: String, user: String)
    /// A configured domain without that user (RFC 5321 550 5.1.1).
    case unknownLocalUser
    /// Somewhere else: relaying, allowed only for authenticated senders.
    case remote
}

/// A message accepted by SMTP, ready to be stored.
public struct InboundMessage: Sendable {
    /// Reverse-path without brackets; empty for the null sender (bounces).
    public var sender: String
    public var recipients: [(address: String, class: RecipientClass)]
    /// Trace header lines (RFC 5321 §4.4 `Received:`), CRLF-terminated, put above the content.
    public var trace: [UInt8]
    /// The message as received after dot-unstuffing, CRLF line ends.
    public var content: [UInt8]
    public var authenticatedUser: String?

    public init(
        sender: String, recipients: [(address: String, class: RecipientClass)], trace: [UInt8], content: [UInt8],
        authenticatedUser: String? = nil
    ) {
        self.sender = sender
        self.recipients = recipients
        self.trace = trace
        self.content = content
        self.authenticatedUser = authenticatedUser
    }
}

