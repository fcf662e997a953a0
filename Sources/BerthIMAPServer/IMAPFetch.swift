import BerthCore
import BerthIMAP
import BerthMIME
import Foundation

/// FETCH responses (RFC 3501 §6.4.5, §7.4.2; RFC 7162 MODSEQ), pure: a record and, when
/// an item needs it, the parsed message.
enum IMAPFetch {
    /// How much of the message file a request needs.
    enum Content: Int, Sendable, Comparable {
        case none, header, full
        static func < (a: Content, b: Content) -> Bool { a.rawValue < b.rawValue }
    }

    /// ENVELOPE and top-level header sections need only the header: a client syncing a
    /// folder's headers does not make the server read every attachment.
    static func content(_ attributes: [IMAPFetchAttribute]) -> Content {
        attributes.map { attribute -> Content in
            switch attribute {
            case .flags, .internalDate, .uid, .modSeq, .rfc822Size: return .none
            case .envelope, .rfc822Header: return .header
            case .bodySection(let section, _, _):
                // A part's HEADER (of an attached message) lies in the body.
                guard section.part.isEmpty else { return .full }
                switch section.text {
                case .header?, .headerFields?, .headerFieldsNot?: return .header
                default: return .full
                }
            case .body, .bodyStructure, .rfc822, .rfc822Text: return .full
            }
        }.max() ?? .none
    }

    /// Only the message's octets are asked for (BODY[], BODY[]<partial>, RFC822): served
    /// from the CRLF form of the file without parsing its MIME structure.
    static func onlyOctets(_ attributes: [IMAPFetchAttribute]) -> Bool {
        attributes.allSatisfy { attribute in
            switch attribute {
            case .bodySection(let section, _, _): section == .complete
            case .rfc822, .flags, .internalDate, .uid, .modSeq, .rfc822Size: true
            case .envelope, .body, .bodyStructure, .rfc822Header, .rfc822Text: false
            }
        }
    }

    /// The file's octets with CRLF line ends (off the event loop). nil when it is gone.
    static func loadOctets(path: String?) -> [UInt8]? {
        guard let path, let data = FileManager.default.contents(atPath: path) else { return nil }
        return LineEnds.toCRLF(data)
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
        flagsChanged: Bool, raw: [UInt8]? = nil, recent: Bool = false
    ) -> [IMAPFetchItem] {
        let flags = IMAPFlags.imapFlags(record.flags) + (recent ? [.recent] : [])
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
                if !hasFlags { items.append(.flags(flags)) }
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
                if let raw, section == .complete {
                    items.append(.bodySection(section, origin: partial?.offset, data: partial.map { MIMEMessage.apply($0, to: raw) } ?? raw))
                    continue
                }
                guard let message else { continue }
                items.append(.bodySection(section, origin: partial?.offset, data: message.section(section, partial: partial)))
            case .rfc822:
                if let raw {
                    items.append(.rfc822(raw))
                    continue
                }
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
        if flagsChanged && !hasFlags { items.append(.flags(flags)) }
        return items
    }

    /// Reads and parses a message file (off the event loop); for `.header`, only up to the
    /// blank line that ends the header. nil when it is gone.
    static func load(path: String?, _ content: Content = .full) -> MIMEMessage? {
        guard let path else { return nil }
        guard content == .header else {
            return FileManager.default.contents(atPath: path).map { MIMEMessage($0) }
        }
        guard let file = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? file.close() }
        var bytes: [UInt8] = []
        var searched = 0
        while bytes.count < MIMELimits.defaultHeaderSize, let chunk = try? file.read(upToCount: 16 * 1024), !chunk.isEmpty {
            bytes += chunk
            if let end = headerEnd(bytes, from: max(0, searched - 2)) {
                bytes.removeSubrange(end...)
                break
            }
            searched = bytes.count
        }
        return MIMEMessage(bytes)
    }

    /// Just past the blank line ending a header (`LF LF` or `LF CR LF`), if it is there.
    static func headerEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        // An empty header: the message starts with its blank line.
        if start == 0, bytes.first == 0x0A { return 1 }
        if start == 0, bytes.starts(with: [0x0D, 0x0A]) { return 2 }
        var index = start
        while index < bytes.count {
            if bytes[index] == 0x0A {
                if index + 1 < bytes.count && bytes[index + 1] == 0x0A { return index + 2 }
                if index + 2 < bytes.count && bytes[index + 1] == 0x0D && bytes[index + 2] == 0x0A { return index + 3 }
            }
            index += 1
        }
        return nil
    }
}
