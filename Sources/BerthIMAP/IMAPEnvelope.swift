/// `envelope` (RFC 3501 §7.4.2): header fields as the message has them, already parsed
/// (filling it from a message is the MIME layer's job). Absent values are NIL.
public struct IMAPEnvelope: Sendable, Hashable {
    public var date: String?
    public var subject: String?
    public var from: [IMAPAddress]
    public var sender: [IMAPAddress]
    public var replyTo: [IMAPAddress]
    public var to: [IMAPAddress]
    public var cc: [IMAPAddress]
    public var bcc: [IMAPAddress]
    public var inReplyTo: String?
    public var messageID: String?

    public init(date: String? = nil, subject: String? = nil, from: [IMAPAddress] = [], sender: [IMAPAddress] = [],
                replyTo: [IMAPAddress] = [], to: [IMAPAddress] = [], cc: [IMAPAddress] = [], bcc: [IMAPAddress] = [],
                inReplyTo: String? = nil, messageID: String? = nil) {
        self.date = date
        self.subject = subject
        self.from = from
        self.sender = sender
        self.replyTo = replyTo
        self.to = to
        self.cc = cc
        self.bcc = bcc
        self.inReplyTo = inReplyTo
        self.messageID = messageID
    }
}

/// `address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"`. RFC 5322
/// groups are a start marker (host NIL, mailbox the group name) and an end marker (all NIL).
public struct IMAPAddress: Sendable, Hashable {
    public var name: String?
    /// The obsolete source route.
    public var adl: String?
    public var mailbox: String?
    public var host: String?

    public init(name: String?, adl: String? = nil, mailbox: String?, host: String?) {
        self.name = name
        self.adl = adl
        self.mailbox = mailbox
        self.host = host
    }

    public static func groupStart(_ name: String) -> IMAPAddress {
        IMAPAddress(name: nil, mailbox: name, host: nil)
    }

    public static let groupEnd = IMAPAddress(name: nil, mailbox: nil, host: nil)
}
