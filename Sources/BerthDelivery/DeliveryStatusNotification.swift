import BerthCore
import Foundation

/// A delivery status notification (RFC 3464 in an RFC 6522 multipart/report), as the
/// Maildir stores it: LF line ends, `Return-Path: <>` first (a DSN is sent from the null
/// sender, so it never causes another). Pure.
public struct DeliveryStatusNotification: Sendable {
    public enum Action: String, Sendable {
        case failed, delayed
    }

    public struct Recipient: Sendable, Hashable {
        public var address: String
        /// RFC 3463 status, e.g. "5.1.1".
        public var status: String
        /// The remote server's reply or our own reason.
        public var diagnostic: String
        /// The server that answered, when one did.
        public var remoteMTA: String?

        public init(address: String, status: String, diagnostic: String, remoteMTA: String? = nil) {
            self.address = address
            self.status = status
            self.diagnostic = diagnostic
            self.remoteMTA = remoteMTA
        }
    }

    public var reportingMTA: String
    public var queueID: String
    public var sender: String
    public var action: Action
    public var recipients: [Recipient]
    public var arrivalDate: Date
    /// The original message's header section (LF line ends), returned as text/rfc822-headers.
    public var originalHeaders: [UInt8]

    public init(
        reportingMTA: String, queueID: String, sender: String, action: Action, recipients: [Recipient], arrivalDate: Date,
        originalHeaders: [UInt8]
    ) {
        self.reportingMTA = reportingMTA
        self.queueID = queueID
        self.sender = sender
        self.action = action
        self.recipients = recipients
        self.arrivalDate = arrivalDate
        self.originalHeaders = originalHeaders
    }

    public func render(now: Date = Date(), messageID: String) -> [UInt8] {
        let boundary = "\(queueID).\(Int(now.timeIntervalSince1970))/\(reportingMTA)"
        let subject = action == .failed ? "Undelivered Mail Returned to Sender" : "Delayed Mail (still being retried)"
        var text = """
            Return-Path: <>
            From: Mail Delivery System <MAILER-DAEMON@\(reportingMTA)>
            To: <\(sender)>
            Subject: \(subject)
            Date: \(Self.rfc5322(now))
            Message-ID: <\(messageID)>
            Auto-Submitted: auto-replied
            MIME-Version: 1.0
            Content-Type: multipart/report; report-type=delivery-status;
            \tboundary="\(boundary)"

            This is a MIME-encapsulated message.

            --\(boundary)
            Content-Description: Notification
            Content-Type: text/plain; charset=utf-8

            This is the mail system at host \(reportingMTA).


            """
        switch action {
        case .failed:
            text += "Your message could not be delivered to one or more recipients. Its headers are attached below.\n"
        case .delayed:
            text += "Your message could not be delivered yet to one or more recipients. The mail system will keep trying;\nyou do not need to send it again.\n"
        }
        text += "\n"
        for recipient in recipients {
            text += "<\(recipient.address)>: \(Self.oneLine(recipient.diagnostic))\n"
        }
        text += """

            --\(boundary)
            Content-Description: Delivery report
            Content-Type: message/delivery-status

            Reporting-MTA: dns; \(reportingMTA)
            X-Berth-Queue-ID: \(queueID)
            Arrival-Date: \(Self.rfc5322(arrivalDate))

            """
        for recipient in recipients {
            text += "\nFinal-Recipient: rfc822; \(recipient.address)\n"
            text += "Action: \(action.rawValue)\n"
            text += "Status: \(recipient.status)\n"
            if let mta = recipient.remoteMTA { text += "Remote-MTA: dns; \(mta)\n" }
            text += "Diagnostic-Code: \(recipient.remoteMTA == nil ? "X-Berth" : "smtp"); \(Self.oneLine(recipient.diagnostic))\n"
        }
        text += """

            --\(boundary)
            Content-Description: Undelivered Message Headers
            Content-Type: text/rfc822-headers


            """
        var bytes = Array(text.utf8)
        bytes += originalHeaders
        if bytes.last != UInt8(ascii: "\n") { bytes.append(UInt8(ascii: "\n")) }
        bytes += Array("\n--\(boundary)--\n".utf8)
        return bytes
    }

    /// RFC 3464 fields are single lines; replies can carry CR/LF.
    static func oneLine(_ text: String) -> String {
        // Scalars, not Characters: "\r\n" is one Character.
        var scalars = String.UnicodeScalarView()
        for scalar in text.unicodeScalars.prefix(900) { scalars.append(scalar == "\r" || scalar == "\n" ? " " : scalar) }
        return String(scalars)
    }

    static func rfc5322(_ date: Date) -> String {
        UTCTime.rfc5322(time_t(date.timeIntervalSince1970.rounded(.down)))
    }
}
