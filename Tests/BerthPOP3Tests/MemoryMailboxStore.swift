import BerthCore
import BerthTestSupport
import Foundation

/// A store below the protocol layer: each account's INBOX in memory, message bodies as
/// files in a temporary directory (LF line ends, as a Maildir holds them). Only what POP3
/// uses is implemented. Called from the blocking pool's threads, hence the lock.
final class MemoryMailboxStore: MailboxStore, @unchecked Sendable {
    static let uidValidity: UInt32 = 1_712_345_678
    static let inboxID: Int64 = 7

    struct Stored {
        var record: MessageRecord
        var path: String
    }

    private let lock = NSLock()
    private let directory: TempDirectory
    private var inboxes: [MailAccount: [Stored]] = [:]
    private var nextUID: UInt32 = 41
    private var locked: Set<MailAccount> = []
    private var expunges: [[UInt32]] = []
    private var flagChanges: [(FlagChange, [UInt32])] = []
    /// Lock tokens handed out and not yet cancelled.
    private var liveLocks = 0
    private var failing: Set<String> = []

    /// Makes `snapshot` or `expunge` throw, as a broken disk or database would.
    func fail(_ call: String) { lock.withLock { _ = failing.insert(call) } }
    private func check(_ call: String) throws {
        if lock.withLock({ failing.contains(call) }) { throw MailboxStoreError.storage("\(call) failed") }
    }

    init() throws {
        directory = try TempDirectory()
    }

    deinit { directory.remove() }

    /// Adds a message to `account`'s INBOX; returns its UID.
    @discardableResult
    func add(_ body: String, to account: MailAccount, flags: MessageFlags = .none) throws -> UInt32 {
        try add(Array(body.utf8), to: account, flags: flags)
    }

    @discardableResult
    func add(_ body: [UInt8], to account: MailAccount, flags: MessageFlags = .none) throws -> UInt32 {
        let uid = lock.withLock { () -> UInt32 in
            nextUID += 1
            return nextUID
        }
        let path = directory.file("\(account.user).\(uid)")
        try Data(body).write(to: URL(fileURLWithPath: path))
        // RFC822.SIZE: octets as served, every bare LF counted as CRLF.
        let bareLFs = body.indices.filter { body[$0] == 0x0A && ($0 == 0 || body[$0 - 1] != 0x0D) }.count
        let record = MessageRecord(uid: uid, flags: flags, internalDate: 0, size: body.count + bareLFs, modSeq: 1)
        lock.withLock { inboxes[account, default: []].append(Stored(record: record, path: path)) }
        return uid
    }

    /// Removes a message's file but not its index row (a file lost behind the index's back).
    func removeFile(uid: UInt32, of account: MailAccount) {
        let path = lock.withLock { inboxes[account]?.first { $0.record.uid == uid }?.path }
        if let path { try? FileManager.default.removeItem(atPath: path) }
    }

    var expungeCalls: [[UInt32]] { lock.withLock { expunges } }
    var seenUIDs: [UInt32] {
        lock.withLock {
            flagChanges.flatMap { change, uids -> [UInt32] in
                if case .add(let flags) = change, flags.system.contains(.seen) { return uids }
                return []
            }
        }
    }
    func isLocked(_ account: MailAccount) -> Bool { lock.withLock { locked.contains(account) } }
    var outstandingLocks: Int { lock.withLock { liveLocks } }
    func uids(of account: MailAccount) -> [UInt32] { lock.withLock { (inboxes[account] ?? []).map(\.record.uid) } }

    // MARK: MailboxStore

    func snapshot(_ name: String, of account: MailAccount) throws -> MailboxSnapshot {
        guard name == DefaultMailboxes.inbox else { throw MailboxStoreError.noSuchMailbox(name) }
        try check("snapshot")
        let messages = lock.withLock { (inboxes[account] ?? []).map(\.record) }
        return MailboxSnapshot(
            mailbox: MailboxInfo(
                id: Self.inboxID, name: name, uidValidity: Self.uidValidity, uidNext: (messages.last?.uid ?? 0) + 1),
            messages: messages)
    }

    func messagePaths(uids: [UInt32], in mailboxID: Int64, of account: MailAccount) throws -> [UInt32: String] {
        guard mailboxID == Self.inboxID else { throw MailboxStoreError.mailboxGone }
        let wanted = Set(uids)
        return lock.withLock {
            Dictionary(uniqueKeysWithValues: (inboxes[account] ?? []).filter { wanted.contains($0.record.uid) }.map { ($0.record.uid, $0.path) })
        }
    }

    func expunge(uids: [UInt32], in mailboxID: Int64, of account: MailAccount) throws -> [UInt32] {
        guard mailboxID == Self.inboxID else { throw MailboxStoreError.mailboxGone }
        try check("expunge")
        return lock.withLock {
            expunges.append(uids)
            let removed = (inboxes[account] ?? []).filter { uids.contains($0.record.uid) }
            inboxes[account]?.removeAll { uids.contains($0.record.uid) }
            for stored in removed { try? FileManager.default.removeItem(atPath: stored.path) }
            return removed.map(\.record.uid).sorted()
        }
    }

    func storeFlags(
        _ change: FlagChange, uids: [UInt32], in mailboxID: Int64, of account: MailAccount, unchangedSince: UInt64?
    ) throws -> FlagStoreResult {
        lock.withLock {
            flagChanges.append((change, uids))
            var updated: [MessageRecord] = []
            for index in (inboxes[account] ?? []).indices where uids.contains(inboxes[account]![index].record.uid) {
                inboxes[account]![index].record.flags = change.applied(to: inboxes[account]![index].record.flags)
                updated.append(inboxes[account]![index].record)
            }
            return FlagStoreResult(updated: updated, modified: [])
        }
    }

    final class Token: MailboxObservation, @unchecked Sendable {
        private let lock = NSLock()
        private var release: (() -> Void)?

        init(release: @escaping () -> Void) { self.release = release }

        func cancel() {
            let release = lock.withLock { () -> (() -> Void)? in
                defer { self.release = nil }
                return self.release
            }
            release?()
        }
    }

    func lockMaildrop(of account: MailAccount) -> (any MailboxObservation)? {
        lock.withLock {
            guard !locked.contains(account) else { return nil }
            locked.insert(account)
            liveLocks += 1
            return Token { [self] in
                lock.withLock {
                    locked.remove(account)
                    liveLocks -= 1
                }
            }
        }
    }

    // Not used by POP3.

    func mailboxes(of account: MailAccount) throws -> [MailboxInfo] { throw Self.unused }
    func createMailbox(_ name: String, of account: MailAccount) throws -> MailboxInfo { throw Self.unused }
    func deleteMailbox(_ name: String, of account: MailAccount) throws { throw Self.unused }
    func renameMailbox(_ name: String, to newName: String, of account: MailAccount) throws { throw Self.unused }
    func setSubscribed(_ name: String, _ subscribed: Bool, of account: MailAccount) throws { throw Self.unused }
    func status(_ name: String, of account: MailAccount) throws -> MailboxStatus { throw Self.unused }
    func changes(in mailboxID: Int64, of account: MailAccount, since modSeq: UInt64) throws -> MailboxChanges {
        throw Self.unused
    }
    func append(
        _ body: MessageBody, to name: String, flags: MessageFlags, internalDate: Double?, of account: MailAccount
    ) throws -> (uidValidity: UInt32, uid: UInt32) { throw Self.unused }
    func copy(
        uids: [UInt32], from mailboxID: Int64, to name: String, move: Bool, of account: MailAccount
    ) throws -> CopyResult { throw Self.unused }
    func quota(of account: MailAccount) throws -> QuotaUsage { throw Self.unused }
    func observe(_ mailboxID: Int64, of account: MailAccount, onChange: @escaping @Sendable () -> Void)
        -> any MailboxObservation
    {
        Token {}
    }

    static let unused = MailboxStoreError.storage("not used by POP3")
}

/// Logins below the protocol layer.
struct TableAuthenticator: MailAuthenticator {
    static let alice = MailAccount(domain: "example.com", user: "alice")
    static let bob = MailAccount(domain: "example.com", user: "bob")

    func authenticate(user: String, password: String) -> MailAccount? {
        switch (user, password) {
        // RFC 1939 §7: a password may contain spaces.
        case ("alice@example.com", "right password"): return Self.alice
        case ("bob@example.com", "bob-pw"): return Self.bob
        default: return nil
        }
    }
}
