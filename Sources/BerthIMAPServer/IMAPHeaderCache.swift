import BerthCore
import BerthMIME
import Foundation

/// Parsed message headers shared by every session of a server, so that a client syncing
/// headers (`FETCH 1:* BODY.PEEK[HEADER.FIELDS (...)]`, ENVELOPE) or searching FROM or
/// SUBJECT pays for reading and parsing a message's header once, not at every command.
/// A message's bytes never change under its UID (RFC 3501 §2.3.1.1), so an entry never
/// goes stale; the key carries UIDVALIDITY so a folder made anew never meets old entries.
/// Bounded by octets; the oldest entries go first.
final class IMAPHeaderCache: @unchecked Sendable {
    struct Key: Hashable, Sendable {
        var account: MailAccount
        var mailboxID: Int64
        var uidValidity: UInt32
        var uid: UInt32
    }

    private let lock = NSLock()
    private var entries: [Key: (message: MIMEMessage, cost: Int)] = [:]
    /// Insertion order, for eviction; `head` is the oldest still to consider.
    private var order: [Key] = []
    private var head = 0
    private var total = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    func get(_ key: Key) -> MIMEMessage? {
        guard capacity > 0 else { return nil }
        return lock.withLock { entries[key]?.message }
    }

    func put(_ key: Key, _ message: MIMEMessage) {
        // The bytes, and about as much again for the parsed fields.
        let cost = message.bytes.count * 2 + 256
        guard capacity > 0, cost <= capacity / 8 else { return }
        lock.withLock {
            guard entries[key] == nil else { return }
            entries[key] = (message, cost)
            order.append(key)
            total += cost
            while total > capacity && head < order.count {
                if let evicted = entries.removeValue(forKey: order[head]) { total -= evicted.cost }
                head += 1
            }
            // Keys of evicted entries are dropped from the front now and then, not one by one.
            if head > 1024 && head * 2 > order.count {
                order.removeFirst(head)
                head = 0
            }
        }
    }

    var count: Int { lock.withLock { entries.count } }
}
