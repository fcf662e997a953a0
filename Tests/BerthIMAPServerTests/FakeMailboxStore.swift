import BerthCore
import BerthMIME
import BerthTestSupport
import Foundation

/// A `MailboxStore` in memory (message files in a temporary directory), below the protocol
/// layer: what the IMAP server is tested against. Notifies observers synchronously, as a
/// store on another thread would, through the handler's hop to its event loop.
final class FakeMailboxStore: MailboxStore, @unchecked Sendable {
    struct Folder {
        var info: MailboxInfo
        var messages: [UInt32: (record: MessageRecord, path: String)] = [:]
        var expunged: [(uid: UInt32, modSeq: UInt64)] = []
    }

    private let lock = NSLock()
    private var folders: [String: Folder] = [:]
    private var nextID: Int64 = 1
    private var observers: [Int64: [UUID: @Sendable () -> Void]] = [:]
    private var fileNumber = 0
    let directory: TempDirectory
    var quotaLimit: Int?

    init() throws {
        directory = try TempDirectory()
        for (name, use) in DefaultMailboxes.all { _ = try createLocked(name, specialUse: use) }
    }

    // MARK: Helpers for tests

    /// Delivers a message as the SMTP side would: a file with LF line ends.
    @discardableResult
    func deliver(_ text: String, to name: String = "INBOX", flags: MessageFlags = .none, date: Double = 1_700_000_000) throws -> UInt32 {
        try append(.bytes(Array(text.utf8)), to: name, flags: flags, internalDate: date, of: FakeAuthenticator.alice).uid
    }

    func records(_ name: String) -> [MessageRecord] {
        lock.withLock { (folders[name]?.messages.values.map(\.record) ?? []).sorted { $0.uid < $1.uid } }
    }

    func observerCount() -> Int { lock.withLock { observers.values.map(\.count).reduce(0, +) } }

    // MARK: MailboxStore

    private func createLocked(_ name: String, specialUse: SpecialUse? = nil) throws -> MailboxInfo {
        guard folders[name] == nil else { throw MailboxStoreError.mailboxExists(name) }
        guard !name.isEmpty, !name.hasPrefix("/") else { throw MailboxStoreError.invalidName(name, reason: "empty part") }
        let info = MailboxInfo(id: nextID, name: name, specialUse: specialUse, uidValidity: UInt32(1000 + nextID))
        nextID += 1
        folders[name] = Folder(info: info)
        return info
    }

    func mailboxes(of account: MailAccount) throws -> [MailboxInfo] {
        lock.withLock {
            folders.values.map(\.info).sorted { a, b in
                if a.name == "INBOX" { return b.name != "INBOX" }
                if b.name == "INBOX" { return false }
                return a.name < b.name
            }
        }
    }

    func createMailbox(_ name: String, of account: MailAccount) throws -> MailboxInfo {
        try lock.withLock { try createLocked(name) }
    }

    func deleteMailbox(_ name: String, of account: MailAccount) throws {
        try lock.withLock {
            guard folders[name] != nil else { throw MailboxStoreError.noSuchMailbox(name) }
            guard name != "INBOX" else { throw MailboxStoreError.cannotDelete(name, reason: "INBOX cannot be deleted") }
            folders[name] = nil
        }
    }

    func renameMailbox(_ name: String, to newName: String, of account: MailAccount) throws {
        try lock.withLock {
            guard var folder = folders[name] else { throw MailboxStoreError.noSuchMailbox(name) }
            guard folders[newName] == nil else { throw MailboxStoreError.mailboxExists(newName) }
            folders[name] = nil
            folder.info.name = newName
            folders[newName] = folder
        }
    }

    func setSubscribed(_ name: String, _ subscribed: Bool, of account: MailAccount) throws {
        try lock.withLock {
            guard folders[name] != nil else { throw MailboxStoreError.noSuchMailbox(name) }
            folders[name]!.info.subscribed = subscribed
        }
    }

    func status(_ name: String, of account: MailAccount) throws -> MailboxStatus {
        try lock.withLock {
            guard let folder = folders[name] else { throw MailboxStoreError.noSuchMailbox(name) }
            let records = folder.messages.values.map(\.record)
            return MailboxStatus(
                mailbox: folder.info, messages: records.count,
                unseen: records.filter { !$0.flags.system.contains(.seen) }.count,
                deleted: records.filter { $0.flags.system.contains(.deleted) }.count,
                size: records.map(\.size).reduce(0, +))
        }
    }

    func snapshot(_ name: String, of account: MailAccount) throws -> MailboxSnapshot {
        try lock.withLock {
            guard let folder = folders[name] else { throw MailboxStoreError.noSuchMailbox(name) }
            return MailboxSnapshot(mailbox: folder.info, messages: folder.messages.values.map(\.record).sorted { $0.uid < $1.uid })
        }
    }

    private func folder(id: Int64) -> String? {
        folders.first { $0.value.info.id == id }?.key
    }

    func changes(in mailboxID: Int64, of account: MailAccount, since modSeq: UInt64) throws -> MailboxChanges {
        try lock.withLock {
            guard let name = folder(id: mailboxID), let folder = folders[name] else { throw MailboxStoreError.mailboxGone }
            return MailboxChanges(
                mailbox: folder.info,
                changed: folder.messages.values.map(\.record).filter { $0.modSeq > modSeq }.sorted { $0.uid < $1.uid },
                expunged: folder.expunged.filter { $0.modSeq > modSeq }.map(\.uid))
        }
    }

    func append(
        _ body: MessageBody, to name: String, flags: MessageFlags, internalDate: Double?, of account: MailAccount
    ) throws -> (uidValidity: UInt32, uid: UInt32) {
        let bytes: [UInt8]
        switch body {
        case .bytes(let b): bytes = b
        case .file(let path, _):
            bytes = Array(FileManager.default.contents(atPath: path) ?? Data())
            unlink(path)
        }
        let (result, id) = try lock.withLock { () throws -> ((UInt32, UInt32), Int64) in
            guard var folder = folders[name] else { throw MailboxStoreError.noSuchMailbox(name) }
            if let quotaLimit, usedLocked() + bytes.count > quotaLimit { throw MailboxStoreError.overQuota }
            fileNumber += 1
            let path = directory.file("m\(fileNumber)")
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
            let uid = folder.info.uidNext
            folder.info.uidNext += 1
            folder.info.highestModSeq += 1
            let record = MessageRecord(
                uid: uid, flags: flags, internalDate: internalDate ?? 1_700_000_000, size: LineEnds.crlfCount(bytes),
                modSeq: folder.info.highestModSeq)
            folder.messages[uid] = (record, path)
            folders[name] = folder
            return ((folder.info.uidValidity, uid), folder.info.id)
        }
        notify(id)
        return result
    }

    private func usedLocked() -> Int {
        folders.values.flatMap { $0.messages.values.map(\.record.size) }.reduce(0, +)
    }

    func storeFlags(
        _ change: FlagChange, uids: [UInt32], in mailboxID: Int64, of account: MailAccount, unchangedSince: UInt64?
    ) throws -> FlagStoreResult {
        let result = try lock.withLock { () throws -> FlagStoreResult in
            guard let name = folder(id: mailboxID), var folder = folders[name] else { throw MailboxStoreError.mailboxGone }
            var updated: [MessageRecord] = []
            var modified: [UInt32] = []
            for uid in uids.sorted() {
                guard var entry = folder.messages[uid] else { continue }
                if let unchangedSince, entry.record.modSeq > unchangedSince {
                    modified.append(uid)
                    continue
                }
                let flags = change.applied(to: entry.record.flags)
                if flags != entry.record.flags {
                    folder.info.highestModSeq += 1
                    entry.record.flags = flags
                    entry.record.modSeq = folder.info.highestModSeq
                    folder.messages[uid] = entry
                }
                updated.append(entry.record)
            }
            folders[name] = folder
            return FlagStoreResult(updated: updated, modified: modified)
        }
        notify(mailboxID)
        return result
    }

    func copy(uids: [UInt32], from mailboxID: Int64, to name: String, move: Bool, of account: MailAccount) throws -> CopyResult {
        let result = try lock.withLock { () throws -> CopyResult in
            guard let sourceName = folder(id: mailboxID), var source = folders[sourceName] else { throw MailboxStoreError.mailboxGone }
            guard var target = folders[name] else { throw MailboxStoreError.noSuchMailbox(name) }
            var pairs: [(source: UInt32, destination: UInt32)] = []
            for uid in uids.sorted() {
                guard let entry = source.messages[uid] else { continue }
                let newUID = target.info.uidNext
                target.info.uidNext += 1
                target.info.highestModSeq += 1
                var record = entry.record
                record.uid = newUID
                record.modSeq = target.info.highestModSeq
                target.messages[newUID] = (record, entry.path)
                pairs.append((uid, newUID))
                if move {
                    source.info.highestModSeq += 1
                    source.messages[uid] = nil
                    source.expunged.append((uid, source.info.highestModSeq))
                }
            }
            if sourceName == name {
                // Copy into the same folder: the target carries both changes.
                target.expunged = source.expunged
            } else {
                folders[sourceName] = source
            }
            folders[name] = target
            return CopyResult(uidValidity: target.info.uidValidity, uids: pairs)
        }
        notify(mailboxID)
        return result
    }

    func expunge(uids: [UInt32], in mailboxID: Int64, of account: MailAccount) throws -> [UInt32] {
        let removed = try lock.withLock { () throws -> [UInt32] in
            guard let name = folder(id: mailboxID), var folder = folders[name] else { throw MailboxStoreError.mailboxGone }
            var removed: [UInt32] = []
            for uid in uids.sorted() where folder.messages[uid] != nil {
                folder.messages[uid] = nil
                folder.info.highestModSeq += 1
                folder.expunged.append((uid, folder.info.highestModSeq))
                removed.append(uid)
            }
            folders[name] = folder
            return removed
        }
        notify(mailboxID)
        return removed
    }

    func messagePaths(uids: [UInt32], in mailboxID: Int64, of account: MailAccount) throws -> [UInt32: String] {
        lock.withLock {
            guard let name = folder(id: mailboxID), let messages = folders[name]?.messages else { return [:] }
            return Dictionary(uniqueKeysWithValues: Set(uids).compactMap { uid in messages[uid].map { (uid, $0.path) } })
        }
    }

    func quota(of account: MailAccount) throws -> QuotaUsage {
        lock.withLock {
            QuotaUsage(usedBytes: usedLocked(), messages: folders.values.map(\.messages.count).reduce(0, +), limitBytes: quotaLimit)
        }
    }

    final class Observation: MailboxObservation, @unchecked Sendable {
        let cancelAction: @Sendable () -> Void
        init(_ cancel: @escaping @Sendable () -> Void) { cancelAction = cancel }
        func cancel() { cancelAction() }
        deinit { cancelAction() }
    }

    func observe(_ mailboxID: Int64, of account: MailAccount, onChange: @escaping @Sendable () -> Void) -> any MailboxObservation {
        let id = UUID()
        lock.withLock { observers[mailboxID, default: [:]][id] = onChange }
        return Observation { [weak self] in
            guard let self else { return }
            self.lock.withLock { self.observers[mailboxID]?[id] = nil }
        }
    }

    func lockMaildrop(of account: MailAccount) -> (any MailboxObservation)? { nil }

    private func notify(_ mailboxID: Int64) {
        let callbacks = lock.withLock { Array(observers[mailboxID]?.values ?? [:].values) }
        for callback in callbacks { callback() }
    }
}

/// One user, one password.
struct FakeAuthenticator: MailAuthenticator {
    static let alice = MailAccount(domain: "example.com", user: "alice")

    func authenticate(user: String, password: String) -> MailAccount? {
        user == "alice@example.com" && password == "secret" ? Self.alice : nil
    }
}
