import BerthCore
import CBerthSystem
import Foundation
import GRDB
import Logging

#if canImport(Glibc)
import Glibc
#endif

public struct DeliveryError: Error, CustomStringConvertible {
    public var description: String
}

/// Maildir delivery with group commit: messages that arrive together share one flush, and
/// only after it is the SMTP client told `250`.
///
/// A batch of small local messages is written to the delivery journal and flushed with one
/// `fdatasync` (`DeliveryJournal`); the replies go, and then each message is written to
/// `tmp/`, renamed into `new/` and indexed on the applier (a checkpoint or a mailbox read
/// waits for that), while the writer goes on with the next batch. The applier takes the
/// batches of a few milliseconds together: one wake-up and one index transaction for all.
/// Any other batch is written that way first (a queue file into `queue/new/`, with queue
/// rows), made durable with one `syncfs(2)` of the data directory, and then acknowledged.
public final class MailStore: @unchecked Sendable {
    public typealias Completion = @Sendable (Result<String, any Error>) -> Void

    public let mailRoot: String
    public let queueRoot: String
    /// Message bodies being received (MessageSpool); on the same filesystem as the
    /// mailboxes, so that delivery is a hard link, not a copy.
    public let spoolRoot: String
    private let store: ConfigStore
    private let names: MaildirNames
    private let logger: Logger
    /// Told of every INBOX that received mail, after the flush (IDLE, NOOP).
    public let notifier: MailboxNotifier
    private let condition = NSCondition()
    private var pending: [(InboundMessage, Completion)] = []
    private var stopping = false
    private var writer: Thread?
    /// Writes the files and rows of journaled batches after their acknowledgement, in order.
    private let applier: IdleWorker<Acknowledged>
    /// How long an acknowledged batch waits for others to be applied with it, unless a
    /// mailbox read or a checkpoint waits for it; IMAP IDLE hears of new mail this late.
    /// Measured with smtp-source on loopback, two servers side by side in alternating
    /// runs: +7% messages/s for one session and +8% for twenty against applying each batch
    /// at once (+24% for one on tmpfs); 2 ms did worse, 10 ms no better.
    static let applyGatherDelay: TimeInterval = 0.005
    private let finished = DispatchSemaphore(value: 0)
    private var createdDirectories: Set<String> = []
    private let rootFD: Int32
    /// Where small local deliveries are made durable; checkpointed by the writer, and by the
    /// mailbox store before it removes or moves messages.
    public let journal: DeliveryJournal
    /// Told (on the writer thread, after the commit) of messages just queued for other servers.
    public var onQueued: (@Sendable ([QueueEntry]) -> Void)?

    public init(
        dataDirectory: String, store: ConfigStore, hostname: String, notifier: MailboxNotifier = MailboxNotifier(),
        journalCapacity: Int = DeliveryJournal.defaultCapacity,
        journalCheckpointInterval: TimeInterval = DeliveryJournal.defaultCheckpointInterval, logger: Logger
    ) throws {
        mailRoot = dataDirectory + "/mail"
        queueRoot = dataDirectory + "/queue"
        spoolRoot = dataDirectory + "/spool"
        self.store = store
        self.names = MaildirNames(hostname: hostname)
        self.notifier = notifier
        self.logger = logger
        for directory in [mailRoot, queueRoot, spoolRoot] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        // Bodies of sessions a crash cut short were never acknowledged: nothing to keep.
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: spoolRoot)) ?? []
        for name in leftovers { unlink("\(spoolRoot)/\(name)") }
        if !leftovers.isEmpty { logger.notice("removed \(leftovers.count) unfinished message bodies from \(spoolRoot)") }
        rootFD = open(dataDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else { throw DeliveryError(description: "cannot open \(dataDirectory): \(errnoText())") }
        // `recover` has replayed what the journal held; it starts empty.
        let applier = IdleWorker<Acknowledged>(name: "berth-maildir-applier", gatherDelay: Self.applyGatherDelay, logger: logger)
        self.applier = applier
        journal = try DeliveryJournal(
            path: Self.journalPath(dataDirectory), syncDirectory: dataDirectory, capacity: journalCapacity,
            checkpointInterval: journalCheckpointInterval, logger: logger, waitingForApplies: { applier.boost() })
    }

    static func journalPath(_ dataDirectory: String) -> String { dataDirectory + "/journal" }

    deinit { close(rootFD) }

    public func start() {
        applier.start { [unowned self] group in self.apply(group) }
        let thread = Thread { [self] in self.writerLoop() }
        thread.name = "berth-maildir-writer"
        writer = thread
        thread.start()
    }

    /// Stops after every message already handed over has been written and the journal
    /// checkpointed; returns when the writer is done (at most `timeout` later).
    public func stop(timeout: TimeInterval = 30) {
        let first = condition.withLock { () -> Bool in
            defer {
                stopping = true
                condition.signal()
            }
            return !stopping
        }
        if first, writer != nil, finished.wait(timeout: .now() + timeout) == .timedOut {
            logger.error("the Maildir writer did not finish within \(Int(timeout)) s of the stop")
        }
        if first { applier.stop(timeout: timeout) }  // drained: the writer's last checkpoint waited for it
    }

    /// Stores `message`; `completion` runs on the writer thread once it is durable (with
    /// the queue id) or has failed (nothing of it left behind).
    public func deliver(_ message: InboundMessage, completion: @escaping Completion) {
        condition.withLock {
            if stopping {
                completion(.failure(DeliveryError(description: "server is shutting down")))
                return
            }
            pending.append((message, completion))
            condition.signal()
        }
    }

    private func writerLoop() {
        defer { finished.signal() }
        while true {
            let batch: [(InboundMessage, Completion)] = condition.withLock {
                while pending.isEmpty && !stopping {
                    // Idle with journaled messages: checkpoint them when their second is up.
                    guard let deadline = journal.checkpointDeadline else {
                        condition.wait()
                        continue
                    }
                    if !condition.wait(until: deadline) { break }
                }
                defer { pending.removeAll(keepingCapacity: true) }
                return pending
            }
            if !batch.isEmpty { commit(batch) }
            if batch.isEmpty || journal.checkpointDue() { checkpointJournal() }
            if batch.isEmpty && condition.withLock({ stopping && pending.isEmpty }) { return }  // stopping and drained
        }
    }

    private func checkpointJournal() {
        do {
            try journal.checkpoint()
        } catch {
            logger.error("delivery journal checkpoint failed: \(error)")
        }
    }

    private struct Written {
        var job: Int
        var tmpPath: String
        var newPath: String
        var newDirectory: String
        var account: MailAccount?
        var size: Int
        /// RFC822.SIZE: the LF file served with CRLF.
        var crlfSize: Int
        var recipients: [String]
    }

    /// A journaled batch, acknowledged: its files and rows are the applier's to write.
    private struct Acknowledged {
        var written: [Written]
        var messages: [InboundMessage]
        var now: Date
        var record: UInt64
    }

    private func commit(_ batch: [(InboundMessage, Completion)]) {
        let now = Date()
        var (written, failures) = plan(batch, at: now)
        if let entries = journalEntries(batch, written), let record = journal.append(entries, now: now) {
            // Durable: the replies go first. The files and rows follow on the applier, while
            // this thread takes the next batch; checkpoints and mailbox reads wait for them.
            complete(batch, failures)
            applier.submit(Acknowledged(written: written, messages: batch.map(\.0), now: now, record: record))
            removeSpoolFiles(batch)  // of messages that failed
            return
        }
        // Not journaled: files, renames and rows first, then one syncfs, then the replies.
        var queued: [QueueEntry] = []
        do {
            failures.merge(try materialize(written, batch.map(\.0), eachOnItsOwn: true)) { $1 }
            written.removeAll { failures[$0.job] != nil }
            if !written.isEmpty {
                var indexed = false
                do {
                    try moveIntoNew(written)
                    let inboxes: Set<Int64>
                    (queued, inboxes) = try index([(written, batch.map(\.0), now)])
                    indexed = true
                    try flush()
                    notifier.notify(inboxes)
                } catch {
                    if indexed { unindex(written) }
                    throw error
                }
            }
        } catch {
            logger.error("maildir commit failed: \(error)")
            for file in written {
                unlink(file.tmpPath)
                unlink(file.newPath)
                failures[file.job] = error
            }
            // A record whose write failed half-way must not bring back a refused message.
            checkpointJournal()
            queued = []
        }
        removeSpoolFiles(batch)
        if !queued.isEmpty { onQueued?(queued) }
        complete(batch, failures)
    }

    /// The applier's part of journaled batches: their files (at idle priority), then the rows
    /// of all of them in one transaction. What cannot be placed stays in the journal, which
    /// then keeps every record until the next start writes them back.
    private func apply(_ group: [Acknowledged]) {
        var placed: [Acknowledged] = []
        var unplaced: [(Acknowledged, any Error)] = []
        placed.reserveCapacity(group.count)  // no allocation (malloc's locks) in the idle section
        unplaced.reserveCapacity(group.count)
        // File system calls only: the rest holds locks session threads take.
        applier.whileIdle {
            for batch in group {
                do {
                    try materialize(batch.written, batch.messages)
                    try moveIntoNew(batch.written)
                    placed.append(batch)
                } catch {
                    unplaced.append((batch, error))
                }
            }
        }
        var inboxes: Set<Int64> = []
        do {
            if !placed.isEmpty { inboxes = try index(placed.map { ($0.written, $0.messages, $0.now) }).inboxes }
        } catch {
            unplaced += placed.map { ($0, error) }
        }
        for (batch, error) in unplaced {
            let names = Set(batch.written.map { ($0.newPath as NSString).lastPathComponent }).sorted().joined(separator: ", ")
            logger.error("acknowledged messages are held in the delivery journal until the next start, which restores them: cannot place them in their mailboxes: \(error)", metadata: ["messages": .string(names)])
        }
        if !unplaced.isEmpty { journal.retainForRecovery() }
        notifier.notify(inboxes)
        if let last = group.last { journal.applied(through: last.record) }  // last: a stop's checkpoint waits for it
    }

    /// Spooled bodies are hard-linked into place by now (or failed): the spool's name goes.
    private func removeSpoolFiles(_ batch: [(InboundMessage, Completion)]) {
        for (message, _) in batch {
            if case .file(let spool, _) = message.body { unlink(spool) }
        }
    }

    /// Where each message goes: one `Written` per mailbox (and one for the queue), its
    /// Maildir directories made; nothing written yet. A message that cannot be placed fails.
    private func plan(_ batch: [(InboundMessage, Completion)], at now: Date) -> ([Written], [Int: any Error]) {
        var written: [Written] = []
        var failures: [Int: any Error] = [:]
        for (index, (message, _)) in batch.enumerated() {
            var mine: [Written] = []
            do {
                let crlfSize = try Self.crlfSize(of: message.body)
                let name = names.next(fileSize: message.body.size, crlfSize: crlfSize, now: now)
                for (address, recipientClass) in message.recipients {
                    let box: String
                    var account: MailAccount?
                    switch recipientClass {
                    case .local(let d, let u):
                        box = "\(mailRoot)/\(d)/\(u)"
                        account = MailAccount(domain: d, user: u)
                    case .remote:
                        box = queueRoot
                    case .unknownLocalUser, .mailboxFull:
                        continue
                    }
                    if let existing = mine.firstIndex(where: { $0.tmpPath.hasPrefix(box + "/") }) {
                        mine[existing].recipients.append(address)
                        continue
                    }
                    try ensureMaildir(box)
                    mine.append(Written(
                        job: index, tmpPath: "\(box)/tmp/\(name)", newPath: "\(box)/new/\(name)", newDirectory: "\(box)/new",
                        account: account, size: message.body.size, crlfSize: crlfSize, recipients: [address]))
                }
                written += mine
            } catch {
                logger.error("delivery failed", metadata: ["queue": .string(message.queueID), "error": "\(error)"])
                failures[index] = error
            }
        }
        return (written, failures)
    }

    /// Writes each message's files into `tmp/`: the first from its body, the others hard
    /// links to it (one inode per message). `eachOnItsOwn`: a message that fails is taken
    /// back and reported, the others go on; otherwise the first failure ends it.
    @discardableResult
    private func materialize(
        _ written: [Written], _ messages: [InboundMessage], eachOnItsOwn: Bool = false
    ) throws -> [Int: any Error] {
        var failures: [Int: any Error] = [:]
        var start = written.startIndex
        while start < written.endIndex {
            let job = written[start].job
            let end = written[start...].firstIndex { $0.job != job } ?? written.endIndex
            let files = written[start..<end]
            do {
                try materialize(messages[job].body, at: files[start].tmpPath)
                for file in files.dropFirst() { try link(files[start].tmpPath, file.tmpPath) }
            } catch {
                guard eachOnItsOwn else { throw error }
                logger.error("delivery failed", metadata: ["queue": .string(messages[job].queueID), "error": "\(error)"])
                for file in files { unlink(file.tmpPath) }
                failures[job] = error
            }
            start = end
        }
        return failures
    }

    private func moveIntoNew(_ written: [Written]) throws {
        for file in written where rename(file.tmpPath, file.newPath) != 0 {
            throw DeliveryError(description: "cannot rename into \(file.newDirectory): \(errnoText())")
        }
    }

    private func complete(_ batch: [(InboundMessage, Completion)], _ failures: [Int: any Error]) {
        for (index, (message, completion)) in batch.enumerated() {
            if let failure = failures[index] {
                completion(.failure(failure))
            } else {
                completion(.success(message.queueID))
            }
        }
    }

    private func link(_ from: String, _ to: String) throws {
        guard Glibc.link(from, to) == 0 else { throw DeliveryError(description: "cannot link \(to): \(errnoText())") }
    }

    /// The message's first file: the spool file linked in, or the in-memory body written.
    private func materialize(_ body: MessageBody, at tmpPath: String) throws {
        switch body {
        case .file(let spool, _):
            try link(spool, tmpPath)
        case .bytes(let bytes):
            let fd = open(tmpPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw DeliveryError(description: "cannot create \(tmpPath): \(errnoText())") }
            if let failure = FileDescriptorIO.writeAll(fd, bytes) {
                close(fd)
                unlink(tmpPath)
                throw DeliveryError(description: "cannot write \(tmpPath): \(errnoText(failure))")
            }
            close(fd)
        }
    }

    /// RFC822.SIZE of a body the spool stored with LF line ends.
    static func crlfSize(of body: MessageBody) throws -> Int {
        switch body {
        case .bytes(let bytes): return LineEnds.crlfCount(bytes)
        case .file(let path, _): return try MaildirMailboxStore.crlfSize(ofFile: path)
        }
    }

    /// One flush for the whole batch (syncfs(2)): the files' data, their renames into
    /// `new/` and the index rows in SQLite's WAL (written with synchronous=NORMAL) reach the
    /// disk together, so a lone message costs one journal commit, not one per file,
    /// directory and database. Nothing is acknowledged before this returns. A crash before
    /// it leaves at worst a renamed file whose data never arrived: its size is short of the
    /// `S=` in its name, and recovery removes it (it was never acknowledged).
    private func flush() throws {
        guard cberth_syncfs(rootFD) == 0 else {
            // Linux reports writeback errors (EIO) here: nothing of the batch is known to
            // be on disk, so none of it is acknowledged.
            throw DeliveryError(description: "cannot flush the data directory: \(errnoText())")
        }
    }

    /// The journal's record for a batch in which every message is small, held in memory
    /// and for local mailboxes only (a queued message's envelope lives in the database,
    /// which only `syncfs` makes durable); nil: use `flush`.
    private func journalEntries(_ batch: [(InboundMessage, Completion)], _ written: [Written]) -> [DeliveryJournal.Entry]? {
        var entries: [DeliveryJournal.Entry] = []
        for (job, (message, _)) in batch.enumerated() {
            let files = written.filter { $0.job == job }
            guard let first = files.first else { continue }  // failed or no mailbox: nothing of it stays
            guard case .bytes(let body) = message.body, body.count <= DeliveryJournal.maxBodySize,
                  files.allSatisfy({ $0.account != nil })
            else { return nil }
            entries.append(DeliveryJournal.Entry(
                name: (first.newPath as NSString).lastPathComponent, accounts: files.compactMap(\.account), body: body))
        }
        return entries.isEmpty ? nil : entries
    }

    /// Takes back the rows of a batch whose flush failed (the clients get 4xx).
    private func unindex(_ files: [Written]) {
        do {
            try store.database.write { db in
                for file in files {
                    if let account = file.account {
                        try db.execute(
                            sql: "DELETE FROM mail WHERE file = ? AND mailbox = (SELECT id FROM mailbox WHERE domain = ? AND user = ? AND name = 'INBOX')",
                            arguments: ["new/" + (file.newPath as NSString).lastPathComponent, account.domain, account.user])
                    }
                    try db.execute(sql: "DELETE FROM queue WHERE path = ?", arguments: [file.newPath])
                }
            }
        } catch {
            logger.error("cannot remove the rows of a failed batch (recovery drops them at the next start): \(error)")
        }
    }

    /// Index rows (a UID in the account's INBOX) for local mail, queue rows for the rest,
    /// in one transaction; returns what was queued, for the queue runner once it is
    /// durable, and the INBOXes that changed.
    private func index(
        _ batches: [(written: [Written], messages: [InboundMessage], now: Date)]
    ) throws -> (queued: [QueueEntry], inboxes: Set<Int64>) {
        try store.database.write { db in
            var entries: [QueueEntry] = []
            var inboxes: Set<Int64> = []
            for (files, messages, now) in batches {
                for file in files {
                    if let account = file.account {
                        let message = NewIndexedMessage(
                            file: "new/" + (file.newPath as NSString).lastPathComponent, flags: .none,
                            internalDate: now.timeIntervalSince1970, size: file.crlfSize)
                        inboxes.insert(try SQLiteMailIndex.insertDelivered(message, for: account, db))
                    } else {
                        entries.append(try Self.enqueue(file, message: messages[file.job], at: now, db))
                    }
                }
            }
            return (entries, inboxes)
        }
    }

    private static func enqueue(_ file: Written, message: InboundMessage, at now: Date, _ db: Database) throws -> QueueEntry {
        let recipients = String(decoding: try JSONEncoder().encode(file.recipients), as: UTF8.self)
        try db.cachedStatement(
            sql: "INSERT INTO queue(queueID, path, sender, recipients, size, authUser, receivedAt) VALUES (?, ?, ?, ?, ?, ?, ?)"
        ).execute(
            arguments: [message.queueID, file.newPath, message.sender, recipients, file.size, message.authenticatedUser,
                        now.timeIntervalSince1970])
        let row = db.lastInsertedRowID
        var entry = QueueEntry(
            row: row, queueID: message.queueID, path: file.newPath, sender: message.sender, size: file.size,
            receivedAt: now, recipients: [])
        for address in file.recipients {
            try db.cachedStatement(sql: "INSERT INTO queueRecipient(queue, address, nextAttemptAt) VALUES (?, ?, ?)")
                .execute(arguments: [row, address, now.timeIntervalSince1970])
            entry.recipients.append(QueueRecipient(row: db.lastInsertedRowID, address: address, nextAttemptAt: now))
        }
        return entry
    }

    private func ensureMaildir(_ box: String) throws {
        if createdDirectories.contains(box) { return }
        for sub in ["tmp", "new", "cur"] {
            try FileManager.default.createDirectory(
                atPath: "\(box)/\(sub)", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        createdDirectories.insert(box)
    }
}

func errnoText(_ code: Int32 = errno) -> String {
    String(cString: strerror(code)).lowercased()
}

// MARK: Start-up recovery

/// What `MailStore.recover` found and did, file by file.
public struct RecoveryReport: Sendable, Hashable {
    /// Unfinished deliveries removed from `tmp/` (never acknowledged to a client).
    public var removedTemporary: [String] = []
    /// Messages in a Maildir with no index row (renamed into `new/` just before a crash),
    /// now indexed.
    public var indexed: [String] = []
    /// Index rows whose file no longer exists, removed.
    public var droppedRows: [String] = []
    /// Queue files with no queue row: their envelope was never committed, so they cannot
    /// be sent; left in place for the admin.
    public var orphanedQueueFiles: [String] = []
    /// Files in `new/`/`cur/` shorter than the `S=` of their name: renamed, but the crash
    /// came before the batch's flush, so their data never arrived (never acknowledged).
    public var removedTruncated: [String] = []
    /// Messages acknowledged through the delivery journal whose file a crash lost or left
    /// short, written back from it.
    public var restoredFromJournal: [String] = []

    public init() {}

    public var isEmpty: Bool {
        removedTemporary.isEmpty && indexed.isEmpty && droppedRows.isEmpty && orphanedQueueFiles.isEmpty
            && removedTruncated.isEmpty && restoredFromJournal.isEmpty
    }
}

extension MailStore {
    /// Maildir's rule for abandoned `tmp/` files (cr.yp.to/proto/maildir.html): 36 hours.
    public static let staleTemporaryAge: TimeInterval = 36 * 3600

    /// Brings the Maildir and the index back together after a crash (`kill -9`, power
    /// loss), before the writer starts: `tmp/` leftovers are removed, a message in `new/`
    /// or `cur/` without its index row is indexed, an index row whose file is gone is
    /// dropped. Logs what it did.
    ///
    /// A `tmp/` file is only removed when the process that wrote it (the `P` part of its
    /// Maildir name) is gone or is this one, or it is older than 36 hours, so a second
    /// server started on the same directory by mistake cannot delete a delivery in flight.
    @discardableResult
    public static func recover(dataDirectory: String, store: ConfigStore, logger: Logger, now: Date = Date()) throws -> RecoveryReport {
        let fm = FileManager.default
        let mailRoot = dataDirectory + "/mail"
        let queueRoot = dataDirectory + "/queue"
        var report = RecoveryReport()

        func files(in directory: String) -> [String] {
            ((try? fm.contentsOfDirectory(atPath: directory)) ?? []).sorted().filter { !$0.hasPrefix(".") }.map { directory + "/" + $0 }
                .filter { path in
                    var isDirectory: ObjCBool = false
                    return fm.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
                }
        }
        func removeLeftovers(in box: String) {
            for path in files(in: box + "/tmp") where isAbandoned(path, now: now) {
                if unlink(path) == 0 {
                    report.removedTemporary.append(path)
                } else {
                    logger.warning("maildir recovery: cannot remove \(path): \(errnoText())")
                }
            }
        }

        // Every folder of every account: INBOX is mail/DOMAIN/USER/{tmp,new,cur}, the
        // others Maildir++ subfolders of it.
        let layout = MaildirLayout(mailRoot: mailRoot)
        // Messages acknowledged through the journal whose files a crash lost (or left
        // short) come back first; reconciling below indexes them.
        report.restoredFromJournal = DeliveryJournal.replay(
            journalPath: journalPath(dataDirectory), layout: layout, syncDirectory: dataDirectory, logger: logger)
        let index = SQLiteMailIndex(database: store.database)
        let accounts = try MaildirMailboxStore.accounts(layout: layout, index: index)
        let folders = accounts.flatMap { MaildirMailboxStore.folderDirectories(of: $0, layout: layout).map(\.directory) }
        for folder in folders { removeLeftovers(in: folder) }
        removeLeftovers(in: queueRoot)
        for directory in folders.flatMap({ [$0 + "/new", $0 + "/cur"] }) + [queueRoot + "/new"] {
            for path in files(in: directory) where isTruncated(path) {
                if unlink(path) == 0 { report.removedTruncated.append(path) }
            }
        }
        for account in accounts {
            let reconciled = try MaildirMailboxStore.reconcile(account, layout: layout, index: index)
            report.indexed += reconciled.indexed
            report.droppedRows += reconciled.dropped
        }

        try store.database.write { db in
            let queuedPaths = Set(try String.fetchAll(db, sql: "SELECT path FROM queue"))
            for path in files(in: queueRoot + "/new") where !queuedPaths.contains(path) {
                report.orphanedQueueFiles.append(path)
            }
            for row in try Row.fetchAll(db, sql: "SELECT id, path FROM queue") {
                let path: String = row["path"]
                if !fm.fileExists(atPath: path) {
                    try db.execute(sql: "DELETE FROM queue WHERE id = ?", arguments: [row["id"] as Int64])
                    report.droppedRows.append(path)
                }
            }
        }

        for path in report.restoredFromJournal {
            logger.notice("maildir recovery: restored \(path) from the delivery journal (acknowledged, lost by the crash)")
        }
        for path in report.removedTemporary {
            logger.notice("maildir recovery: removed unfinished delivery \(path) (never acknowledged)")
        }
        for path in report.indexed {
            logger.notice("maildir recovery: indexed \(path), which had no index row")
        }
        for path in report.droppedRows {
            logger.notice("maildir recovery: dropped the index row of \(path), whose file is gone")
        }
        for path in report.removedTruncated {
            logger.notice("maildir recovery: removed \(path), shorter than its S= size (its flush never happened; never acknowledged)")
        }
        for path in report.orphanedQueueFiles {
            logger.warning("maildir recovery: queue file \(path) has no queue entry (its envelope was never committed); left in place")
        }
        if !report.isEmpty {
            logger.notice(
                "maildir recovery: removed \(report.removedTemporary.count) unfinished file(s) from tmp/, indexed \(report.indexed.count) message(s), dropped \(report.droppedRows.count) stale index row(s), \(report.orphanedQueueFiles.count) orphaned queue file(s), removed \(report.removedTruncated.count) truncated file(s), restored \(report.restoredFromJournal.count) from the delivery journal")
        }
        return report
    }

    /// Whether a file Berth wrote is shorter than the `S=` size in its Maildir name
    /// (`…,S=1234` or `…,S=1234:2,FLAGS`). Names without `S=`, and files other programs
    /// named (a Dovecot Maildir with compressed files has `S=` larger than the file), are
    /// never called truncated: those are indexed as they are, never removed.
    static func isTruncated(_ path: String) -> Bool {
        let name = (path as NSString).lastPathComponent
        guard writerPID(ofMaildirName: name) != nil, name.contains(".M"), name.contains("Q") else { return false }
        guard let range = name.range(of: ",S=") else { return false }
        let digits = name[range.upperBound...].prefix { $0.isASCII && $0.isNumber }
        guard let expected = Int(digits),
              let actual = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int
        else { return false }
        return actual < expected
    }

    /// Whether a `tmp/` file was left by a writer that is gone (see `recover`).
    static func isAbandoned(_ path: String, now: Date) -> Bool {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        if let modified = attributes?[.modificationDate] as? Date, now.timeIntervalSince(modified) > staleTemporaryAge {
            return true
        }
        guard let pid = writerPID(ofMaildirName: (path as NSString).lastPathComponent) else { return true }
        if pid == getpid() { return true }
        return !(kill(pid, 0) == 0 || errno == EPERM)
    }

    /// The `P<pid>` part of a name `nextID` made (`1700000000.M123P4567Q8.host,S=99`).
    static func writerPID(ofMaildirName name: String) -> pid_t? {
        guard let dot = name.firstIndex(of: "."), let p = name[dot...].firstIndex(of: "P") else { return nil }
        let digits = name[name.index(after: p)...].prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let pid = pid_t(digits), pid > 0 else { return nil }
        return pid
    }
}
