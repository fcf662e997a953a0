import BerthCore
import CBerthSystem
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `MailboxStore` over Maildir++ folders (`MaildirLayout`) and a `MailIndex`. Files hold
/// the content and the system flags (in the `:2,` info, so mutt and Dovecot read them);
/// the index holds UIDs, keywords, MODSEQs and sizes.
///
/// Order of every change, so that a `kill -9` at any point leaves nothing that recovery
/// (`reconcile`, run at every start) cannot bring back into agreement:
/// - new files (APPEND, COPY) are complete in their folder before their rows commit; a
///   crash in between leaves files without rows, which recovery indexes;
/// - MOVE renames each file into the destination before one transaction moves the rows;
///   a crash in between leaves source rows without files (dropped) and files without rows
///   (indexed): the message is in the destination either way, never lost, never twice;
/// - EXPUNGE unlinks the files before the rows go: a crash leaves rows without files,
///   which recovery drops; an expunged message never comes back;
/// - flag changes rename the file, then update the row; recovery finds a renamed file by
///   its unchanged base name.
/// Changes to one account's folders are serialised (a lock per account); reads are not.
public final class MaildirMailboxStore: MailboxStore, @unchecked Sendable {
    public let layout: MaildirLayout
    public let index: any MailIndex
    public let notifier: MailboxNotifier
    let names: MaildirNames
    private let quotaLimit: @Sendable (MailAccount) -> Int?
    private let logger: Logger
    private let rootFD: Int32
    private let accountLocks = (0..<64).map { _ in NSLock() }
    private let journal: DeliveryJournal?
    private let maildrops = MaildropLocks()
    private let defaultsLock = NSLock()
    private var accountsWithDefaults: Set<MailAccount> = []

    /// - Parameters:
    ///   - dataDirectory: the server's data directory (`mail/` below it), flushed with one
    ///     `syncfs` after each change that must be durable before its reply.
    ///   - quotaLimit: the account's quota in octets, nil for none.
    ///   - journal: the delivery journal, checkpointed before a message is removed or
    ///     moved, so that a replay after a crash never brings it back.
    public init(
        dataDirectory: String, index: any MailIndex, hostname: String, notifier: MailboxNotifier = MailboxNotifier(),
        quotaLimit: @escaping @Sendable (MailAccount) -> Int? = { _ in nil }, journal: DeliveryJournal? = nil, logger: Logger
    ) throws {
        self.journal = journal
        layout = MaildirLayout(mailRoot: dataDirectory + "/mail")
        self.index = index
        self.notifier = notifier
        self.names = MaildirNames(hostname: hostname)
        self.quotaLimit = quotaLimit
        self.logger = logger
        try FileManager.default.createDirectory(atPath: layout.mailRoot, withIntermediateDirectories: true)
        rootFD = open(dataDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else { throw MailboxStoreError.storage("cannot open \(dataDirectory): \(errnoText())") }
    }

    deinit { close(rootFD) }

    private func locked<T>(_ account: MailAccount, _ body: () throws -> T) rethrows -> T {
        var hasher = Hasher()
        hasher.combine(account)
        let lock = accountLocks[Int(UInt(bitPattern: hasher.finalize()) % UInt(accountLocks.count))]
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    // MARK: Folders

    public func mailboxes(of account: MailAccount) throws -> [MailboxInfo] {
        try ensureDefaults(account)
        return try index.mailboxes(of: account)
    }

    /// RFC 6154 folders on an account's first use: INBOX, Sent, Drafts, Trash, Junk, Archive.
    private func ensureDefaults(_ account: MailAccount) throws {
        if defaultsLock.withLock({ accountsWithDefaults.contains(account) }) { return }
        try locked(account) {
            let existing = Set(try index.mailboxes(of: account).map(\.name))
            // Only on first use: a folder the user deleted since stays deleted.
            if existing.subtracting([DefaultMailboxes.inbox]).isEmpty {
                for (name, specialUse) in DefaultMailboxes.all where !existing.contains(name) {
                    try makeFolder(name, specialUse: specialUse, of: account)
                }
            }
        }
        defaultsLock.withLock { _ = accountsWithDefaults.insert(account) }
    }

    @discardableResult
    private func makeFolder(_ name: String, specialUse: SpecialUse?, of account: MailAccount) throws -> MailboxInfo {
        let directory = layout.directory(of: name, in: account)
        try Self.makeMaildir(directory, isFolder: name != DefaultMailboxes.inbox)
        do {
            return try index.createMailbox(
                name, specialUse: specialUse, uidValidity: SQLiteMailIndex.newUIDValidity(), of: account)
        } catch let error as MailboxStoreError {
            throw error
        } catch {
            throw storageError("cannot index folder \(name)", error)
        }
    }

    public func createMailbox(_ name: String, of account: MailAccount) throws -> MailboxInfo {
        var name = MaildirLayout.canonical(name)
        // RFC 3501 §6.3.3: a trailing delimiter only says the name will have children.
        while name.hasSuffix(String(MaildirLayout.delimiter)) && name.count > 1 { name.removeLast() }
        if let problem = MaildirLayout.problem(with: name) { throw MailboxStoreError.invalidName(name, reason: problem) }
        try ensureDefaults(account)
        return try locked(account) {
            let taken = try index.mailbox(named: name, of: account) != nil
            if name == DefaultMailboxes.inbox || taken { throw MailboxStoreError.mailboxExists(name) }
            let folder = try makeFolder(name, specialUse: nil, of: account)
            flush()
            return folder
        }
    }

    public func deleteMailbox(_ name: String, of account: MailAccount) throws {
        let name = MaildirLayout.canonical(name)
        if name == DefaultMailboxes.inbox { throw MailboxStoreError.cannotDelete(name, reason: "INBOX cannot be deleted") }
        try locked(account) {
            let all = try index.mailboxes(of: account)
            guard let folder = all.first(where: { $0.name == name }) else { throw MailboxStoreError.noSuchMailbox(name) }
            if all.contains(where: { $0.name.hasPrefix(name + "/") }) {
                throw MailboxStoreError.cannotDelete(name, reason: "it has child folders, delete them first")
            }
            // Out of sight first (one rename), then the rows, then the files: a crash
            // between leaves a `.DELETED.` directory recovery removes.
            let directory = layout.directory(of: name, in: account)
            let doomed = layout.accountDirectory(account) + "/" + MaildirLayout.deletingPrefix + "\(folder.id)"
            if rename(directory, doomed) != 0 && errno != ENOENT {
                throw MailboxStoreError.storage("cannot remove \(directory): \(errnoText())")
            }
            try wrapStorage("cannot remove folder \(name) from the index") { try index.deleteMailbox(id: folder.id) }
            try? FileManager.default.removeItem(atPath: doomed)
            notifier.notify(folder.id)
        }
    }

    public func renameMailbox(_ name: String, to newName: String, of account: MailAccount) throws {
        let name = MaildirLayout.canonical(name)
        var newName = MaildirLayout.canonical(newName)
        while newName.hasSuffix(String(MaildirLayout.delimiter)) && newName.count > 1 { newName.removeLast() }
        if let problem = MaildirLayout.problem(with: newName) { throw MailboxStoreError.invalidName(newName, reason: problem) }
        if newName == DefaultMailboxes.inbox { throw MailboxStoreError.mailboxExists(newName) }
        try ensureDefaults(account)
        if name == DefaultMailboxes.inbox {
            try renameInbox(to: newName, of: account)
            return
        }
        try locked(account) {
            let all = try index.mailboxes(of: account)
            guard all.contains(where: { $0.name == name }) else { throw MailboxStoreError.noSuchMailbox(name) }
            if newName.hasPrefix(name + "/") {
                throw MailboxStoreError.invalidName(newName, reason: "a folder cannot move below itself")
            }
            let moving = all.filter { $0.name == name || $0.name.hasPrefix(name + "/") }
            let renames = moving.map { ($0, newName + $0.name.dropFirst(name.count)) }
            let taken = Set(all.map(\.name))
            if let clash = renames.first(where: { taken.contains($0.1) }) { throw MailboxStoreError.mailboxExists(clash.1) }
            for (folder, target) in renames {
                let from = layout.directory(of: folder.name, in: account), to = layout.directory(of: target, in: account)
                if rename(from, to) != 0 && errno != ENOENT {
                    throw MailboxStoreError.storage("cannot rename \(from) to \(to): \(errnoText())")
                }
            }
            try wrapStorage("cannot rename folder \(name) in the index") {
                try index.renameMailboxes(renames.map { (id: $0.0.id, name: $0.1) })
            }
            flush()
            notifier.notify(moving.map(\.id))
        }
    }

    /// RFC 3501 §6.3.5: renaming INBOX moves its messages to a new folder; INBOX stays, empty.
    private func renameInbox(to newName: String, of account: MailAccount) throws {
        try locked(account) {
            if try index.mailbox(named: newName, of: account) != nil { throw MailboxStoreError.mailboxExists(newName) }
            _ = try makeFolder(newName, specialUse: nil, of: account)
        }
        let inbox = try snapshot(DefaultMailboxes.inbox, of: account).mailbox
        let uids = try index.messages(in: inbox.id).map(\.uid)
        _ = try copy(uids: uids, from: inbox.id, to: newName, move: true, of: account)
    }

    public func setSubscribed(_ name: String, _ subscribed: Bool, of account: MailAccount) throws {
        let folder = try existing(name, of: account)
        try wrapStorage("cannot change the subscription") { try index.setSubscribed(id: folder.id, subscribed) }
    }

    public func status(_ name: String, of account: MailAccount) throws -> MailboxStatus {
        journal?.settle()
        let folder = try existing(name, of: account)
        let status = try wrapStorage("cannot read the index") { try index.status(of: folder.id) }
        return MailboxStatus(
            mailbox: folder, messages: status.messages, unseen: status.unseen, deleted: status.deleted, size: status.size,
            recent: status.recent)
    }

    private func existing(_ name: String, of account: MailAccount) throws -> MailboxInfo {
        let name = MaildirLayout.canonical(name)
        try ensureDefaults(account)
        guard let folder = try wrapStorage("cannot read the index", { try index.mailbox(named: name, of: account) }) else {
            throw MailboxStoreError.noSuchMailbox(name)
        }
        return folder
    }

    /// Folder `id` and those of `uids` it holds; `.mailboxGone` when the folder is.
    private func existingMessages(_ uids: [UInt32], in id: Int64, of account: MailAccount) throws -> (MailboxInfo, [IndexedMessage]) {
        guard let found = try wrapStorage("cannot read the index", { try index.messages(uids, inMailbox: id, of: account) }) else {
            throw MailboxStoreError.mailboxGone
        }
        return found
    }

    private func existing(id: Int64, of account: MailAccount) throws -> MailboxInfo {
        guard let folder = try wrapStorage("cannot read the index", { try index.mailbox(id: id, of: account) }) else {
            throw MailboxStoreError.mailboxGone
        }
        return folder
    }

    // MARK: Messages

    public func snapshot(_ name: String, of account: MailAccount) throws -> MailboxSnapshot {
        journal?.settle()  // mail acknowledged before this read is in it
        let name = MaildirLayout.canonical(name)
        try ensureDefaults(account)
        guard let (folder, messages) = try wrapStorage("cannot read the index", { try index.contents(ofMailboxNamed: name, of: account) })
        else { throw MailboxStoreError.noSuchMailbox(name) }
        return MailboxSnapshot(
            mailbox: folder, messages: messages.map(\.record), unclaimedRecent: messages.count { $0.file.hasPrefix("new/") })
    }

    public func changes(in mailboxID: Int64, of account: MailAccount, since modSeq: UInt64) throws -> MailboxChanges {
        journal?.settle()
        guard let changes = try wrapStorage("cannot read the index", { try index.changes(inMailbox: mailboxID, of: account, since: modSeq) })
        else { throw MailboxStoreError.mailboxGone }
        return MailboxChanges(mailbox: changes.mailbox, changed: changes.changed, expunged: changes.expunged)
    }

    public func append(
        _ body: MessageBody, to name: String, flags: MessageFlags, internalDate: Double?, of account: MailAccount
    ) throws -> (uidValidity: UInt32, uid: UInt32) {
        let folder = try existing(name, of: account)
        let directory = layout.directory(of: folder.name, in: account)
        let written = try writeTemporary(body, in: directory)
        var linked: String?
        defer {
            unlink(written.path)
            if let linked { unlink(linked) }
        }
        return try locked(account) {
            try checkQuota(account, adding: written.crlfSize)
            let file = MaildirFileName.curPath(base: written.base, flags: flags)
            guard link(written.path, directory + "/" + file) == 0 else {
                throw MailboxStoreError.storage("cannot store into \(directory)/cur: \(errnoText())")
            }
            linked = directory + "/" + file
            let date = internalDate ?? Date().timeIntervalSince1970
            let uids = try wrapStorage("cannot index the message") {
                try index.insert([NewIndexedMessage(file: file, flags: flags, internalDate: date, size: written.crlfSize)], into: folder.id)
            }
            linked = nil
            flush()
            notifier.notify(folder.id)
            return (folder.uidValidity, uids[0])
        }
    }

    public func storeFlags(
        _ change: FlagChange, uids: [UInt32], in mailboxID: Int64, of account: MailAccount, unchangedSince: UInt64?
    ) throws -> FlagStoreResult {
        try locked(account) {
            let (folder, messages) = try existingMessages(uids, in: mailboxID, of: account)
            let directory = layout.directory(of: folder.name, in: account)
            var modified: [UInt32] = []
            var unchanged: [MessageRecord] = []
            var updates: [(uid: UInt32, flags: MessageFlags, file: String)] = []
            for message in messages {
                if let unchangedSince, message.record.modSeq > unchangedSince {
                    modified.append(message.uid)
                    continue
                }
                var flags = change.applied(to: message.record.flags)
                var file = message.file
                if access(directory + "/" + file, F_OK) != 0, let found = locate(message.file, in: directory) {
                    // Renamed by another program (mutt): the flags it gave the file are the
                    // ones this change applies to.
                    let onDisk = MessageFlags.system(fromMaildirInfo: MaildirFileName(Self.lastComponent(found)).info ?? "")
                    flags = change.applied(to: MessageFlags(system: onDisk, keywords: message.record.flags.keywords))
                    file = found
                }
                if flags == message.record.flags && file == message.file {
                    unchanged.append(message.record)
                    continue
                }
                if flags.system != message.record.flags.system || file.hasPrefix("new/") || file != message.file {
                    let target = MaildirFileName.curPath(base: MaildirFileName(Self.lastComponent(file)).base, flags: flags)
                    if rename(directory + "/" + file, directory + "/" + target) == 0 {
                        file = target
                    } else if let found = locate(message.file, in: directory) {
                        // Moved by another program (mutt, a second server): follow it.
                        file = rename(directory + "/" + found, directory + "/" + target) == 0 ? target : found
                    } else {
                        continue  // expunged under us
                    }
                }
                updates.append((message.uid, flags, file))
            }
            let updated = try wrapStorage("cannot update flags") { try index.update(updates, in: mailboxID) }
            if !updated.isEmpty { notifier.notify(mailboxID) }
            return FlagStoreResult(updated: (updated + unchanged).sorted { $0.uid < $1.uid }, modified: modified)
        }
    }

    public func copy(
        uids: [UInt32], from mailboxID: Int64, to name: String, move: Bool, of account: MailAccount
    ) throws -> CopyResult {
        let destination = try existing(name, of: account)
        if move && !uids.isEmpty { try checkpointJournal() }
        return try locked(account) {
            let (source, messages) = try existingMessages(uids, in: mailboxID, of: account)
            let sourceDirectory = layout.directory(of: source.name, in: account)
            let destinationDirectory = layout.directory(of: destination.name, in: account)
            if !move || source.id == destination.id {
                try checkQuota(account, adding: messages.reduce(0) { $0 + $1.record.size })
            }
            var copies: [(source: UInt32, copy: NewIndexedMessage)] = []
            var placed: [(from: String, to: String)] = []
            for message in messages {
                var from = sourceDirectory + "/" + message.file
                if access(from, F_OK) != 0 {
                    guard let found = locate(message.file, in: sourceDirectory) else { continue }
                    from = sourceDirectory + "/" + found
                }
                let old = MaildirFileName(Self.lastComponent(message.file))
                let base = names.next(fileSize: old.fileSize ?? fileSize(from), crlfSize: message.record.size)
                let file = MaildirFileName.curPath(base: base, flags: message.record.flags)
                let to = destinationDirectory + "/" + file
                let moved = move && source.id != destination.id
                guard (moved ? rename(from, to) : link(from, to)) == 0 else {
                    let reason = errnoText()
                    undo(placed, moved: moved)
                    throw MailboxStoreError.storage("cannot \(moved ? "move" : "copy") into \(destinationDirectory): \(reason)")
                }
                placed.append((from, to))
                copies.append((message.uid, NewIndexedMessage(
                    file: file, flags: message.record.flags, internalDate: message.record.internalDate, size: message.record.size)))
            }
            let moved = move && source.id != destination.id
            let newUIDs: [UInt32]
            do {
                newUIDs = try index.transfer(copies, from: mailboxID, to: destination.id, removeFromSource: move)
            } catch {
                undo(placed, moved: moved)
                throw storageError("cannot index the copies", error)
            }
            if move && source.id == destination.id {
                // MOVE into the same folder: the copies are in, the originals go.
                for (from, _) in placed { unlink(from) }
            }
            flush()
            notifier.notify([mailboxID, destination.id])
            return CopyResult(
                uidValidity: destination.uidValidity, uids: zip(copies, newUIDs).map { (source: $0.0.source, destination: $0.1) })
        }
    }

    private func undo(_ placed: [(from: String, to: String)], moved: Bool) {
        for (from, to) in placed {
            if moved { rename(to, from) } else { unlink(to) }
        }
    }

    public func expunge(uids: [UInt32], in mailboxID: Int64, of account: MailAccount) throws -> [UInt32] {
        if !uids.isEmpty { try checkpointJournal() }
        return try locked(account) {
            let (folder, messages) = try existingMessages(uids, in: mailboxID, of: account)
            let directory = layout.directory(of: folder.name, in: account)
            for message in messages {
                if unlink(directory + "/" + message.file) != 0, let found = locate(message.file, in: directory) {
                    unlink(directory + "/" + found)
                }
            }
            let removed = try wrapStorage("cannot update the index") { try index.remove(uids: messages.map(\.uid), from: mailboxID) }
            if !removed.isEmpty { notifier.notify(mailboxID) }
            return removed
        }
    }

    public func messagePaths(uids: [UInt32], in mailboxID: Int64, of account: MailAccount) throws -> [UInt32: String] {
        let (folder, messages) = try existingMessages(uids, in: mailboxID, of: account)
        let directory = layout.directory(of: folder.name, in: account)
        var paths: [UInt32: String] = [:]
        var moved: [(uid: UInt32, file: String)] = []
        var vanished: [IndexedMessage] = []
        for message in messages {
            if access(directory + "/" + message.file, F_OK) == 0 {
                paths[message.uid] = directory + "/" + message.file
            } else if let found = locate(message.file, in: directory) {
                moved.append((message.uid, found))
                paths[message.uid] = directory + "/" + found
            } else {
                vanished.append(message)
            }
        }
        if !moved.isEmpty { try? index.relocate(moved, in: mailboxID) }
        if !vanished.isEmpty { try expungeVanished(vanished, from: folder, in: directory, of: account) }
        return paths
    }

    /// Messages deleted by another program: expunged, so that every session hears EXPUNGE
    /// instead of failing to fetch a message that stays listed.
    private func expungeVanished(_ messages: [IndexedMessage], from folder: MailboxInfo, in directory: String, of account: MailAccount) throws {
        try locked(account) {
            let gone = messages.filter { access(directory + "/" + $0.file, F_OK) != 0 && locate($0.file, in: directory) == nil }
            guard !gone.isEmpty else { return }
            let removed = try wrapStorage("cannot update the index") { try index.remove(uids: gone.map(\.uid), from: folder.id) }
            if !removed.isEmpty {
                let uids = removed.prefix(20).map(String.init).joined(separator: ",") + (removed.count > 20 ? ",…" : "")
                logger.notice("\(removed.count) message(s) (UID \(uids)) of \(account)'s \(folder.name) vanished from the Maildir; expunged")
                notifier.notify(folder.id)
            }
        }
    }

    public func quota(of account: MailAccount) throws -> QuotaUsage {
        let usage = try wrapStorage("cannot read the index") { try index.usage(of: account) }
        return QuotaUsage(usedBytes: usage.bytes, messages: usage.messages, limitBytes: quotaLimit(account))
    }

    /// `.overQuota` if `adding` more octets would take the account past its quota.
    public func checkQuota(_ account: MailAccount, adding: Int) throws {
        guard let limit = quotaLimit(account) else { return }
        let used = try wrapStorage("cannot read the index") { try index.usage(of: account).bytes }
        if used + adding > limit { throw MailboxStoreError.overQuota }
    }

    public func observe(_ mailboxID: Int64, of account: MailAccount, onChange: @escaping @Sendable () -> Void) -> any MailboxObservation {
        notifier.observe(mailboxID, onChange: onChange)
    }

    public func lockMaildrop(of account: MailAccount) -> (any MailboxObservation)? {
        maildrops.acquire(account)
    }

    /// Messages still in `new/` move to `cur/` (with an empty `:2,` info, as Dovecot and
    /// mutt do when they first see a message): this session saw them first.
    public func claimRecent(in mailboxID: Int64, of account: MailAccount) throws -> [UInt32] {
        try locked(account) {
            let folder = try existing(id: mailboxID, of: account)
            let directory = layout.directory(of: folder.name, in: account)
            let fresh = try wrapStorage("cannot read the index") { try index.unclaimedMessages(in: mailboxID) }
            var claimed: [(uid: UInt32, file: String)] = []
            for message in fresh {
                let target = MaildirFileName.curPath(base: MaildirFileName(Self.lastComponent(message.file)).base, flags: message.record.flags)
                if rename(directory + "/" + message.file, directory + "/" + target) == 0 { claimed.append((message.uid, target)) }
            }
            try wrapStorage("cannot update the index") { try index.relocate(claimed, in: mailboxID) }
            return claimed.map(\.uid)
        }
    }

    // MARK: Files

    private struct Temporary {
        var path: String
        var base: String
        var crlfSize: Int
    }

    /// The body in `tmp/` under its final unique base name: a spool file (already LF) is
    /// linked, bytes are written with CRLF turned into LF (the Maildir convention, as SMTP
    /// delivery stores them), and the file's data flushed.
    private func writeTemporary(_ body: MessageBody, in directory: String) throws -> Temporary {
        switch body {
        case .file(let spool, let size):
            let crlf = try Self.crlfSize(ofFile: spool)
            let base = names.next(fileSize: size, crlfSize: crlf)
            let path = "\(directory)/tmp/\(base)"
            guard link(spool, path) == 0 else { throw MailboxStoreError.storage("cannot store into \(directory)/tmp: \(errnoText())") }
            return Temporary(path: path, base: base, crlfSize: crlf)
        case .bytes(let bytes):
            let lf = LineEnds.toLF(bytes)
            let crlfSize = LineEnds.crlfCount(lf)
            let base = names.next(fileSize: lf.count, crlfSize: crlfSize)
            let path = "\(directory)/tmp/\(base)"
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw MailboxStoreError.storage("cannot create \(path): \(errnoText())") }
            defer { close(fd) }
            if let failure = FileDescriptorIO.writeAll(fd, lf) {
                unlink(path)
                throw MailboxStoreError.storage("cannot write \(path): \(errnoText(failure))")
            }
            return Temporary(path: path, base: base, crlfSize: crlfSize)
        }
    }

    /// RFC822.SIZE of a file: its octets with every bare LF counted as CRLF.
    static func crlfSize(ofFile path: String) throws -> Int {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw MailboxStoreError.storage("cannot open \(path): \(errnoText())") }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var counter = LineEnds.CRLFCounter()
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw MailboxStoreError.storage("cannot read \(path): \(errnoText())") }
            if n == 0 { break }
            buffer.withUnsafeBytes { counter.add(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        return counter.count
    }

    private func fileSize(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : 0
    }

    /// Finds a message file another rename moved: same base name, any flags, in cur/ or new/.
    private func locate(_ file: String, in directory: String) -> String? {
        let base = MaildirFileName(Self.lastComponent(file)).base
        for sub in ["cur", "new"] {
            guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory + "/" + sub) else { continue }
            if let match = entries.first(where: { MaildirFileName($0).base == base }) { return sub + "/" + match }
        }
        return nil
    }

    static func lastComponent(_ file: String) -> String {
        file.lastIndex(of: "/").map { String(file[file.index(after: $0)...]) } ?? file
    }

    static func makeMaildir(_ directory: String, isFolder: Bool) throws {
        for sub in ["tmp", "new", "cur"] {
            do {
                try FileManager.default.createDirectory(
                    atPath: "\(directory)/\(sub)", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw MailboxStoreError.storage("cannot create \(directory)/\(sub): \(error.localizedDescription)")
            }
        }
        // Maildir++: a subfolder says so, for Courier and Dovecot.
        if isFolder { _ = FileManager.default.createFile(atPath: directory + "/maildirfolder", contents: nil) }
    }

    /// Before a message is expunged or moved (a move gives it a new file name): the
    /// journal's messages are made durable where they are and dropped from it, so a replay
    /// cannot bring back one the user removed. When it fails, nothing is removed or moved.
    private func checkpointJournal() throws {
        do {
            try journal?.checkpoint()
        } catch {
            logger.error("delivery journal checkpoint failed; messages are not removed or moved meanwhile: \(error)")
            throw MailboxStoreError.storage("cannot make delivered mail durable before removing or moving messages: \(error)")
        }
    }

    /// One `syncfs` for the change: files, renames and the index's WAL reach the disk
    /// together before the client hears OK.
    private func flush() {
        if cberth_syncfs(rootFD) != 0 { logger.error("cannot flush the data directory: \(errnoText())") }
    }

    private func storageError(_ what: String, _ error: any Error) -> MailboxStoreError {
        if let error = error as? MailboxStoreError { return error }
        logger.error("\(what): \(error)")
        return .storage(what)
    }

    private func wrapStorage<T>(_ what: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw storageError(what, error)
        }
    }
}
