import BerthCore
import BerthIMAP
import BerthMIME
import Foundation

/// FETCH responses (RFC 3501 §6.4.5, §7.4.2; RFC 7162 MODSEQ), pure: a record and, when
/// an item needs it, the parsed message.
enum IMAPFetch {
    /// Whether any item needs the message file.
    static func needsContent(_ attributes: [IMAPFetchAttribute]) -> Bool {
        attributes.contains { attribute in
            switch attribute {
            case .envelope, .body, .bodyStructure, .bodySection, .rfc822, .rfc822Header, .rfc822Text: true
            case .flags, .internalDate, .uid, .modSeq, .rfc822Size: false
            }
        }
    }

    /// RFC 3501 §6.4.5: BODY[...] (not .PEEK), RFC822 and RFC822.TEXT set \Seen.
    static func setsSeen(_ attributes: [IMAPFetchAttribute]) -> Bool {
        attributes.contains { attribute in
            switch attribute {
            case .bodySection(_, _, let peek): !peek
            case .rfc822, .rfc822Text: true
            default: false
            }
        }
    }

    /// The items of one message's FETCH response. `uid`: a UID FETCH, which always answers
    /// with UID (§6.4.8); `modSeq`: MODSEQ is included (asked for, or CHANGEDSINCE);
    /// `flagsChanged`: this FETCH set \Seen, so FLAGS goes with it even if not asked.
    static func items(
        _ attributes: [IMAPFetchAttribute], record: MessageRecord, message: MIMEMessage?, uid: Bool, modSeq: Bool,
        flagsChanged: Bool
    ) -> [IMAPFetchItem] {
        var items: [IMAPFetchItem] = []
        var hasUID = false, hasFlags = false, hasModSeq = false
        if uid {
            items.append(.uid(record.uid))
            hasUID = true
        }
        for attribute in attributes {
            switch attribute {
            case .uid:
                if !hasUID { items.append(.uid(record.uid)) }
                hasUID = true
            case .flags:
                if !hasFlags { items.append(.flags(IMAPFlags.imapFlags(record.flags))) }
                hasFlags = true
            case .modSeq:
                if !hasModSeq { items.append(.modSeq(record.modSeq)) }
                hasModSeq = true
            case .internalDate:
                items.append(.internalDate(IMAPDates.dateTime(seconds: record.internalDate)))
            case .rfc822Size:
                items.append(.rfc822Size(UInt64(record.size)))
            case .envelope:
                guard let message else { continue }
                items.append(.envelope(message.header.envelope))
            case .body:
                guard let message else { continue }
                items.append(.body(message.body))
            case .bodyStructure:
                guard let message else { continue }
                items.append(.bodyStructure(message.bodyStructure))
            case .bodySection(let section, let partial, _):
                guard let message else { continue }
                items.append(.bodySection(section, origin: partial?.offset, data: message.section(section, partial: partial)))
            case .rfc822:
                guard let message else { continue }
                items.append(.rfc822(message.bytes))
            case .rfc822Header:
                guard let message else { continue }
                items.append(.rfc822Header(message.section(IMAPSection(text: .header))))
            case .rfc822Text:
                guard let message else { continue }
                items.append(.rfc822Text(message.section(IMAPSection(text: .text))))
            }
        }
        if modSeq && !hasModSeq { items.append(.modSeq(record.modSeq)) }
        if flagsChanged && !hasFlags { items.append(.flags(IMAPFlags.imapFlags(record.flags))) }
        return items
    }

    /// Reads and parses a message file (off the event loop). nil when it is gone.
    static func load(path: String?) -> MIMEMessage? {
        guard let path, let data = FileManager.default.contents(atPath: path) else { return nil }
        return MIMEMessage(data)
    }
}
