import Foundation
import BerthCore
import BerthIMAP
import BerthMIME

/// SEARCH (RFC 3501 §6.4.4) over a view's messages, pure: the message's content comes
/// from `content` only when a key needs it (headers, body, sent date), so a flag search
/// over a big folder never opens a file.
enum IMAPSearch {
    /// RFC 3501 §6.4.4: US-ASCII must be supported; UTF-8 is what Berth compares in.
    static let charsets = ["UTF-8", "US-ASCII"]

    struct Candidate: Sendable {
        var record: MessageRecord
        var sequenceNumber: Int
        /// `\Recent` in this session.
        var recent = false
    }

    /// How much of each message the keys read: BODY and TEXT the whole message, header
    /// keys and the SENT dates only the header, the rest nothing.
    static func content(_ key: IMAPSearchKey) -> IMAPFetch.Content {
        switch key {
        case .body, .text: .full
        case .bcc, .cc, .from, .subject, .to, .header, .sentBefore, .sentOn, .sentSince: .header
        case .not(let inner): content(inner)
        case .or(let a, let b): max(content(a), content(b))
        case .and(let keys): keys.map(content).max() ?? .none
        default: .none
        }
    }

    /// The same search with each AND's keys cheapest first (flags, dates and sizes before
    /// header and body keys), so a message that fails `UNSEEN` is never read from disk.
    static func cheapFirst(_ key: IMAPSearchKey) -> IMAPSearchKey {
        switch key {
        case .and(let keys):
            let ordered = keys.map(cheapFirst).enumerated().sorted { a, b in
                (content(a.element), a.offset) < (content(b.element), b.offset)
            }
            return .and(ordered.map(\.element))
        case .not(let inner): return .not(cheapFirst(inner))
        case .or(let a, let b): return .or(cheapFirst(a), cheapFirst(b))
        default: return key
        }
    }

    /// RFC 7162 §3.1.5: a search with MODSEQ answers with the highest MODSEQ found.
    static func usesModSeq(_ key: IMAPSearchKey) -> Bool {
        switch key {
        case .modSeq: true
        case .not(let inner): usesModSeq(inner)
        case .or(let a, let b): usesModSeq(a) || usesModSeq(b)
        case .and(let keys): keys.contains(where: usesModSeq)
        default: false
        }
    }

    /// Loads a message's content once, on first use: parsed, or (for SEARCH TEXT's fast
    /// path) as the file's octets, which a later parse then reuses.
    final class Content {
        private let load: () -> MIMEMessage?
        private let loadRaw: (() -> [UInt8]?)?
        private var loaded = false
        private var message: MIMEMessage?
        private var rawLoaded = false
        private var rawBytes: [UInt8]?

        init(_ load: @escaping () -> MIMEMessage?, raw: (() -> [UInt8]?)? = nil) {
            self.load = load
            self.loadRaw = raw
        }

        var value: MIMEMessage? {
            if !loaded {
                loaded = true
                message = rawLoaded ? rawBytes.map { MIMEMessage($0) } : load()
            }
            return message
        }

        var raw: [UInt8]? {
            if !rawLoaded, let loadRaw {
                rawLoaded = true
                rawBytes = loadRaw()
            }
            return rawBytes
        }
    }

    /// Markers of content whose decoded text differs from its octets for an ASCII search
    /// string: encoded words and transfer encodings, charsets that are not ASCII supersets,
    /// and MIME structure (TEXT searches text parts only, without their part headers).
    static let decodingMarkers: [[UInt8]] = ["=?", "base64", "quoted-printable", "utf-16", "utf-32", "utf-7", "multipart", "message/"]
        .map { Array($0.utf8) }

    /// SEARCH TEXT without parsing, when that gives the same answer: an ASCII search string
    /// without white space (so no header folding can split it) in a single-part message with
    /// no encoding is in the decoded text exactly when it is in the octets. nil: parse.
    static func plainTextVerdict(_ needle: String, _ content: Content) -> Bool? {
        guard !needle.isEmpty, needle.utf8.allSatisfy({ $0 < 0x80 && $0 > 0x20 }), let raw = content.raw else { return nil }
        return raw.withUnsafeBufferPointer { bytes -> Bool? in
            // A single-part message declares its structure, transfer encoding and charset,
            // and carries its encoded words, in the top-level header: only that is looked at.
            let header = UnsafeBufferPointer(rebasing: bytes[..<headerLength(bytes)])
            for marker in decodingMarkers where containsASCII(header, marker) { return nil }
            return containsASCII(bytes, needle.utf8.map(asciiLowercased))
        }
    }

    /// Octets up to the blank line that ends the header (LF or CRLF line ends); all of
    /// them when there is none.
    static func headerLength(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var index = 0
        while index + 1 < bytes.count {
            if bytes[index] == 0x0A {
                if bytes[index + 1] == 0x0A { return index + 1 }
                if bytes[index + 1] == 0x0D, index + 2 < bytes.count, bytes[index + 2] == 0x0A { return index + 1 }
            }
            index += 1
        }
        return bytes.count
    }

    /// `last`: the largest message number and UID, for `*`.
    static func matches(
        _ key: IMAPSearchKey, _ candidate: Candidate, lastSequence: UInt32, lastUID: UInt32, content: Content
    ) -> Bool {
        let record = candidate.record
        let flags = record.flags.system
        func recurse(_ key: IMAPSearchKey) -> Bool {
            matches(key, candidate, lastSequence: lastSequence, lastUID: lastUID, content: content)
        }
        func headerContains(_ name: String, _ text: String) -> Bool {
            guard let message = content.value else { return false }
            let values = message.decodedHeaderValues(name)
            // RFC 3501 §6.4.4: HEADER with an empty string matches every message having the field.
            if text.isEmpty { return !values.isEmpty }
            return values.contains { contains($0, text) }
        }
        func sentDay() -> Int? {
            content.value?.header.value("Date").flatMap { IMAPDates.dayNumber(rfc5322: $0) }
        }
        let internalDay = IMAPDates.dayNumber(seconds: record.internalDate)
        switch key {
        case .all: return true
        case .answered: return flags.contains(.answered)
        case .deleted: return flags.contains(.deleted)
        case .draft: return flags.contains(.draft)
        case .flagged: return flags.contains(.flagged)
        case .seen: return flags.contains(.seen)
        // RFC 3501 §6.4.4: NEW is RECENT UNSEEN.
        case .recent: return candidate.recent
        case .new: return candidate.recent && !flags.contains(.seen)
        case .old: return !candidate.recent
        case .unanswered: return !flags.contains(.answered)
        case .undeleted: return !flags.contains(.deleted)
        case .undraft: return !flags.contains(.draft)
        case .unflagged: return !flags.contains(.flagged)
        case .unseen: return !flags.contains(.seen)
        case .keyword(let flag): return IMAPFlags.has(record.flags, keyword: flag)
        case .unkeyword(let flag): return !IMAPFlags.has(record.flags, keyword: flag)
        case .bcc(let text): return headerContains("Bcc", text)
        case .cc(let text): return headerContains("Cc", text)
        case .from(let text): return headerContains("From", text)
        case .to(let text): return headerContains("To", text)
        case .subject(let text): return headerContains("Subject", text)
        case .header(let name, let text): return headerContains(name, text)
        case .body(let text):
            guard let message = content.value else { return false }
            return contains(message.bodyText, text)
        case .text(let text):
            if let verdict = plainTextVerdict(text, content) { return verdict }
            guard let message = content.value else { return false }
            return contains(message.fullText, text)
        case .before(let date): return internalDay < IMAPDates.dayNumber(date)
        case .on(let date): return internalDay == IMAPDates.dayNumber(date)
        case .since(let date): return internalDay >= IMAPDates.dayNumber(date)
        case .sentBefore(let date): return sentDay().map { $0 < IMAPDates.dayNumber(date) } ?? false
        case .sentOn(let date): return sentDay() == IMAPDates.dayNumber(date)
        case .sentSince(let date): return sentDay().map { $0 >= IMAPDates.dayNumber(date) } ?? false
        case .larger(let size): return record.size > Int(size)
        case .smaller(let size): return record.size < Int(size)
        case .uid(let set): return contains(set, record.uid, last: lastUID)
        case .sequenceSet(let set): return contains(set, UInt32(candidate.sequenceNumber), last: lastSequence)
        case .not(let inner): return !recurse(inner)
        case .or(let a, let b): return recurse(a) || recurse(b)
        case .and(let keys): return keys.allSatisfy(recurse)
        case .modSeq(let modSeq): return record.modSeq >= modSeq.value
        }
    }

    /// Case-insensitive substring match (RFC 3501 §6.4.4), over Unicode text. Almost every
    /// search string is ASCII (a name, an address, a word): those are matched on the UTF-8
    /// octets with ASCII case folding, which SEARCH TEXT over a whole folder of bodies
    /// needs to be fast; others go through Unicode lower-casing.
    static func contains(_ haystack: String, _ needle: String) -> Bool {
        if needle.isEmpty { return true }
        guard needle.utf8.allSatisfy({ $0 < 0x80 }) else {
            return haystack.lowercased().contains(needle.lowercased())
        }
        let pattern = needle.utf8.map(asciiLowercased)
        var haystack = haystack
        return haystack.withUTF8 { containsASCII($0, pattern) }
    }

    @inline(__always)
    static func asciiLowercased(_ byte: UInt8) -> UInt8 {
        byte &- 0x41 < 26 ? byte | 0x20 : byte
    }

    /// Whether `pattern` (ASCII, lower case) occurs in `text`, ASCII letters compared
    /// without case. Non-ASCII octets never equal a pattern octet, so UTF-8 text is safe.
    static func containsASCII(_ text: UnsafeBufferPointer<UInt8>, _ pattern: [UInt8]) -> Bool {
        let count = pattern.count
        guard count <= text.count else { return false }
        let first = pattern[0]
        var start = 0
        let lastStart = text.count - count
        while start <= lastStart {
            if asciiLowercased(text[start]) == first {
                var matched = 1
                while matched < count && asciiLowercased(text[start + matched]) == pattern[matched] { matched += 1 }
                if matched == count { return true }
            }
            start += 1
        }
        return false
    }

    static func contains(_ set: IMAPSequenceSet, _ value: UInt32, last: UInt32) -> Bool {
        guard case .ranges(let ranges) = set else { return false }
        for range in ranges {
            let a = number(range.first, last), b = number(range.last, last)
            if min(a, b) <= value && value <= max(a, b) { return true }
        }
        return false
    }

    private static func number(_ n: IMAPSequenceNumber, _ last: UInt32) -> UInt32 {
        switch n {
        case .number(let value): value
        case .last: last
        }
    }
}
