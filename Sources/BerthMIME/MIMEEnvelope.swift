import BerthIMAP

extension MIMEHeader {
    /// ENVELOPE (RFC 3501 §7.4.2) from this header: strings raw (encoded-words stay
    /// encoded), unfolded; absent fields NIL; Sender and Reply-To default to From.
    public var envelope: IMAPEnvelope {
        let from = addresses("From")
        let sender = addresses("Sender")
        let replyTo = addresses("Reply-To")
        return IMAPEnvelope(
            date: value("Date"),
            subject: value("Subject"),
            from: from,
            sender: sender.isEmpty ? from : sender,
            replyTo: replyTo.isEmpty ? from : replyTo,
            to: addresses("To"),
            cc: addresses("Cc"),
            bcc: addresses("Bcc"),
            inReplyTo: value("In-Reply-To"),
            messageID: value("Message-ID")
        )
    }

    /// The addresses of the first field named `name` (RFC 5322 §3.4), for ENVELOPE.
    public func addresses(_ name: String) -> [IMAPAddress] {
        value(name).map(MIMEAddressParser.parse) ?? []
    }
}

extension MIMEMessage {
    /// The message's ENVELOPE.
    public var envelope: IMAPEnvelope { root.header.envelope }
}
