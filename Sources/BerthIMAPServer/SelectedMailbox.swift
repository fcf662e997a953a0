import BerthCore
import BerthIMAP

/// A session's view of its selected folder (RFC 3501 §2.3.1): the messages in sequence
/// order as the client last heard of them, with flags and MODSEQ per UID. The store moves
/// on without the session; `apply(_:expungeAllowed:)` brings the view up to date and
/// returns what the client must be told. A pure value: no store, no channel.
public struct SelectedMailbox: Sendable, Hashable {
    public let mailboxID: Int64
    public private(set) var name: String
    public let uidValidity: UInt32
    public let readOnly: Bool
    /// In sequence order, which is UID order; held expunges included (RFC 3501 §7.4.1).
    public private(set) var messages: [MessageRecord]
    public private(set) var uidNext: UInt32
    /// The MODSEQ up to which this view is current: the next `changes(since:)` asks from here.
    public private(set) var highestModSeq: UInt64
    /// UIDs the store removed that the client has not been told of yet.
    public private(set) var pendingExpunges: Set<UInt32> = []
    /// Keywords in use, as the client was told in `* FLAGS` (first spelling kept).
    public private(set) var keywords: [String] = []
    /// RFC 7162: FETCH responses carry MODSEQ once the client used CONDSTORE.
    public var condStore = false
    /// UIDs that are `\Recent` in this session (RFC 3501 §2.3.2): it claimed them first.
    public var recent: Set<UInt32> = []
    /// RFC 7162 §3.2.10: expunges are reported as VANISHED, and FETCH carries UID.
    public var qresync = false

    public init(snapshot: MailboxSnapshot, readOnly: Bool) {
        mailboxID = snapshot.mailbox.id
        name = snapshot.mailbox.name
        uidValidity = snapshot.mailbox.uidValidity
        self.readOnly = readOnly
        messages = snapshot.messages.sorted { $0.uid < $1.uid }
        uidNext = snapshot.mailbox.uidNext
        highestModSeq = snapshot.mailbox.highestModSeq
        _ = noteKeywords(messages)
    }

    /// `* FLAGS` and PERMANENTFLAGS as SELECT gives them: the system flags, then the
    /// keywords in use; `\*` says more may be created (RFC 3501 §7.1).
    public var flagResponses: [IMAPResponse] {
        let flags = IMAPFlags.selectFlags + keywords.map(IMAPFlag.init)
        return [
            .data(.flags(flags)),
            .untagged(.ok, code: .permanentFlags(readOnly ? [] : flags + [.wildcard]), text: "Flags permitted"),
        ]
    }

    /// RFC 3501 §7.2.6: a keyword new to this folder is announced with a new FLAGS.
    private mutating func noteKeywords(_ records: [MessageRecord]) -> Bool {
        var known = Set(keywords.map { $0.lowercased() })
        var added = false
        for record in records {
            for keyword in record.flags.keywords where known.insert(keyword.lowercased()).inserted {
                keywords.append(keyword)
                added = true
            }
        }
        return added
    }

    public var count: Int { messages.count }

    // MARK: Lookups

    /// The 1-based sequence number of `uid`, if the view has it.
    public func sequenceNumber(of uid: UInt32) -> Int? {
        index(of: uid).map { $0 + 1 }
    }

    public func index(of uid: UInt32) -> Int? {
        var low = 0, high = messages.count
        while low < high {
            let mid = (low + high) / 2
            if messages[mid].uid < uid { low = mid + 1 } else { high = mid }
        }
        return low < messages.count && messages[low].uid == uid ? low : nil
    }

    /// First index whose UID is at least `uid`.
    private func lowerBound(_ uid: UInt32) -> Int {
        var low = 0, high = messages.count
        while low < high {
            let mid = (low + high) / 2
            if messages[mid].uid < uid { low = mid + 1 } else { high = mid }
        }
        return low
    }

    public func record(uid: UInt32) -> MessageRecord? {
        index(of: uid).map { messages[$0] }
    }

    /// The indexes (0-based, ascending, no duplicates) a sequence set names. Message numbers
    /// past the end are left out; `*` is the last message, or, for UIDs, the largest UID
    /// (RFC 3501 §9: `n:*` always names the last message even when `n` is larger). Nil for
    /// `$` (SEARCHRES is not offered).
    /// RFC 3501 §9 seq-number: a message sequence number is 1 to EXISTS (or `*`); a UID
    /// set may name UIDs that are gone. Returns why a set is invalid, or nil.
    public func sequenceProblem(_ set: IMAPSequenceSet, uid: Bool) -> String? {
        guard !uid, case .ranges(let ranges) = set else { return nil }
        for range in ranges {
            // `n:*` stays lenient (clients send `1:*` to an empty mailbox).
            if range.first == .last || range.last == .last { continue }
            for number in [range.first, range.last] {
                if case .number(let n) = number, n == 0 || n > UInt32(messages.count) {
                    return "Invalid message sequence number \(n) (the mailbox has \(messages.count) messages)"
                }
            }
        }
        return nil
    }

    public func indexes(of set: IMAPSequenceSet, uid: Bool) -> [Int]? {
        guard case .ranges(let ranges) = set else { return nil }
        guard !messages.isEmpty else { return [] }
        var chosen = IndexSetBuilder()
        let last = uid ? messages[messages.count - 1].uid : UInt32(messages.count)
        for range in ranges {
            let a = Self.value(range.first, last: last), b = Self.value(range.last, last: last)
            let low = min(a, b), high = max(a, b)
            if uid {
                var index = lowerBound(low)
                while index < messages.count && messages[index].uid <= high {
                    chosen.insert(index)
                    index += 1
                }
            } else {
                guard low >= 1, low <= UInt32(messages.count) else { continue }
                chosen.insert(range: Int(low - 1)...Int(min(high, UInt32(messages.count)) - 1))
            }
        }
        return chosen.sorted
    }

    private static func value(_ number: IMAPSequenceNumber, last: UInt32) -> UInt32 {
        switch number {
        case .number(let n): n
        case .last: last
        }
    }

    // MARK: Changes

    /// Brings the view up to date with what the store says changed after `highestModSeq`,
    /// and returns the untagged responses in the order the client must read them.
    ///
    /// RFC 3501 §7.4.1: EXPUNGE may not be sent while a FETCH, STORE or SEARCH runs (their
    /// message numbers would shift under the client); with `expungeAllowed` false the
    /// expunged messages stay in the view, as held expunges, until a command that allows
    /// them. New messages are always announced (EXISTS), flag changes always (FETCH).
    /// `claimed`: UIDs this session claimed as `\Recent` with the changes (new arrivals).
    public mutating func apply(_ changes: MailboxChanges, expungeAllowed: Bool, claimed: [UInt32] = []) -> [IMAPResponse] {
        var arrived = 0
        for uid in changes.expunged where index(of: uid) != nil {
            pendingExpunges.insert(uid)
        }
        var flagChanged: [UInt32] = []
        for record in changes.changed.sorted(by: { $0.uid < $1.uid }) {
            if let index = index(of: record.uid) {
                guard !pendingExpunges.contains(record.uid) else { continue }
                let old = messages[index]
                messages[index] = record
                if old.flags != record.flags || (condStore && old.modSeq != record.modSeq) {
                    flagChanged.append(record.uid)
                }
            } else if record.uid > (messages.last?.uid ?? 0), !changes.expunged.contains(record.uid) {
                messages.append(record)
                arrived += 1
            }
            // Otherwise: a message added and expunged, or already gone, before this view saw it.
        }
        uidNext = max(uidNext, changes.mailbox.uidNext)
        highestModSeq = max(highestModSeq, changes.mailbox.highestModSeq)

        var responses: [IMAPResponse] = []
        if noteKeywords(changes.changed) { responses += flagResponses }
        if expungeAllowed { responses += flushExpunges() }
        if arrived > 0 {
            let known = Set(messages.map(\.uid))
            recent.formUnion(claimed.filter { known.contains($0) })
            responses.append(.data(.exists(UInt32(messages.count))))
            responses.append(.data(.recent(UInt32(recent.count))))
        }
        for uid in flagChanged {
            guard let seq = sequenceNumber(of: uid), let record = record(uid: uid) else { continue }
            responses.append(.data(.fetch(UInt32(seq), flagItems(record))))
        }
        return responses
    }

    /// The held expunges, announced now: EXPUNGE from the highest message number down (so
    /// each number is still valid when the client reads it), or one VANISHED under QRESYNC.
    public mutating func flushExpunges() -> [IMAPResponse] {
        guard !pendingExpunges.isEmpty else { return [] }
        let gone = pendingExpunges
        pendingExpunges = []
        return remove(uids: gone)
    }

    /// Removes messages this session expunged itself (EXPUNGE, MOVE), answering as a flush does.
    public mutating func expunged(_ uids: [UInt32]) -> [IMAPResponse] {
        let gone = Set(uids).union(pendingExpunges)
        pendingExpunges = []
        return remove(uids: gone)
    }

    private mutating func remove(uids gone: Set<UInt32>) -> [IMAPResponse] {
        var responses: [IMAPResponse] = []
        var removedUIDs: [UInt32] = []
        for index in messages.indices.reversed() where gone.contains(messages[index].uid) {
            removedUIDs.append(messages[index].uid)
            if !qresync { responses.append(.data(.expunge(UInt32(index + 1)))) }
        }
        messages.removeAll { gone.contains($0.uid) }
        recent.subtract(gone)
        if qresync && !removedUIDs.isEmpty {
            responses.append(.data(.vanished(earlier: false, Self.sequenceSet(removedUIDs))))
        }
        return responses
    }

    /// This session changed flags itself (STORE, FETCH setting \Seen): the view takes the
    /// records as the store returned them.
    /// Returns the new FLAGS when a keyword appeared.
    @discardableResult
    public mutating func update(_ records: [MessageRecord]) -> [IMAPResponse] {
        for record in records {
            guard let index = index(of: record.uid), !pendingExpunges.contains(record.uid) else { continue }
            messages[index] = record
        }
        return noteKeywords(records) ? flagResponses : []
    }

    /// `FLAGS (...)`, with `UID` under QRESYNC (RFC 7162 §3.2.4) and `MODSEQ` under CONDSTORE.
    public func flagItems(_ record: MessageRecord) -> [IMAPFetchItem] {
        var items: [IMAPFetchItem] = []
        if qresync { items.append(.uid(record.uid)) }
        items.append(.flags(IMAPFlags.imapFlags(record.flags) + (recent.contains(record.uid) ? [.recent] : [])))
        if condStore { items.append(.modSeq(record.modSeq)) }
        return items
    }

    /// Sorted numbers as the shortest `sequence-set` (`1:3,7`).
    public static func sequenceSet(_ numbers: [UInt32]) -> IMAPSequenceSet {
        let sorted = Array(Set(numbers)).sorted()
        var ranges: [IMAPSequenceRange] = []
        var start: UInt32?
        var previous: UInt32 = 0
        for n in sorted {
            if start != nil, n == previous + 1 {
                previous = n
                continue
            }
            if let s = start { ranges.append(s == previous ? IMAPSequenceRange(s) : IMAPSequenceRange(s...previous)) }
            start = n
            previous = n
        }
        if let s = start { ranges.append(s == previous ? IMAPSequenceRange(s) : IMAPSequenceRange(s...previous)) }
        return .ranges(ranges)
    }
}

/// Indexes gathered from several ranges, kept small: a `1:*` over a big folder is one
/// range, not a million inserts.
struct IndexSetBuilder {
    private var ranges: [ClosedRange<Int>] = []

    mutating func insert(_ index: Int) { insert(range: index...index) }

    mutating func insert(range: ClosedRange<Int>) { ranges.append(range) }

    var sorted: [Int] {
        let ordered = ranges.sorted { $0.lowerBound < $1.lowerBound }
        var result: [Int] = []
        var next = Int.min
        for range in ordered {
            let start = max(range.lowerBound, next)
            guard start <= range.upperBound else { continue }
            result.append(contentsOf: start...range.upperBound)
            next = range.upperBound + 1
        }
        return result
    }
}
