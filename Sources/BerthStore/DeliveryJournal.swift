import BerthCore
import CBerthSystem
import Crypto
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A write-ahead journal that lets a small local delivery be acknowledged after one
/// `fdatasync` of a preallocated file, instead of a `syncfs` that must also commit the
/// filesystem's metadata for the new Maildir file, its rename and the index's WAL.
///
/// The `250` follows the record's flush; the Maildir files and index rows are written
/// after it (not flushed; a checkpoint or a mailbox read waits for them), and the journal
/// holds the message bytes until a checkpoint (one `syncfs`) has made them durable.
/// Checkpoints come when the journal is half full, a second after its oldest record, at
/// shutdown, and before anything removes or moves a message (so that a replay can never
/// bring back a message the user deleted or moved after a checkpoint).
/// After a crash, `replay` puts back every journaled message whose file is missing or
/// short; recovery then indexes it.
///
/// Layout: a 4 KiB header (magic, the generation's key, digest) and records from offset
/// 4096, each `magic, key tag, length, payload, MAC`. Every generation has a fresh random
/// key and each record carries an HMAC under it: a checkpoint writes a new key, so older
/// records are dead without being erased, and no bytes a client sent (a message body that
/// lands where a record is later looked for) can pass for a record. The file is written
/// full of zeros once, so an append changes no file metadata and `fdatasync` flushes only
/// data.
public final class DeliveryJournal: @unchecked Sendable {
    /// A message as delivered: its Maildir base name (unique), the accounts whose INBOX
    /// got it, and its bytes as the file holds them (LF line ends).
    public struct Entry: Sendable, Hashable {
        public var name: String
        public var accounts: [MailAccount]
        public var body: [UInt8]

        public init(name: String, accounts: [MailAccount], body: [UInt8]) {
            self.name = name
            self.accounts = accounts
            self.body = body
        }
    }

    public static let defaultCapacity = 8 * 1024 * 1024
    /// Bodies above this go the `syncfs` way: copying them twice costs more than the flush.
    public static let maxBodySize = 64 * 1024
    /// How long a record may wait for its checkpoint.
    public static let defaultCheckpointInterval: TimeInterval = 1

    static let headerSize = 4096
    static let headerMagic = Array("BERTHJN2".utf8)
    static let keySize = 32
    static let recordMagic: UInt32 = 0x4352_4A42  // "BJRC" little-endian
    static let digestSize = 16
    /// Record framing: magic, key tag, payload length, MAC.
    static let recordOverhead = 4 + 8 + 4 + digestSize

    public let path: String
    public let capacity: Int
    public let checkpointInterval: TimeInterval
    private let fd: Int32
    private let syncFD: Int32
    private let condition = NSCondition()
    /// This generation's key (random; a checkpoint makes a new one).
    private var key: [UInt8]
    private var tail: Int
    private var oldestRecord: Date?
    /// Records of acknowledged messages whose files could not be written: no checkpoint may
    /// drop them before a restart replays them.
    private var retained = false
    /// Records written, and those whose messages are in their mailboxes (counted from start).
    private var appendedRecords: UInt64 = 0
    private var appliedRecords: UInt64 = 0
    /// Checkpoints waiting for the last records' messages: no new record until they are done.
    private var checkpointsWaiting = 0
    /// An append or a checkpoint is writing the file (outside the lock).
    private var writing = false
    /// The header could not be written: appends refused (deliveries use `syncfs`).
    private var unusable = false
    /// After a failed checkpoint: not before then.
    private var retryCheckpointAt: Date?
    private let logger: Logger
    /// Called (with the journal's lock held) by whoever is about to wait for the files and
    /// rows of acknowledged records, so that the thread writing them gets the processor.
    private let waitingForApplies: (@Sendable () -> Void)?

    /// Opens (creating it full of zeros if needed) the journal at `path` and starts a new
    /// generation: run `replay` first, anything older is dead after this.
    /// - Parameter syncDirectory: a directory on the filesystem a checkpoint flushes.
    public init(
        path: String, syncDirectory: String, capacity: Int = defaultCapacity,
        checkpointInterval: TimeInterval = defaultCheckpointInterval, logger: Logger,
        waitingForApplies: (@Sendable () -> Void)? = nil
    ) throws {
        self.waitingForApplies = waitingForApplies
        precondition(capacity >= 2 * Self.headerSize)
        self.path = path
        self.capacity = capacity
        self.checkpointInterval = checkpointInterval
        self.logger = logger
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw DeliveryError(description: "cannot open \(path): \(errnoText())") }
        self.fd = fd
        fchmod(fd, 0o600)
        syncFD = open(syncDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard syncFD >= 0 else {
            close(fd)
            throw DeliveryError(description: "cannot open \(syncDirectory): \(errnoText())")
        }
        var info = stat()
        if fstat(fd, &info) != 0 || Int(info.st_size) != capacity {
            if info.st_size > 0 {
                logger.notice("delivery journal: \(path) is \(info.st_size) octets, not \(capacity); written anew")
            }
            try Self.fillWithZeros(fd, capacity, path: path)
            let directory = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if directory >= 0 {
                fsync(directory)
                close(directory)
            }
        }
        key = Self.newKey()
        tail = Self.headerSize
        try writeHeader(key: key)
    }

    deinit {
        close(fd)
        close(syncFD)
    }

    /// Whether the next call should be `checkpoint` (half full, or the oldest record has
    /// waited `checkpointInterval`). Never while records are retained for recovery.
    public func checkpointDue(now: Date = Date()) -> Bool {
        condition.withLock {
            guard let deadline = deadlineLocked() else { return false }
            return tail > capacity / 2 || now >= deadline
        }
    }

    /// When the oldest record's checkpoint is due; nil when the journal is empty or its
    /// records are retained for recovery.
    public var checkpointDeadline: Date? {
        condition.withLock { deadlineLocked() }
    }

    /// A failed checkpoint is retried a `checkpointInterval` (at least a second) later, not
    /// at once: the writer would spin on it.
    private func deadlineLocked() -> Date? {
        guard !retained, !unusable, let oldestRecord else { return nil }
        let due = oldestRecord.addingTimeInterval(checkpointInterval)
        return retryCheckpointAt.map { max($0, due) } ?? due
    }

    /// Writes `entries` as one record and makes it durable: the messages may be
    /// acknowledged. Returns the record's number, which `applied(through:)` must report once
    /// the messages' files and rows exist; until then no checkpoint drops the record and
    /// `settle` waits. nil when the record does not fit (checkpoint, then try again) or the
    /// write failed (use a `syncfs` instead).
    public func append(_ entries: [Entry], now: Date = Date()) -> UInt64? {
        // The disk is written outside the lock, so that `settle` never waits for it.
        let claimed: (record: [UInt8], offset: Int)? = condition.withLock {
            while writing || checkpointsWaiting > 0 { condition.wait() }
            guard !unusable else { return nil }
            let record = Self.encodeRecord(entries, key: key)
            guard tail + record.count <= capacity else { return nil }
            writing = true
            return (record, tail)
        }
        guard let claimed else { return nil }
        let written = Self.writeAll(fd, claimed.record, at: claimed.offset) && fdatasync(fd) == 0
        let failure = errno
        return condition.withLock {
            defer {
                writing = false
                condition.broadcast()
            }
            // Even a failed write may have left the whole record on disk: the tail moves
            // past it, so that the next checkpoint (a new key) kills it for good.
            tail = claimed.offset + claimed.record.count
            if oldestRecord == nil { oldestRecord = now }
            guard written else {
                logger.error("delivery journal: cannot write \(path): \(errnoText(failure))")
                return nil
            }
            appendedRecords += 1
            return appendedRecords
        }
    }

    /// The messages of every record up to `record` are in their mailboxes (or retained).
    public func applied(through record: UInt64) {
        condition.withLock {
            appliedRecords = max(appliedRecords, record)
            condition.broadcast()
        }
    }

    /// Keeps every record until the next start, whose recovery replays them: for
    /// acknowledged messages that could not be written to their mailboxes. Checkpoints are
    /// refused from now on.
    public func retainForRecovery() {
        condition.withLock { retained = true }
    }

    /// Returns once the files and rows of every message acknowledged before the call exist:
    /// a mailbox reader calls it first, so that it sees the mail just accepted.
    public func settle() {
        condition.withLock {
            let target = appendedRecords
            while appliedRecords < target {
                waitingForApplies?()
                condition.wait()
            }
        }
    }

    /// Makes everything written to the filesystem durable (one `syncfs`) and empties the
    /// journal, once the messages of its records are in their mailboxes (no new record is
    /// written meanwhile). Nothing to do when it is empty.
    public func checkpoint() throws {
        let due: Bool = try condition.withLock {
            checkpointsWaiting += 1
            while writing || appliedRecords < appendedRecords {
                if appliedRecords < appendedRecords { waitingForApplies?() }
                condition.wait()
            }
            checkpointsWaiting -= 1
            guard tail > Self.headerSize else {
                condition.broadcast()
                return false
            }
            guard !retained else {
                condition.broadcast()
                throw DeliveryError(description: "the journal holds acknowledged messages not yet in their mailboxes; they are kept for the next start")
            }
            writing = true
            return true
        }
        guard due else { return }
        let newKey = Self.newKey()
        var failure: DeliveryError?
        var headerTorn = false
        if cberth_syncfs(syncFD) != 0 {
            failure = DeliveryError(description: "cannot flush the data directory: \(errnoText())")
        } else {
            do {
                try writeHeader(key: newKey)
            } catch {
                failure = error as? DeliveryError
                headerTorn = true
            }
        }
        try condition.withLock {
            defer {
                writing = false
                condition.broadcast()
            }
            if headerTorn {
                // Records written after a torn header could not be read back.
                unusable = true
                logger.error("delivery journal: \(failure?.description ?? "header not written"); deliveries use syncfs until the next start")
            }
            if let failure {
                retryCheckpointAt = Date().addingTimeInterval(max(1, checkpointInterval))
                throw failure
            }
            key = newKey
            tail = Self.headerSize
            oldestRecord = nil
            retryCheckpointAt = nil
            unusable = false  // a whole header again
        }
    }

    private func writeHeader(key: [UInt8]) throws {
        var header = Self.headerMagic + key
        header += Self.digest(header)
        header += [UInt8](repeating: 0, count: Self.headerSize - header.count)
        guard Self.writeAll(fd, header, at: 0), fdatasync(fd) == 0 else {
            throw DeliveryError(description: "cannot write the journal header of \(path): \(errnoText())")
        }
    }

    // MARK: Reading (recovery)

    /// The live records' entries, oldest first: those under the header's key, up to the
    /// first record that is torn, foreign or of an older generation. `damaged`: the file
    /// holds something but no valid header (nothing of it can be trusted, nothing replayed).
    public static func read(atPath path: String) -> (entries: [Entry], damaged: Bool) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return ([], errno != ENOENT) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return ([], true) }
        let size = Int(info.st_size)
        guard let key = readHeader(fd) else { return ([], size > 0) }
        let tag = Array(key.prefix(8))
        var entries: [Entry] = []
        var offset = headerSize
        while offset + recordOverhead <= size {
            guard let frame = read(fd, count: 16, at: offset),
                  readUInt32(frame, 0) == recordMagic, Array(frame[4..<12]) == tag
            else { break }
            let length = Int(readUInt32(frame, 12))
            guard length <= size - offset - recordOverhead,
                  let rest = read(fd, count: length + digestSize, at: offset + 16)
            else { break }
            let payload = Array(rest[0..<length])
            guard mac(frame + payload, key: key) == Array(rest[length...]), let decoded = decodePayload(payload) else { break }
            entries += decoded
            offset += recordOverhead + length
        }
        return (entries, false)
    }

    /// `read(atPath:).entries`.
    public static func entries(atPath path: String) -> [Entry] { read(atPath: path).entries }

    /// The generation's key, when the header is whole.
    private static func readHeader(_ fd: Int32) -> [UInt8]? {
        let signedCount = headerMagic.count + keySize
        guard let header = read(fd, count: signedCount + digestSize, at: 0),
              Array(header[0..<headerMagic.count]) == headerMagic,
              digest(Array(header[0..<signedCount])) == Array(header[signedCount...])
        else { return nil }
        return Array(header[headerMagic.count..<signedCount])
    }

    private static func newKey() -> [UInt8] {
        SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
    }

    // MARK: Encoding

    static func encodeRecord(_ entries: [Entry], key: [UInt8]) -> [UInt8] {
        var payload: [UInt8] = []
        payload.reserveCapacity(entries.reduce(16) { $0 + $1.body.count + 64 })
        append(UInt32(entries.count), to: &payload)
        for entry in entries {
            appendString(entry.name, to: &payload)
            append(UInt32(entry.accounts.count), to: &payload)
            for account in entry.accounts {
                appendString(account.domain, to: &payload)
                appendString(account.user, to: &payload)
            }
            append(UInt32(entry.body.count), to: &payload)
            payload += entry.body
        }
        var record: [UInt8] = []
        record.reserveCapacity(payload.count + recordOverhead)
        append(recordMagic, to: &record)
        record += key.prefix(8)
        append(UInt32(payload.count), to: &record)
        record += payload
        record += mac(record, key: key)
        return record
    }

    /// nil for anything malformed; every length is checked against what is left, so no
    /// allocation follows a length the bytes do not back.
    static func decodePayload(_ payload: [UInt8]) -> [Entry]? {
        var reader = Reader(bytes: payload)
        guard let count = reader.uint32(), Int(count) <= payload.count / 4 else { return nil }
        var entries: [Entry] = []
        for _ in 0..<count {
            guard let name = reader.string(), isPathComponent(name), let accountCount = reader.uint32(),
                  Int(accountCount) <= reader.remaining / 4
            else {
                return nil
            }
            var accounts: [MailAccount] = []
            for _ in 0..<accountCount {
                guard let domain = reader.string(), let user = reader.string(), isPathComponent(domain), isPathComponent(user) else {
                    return nil
                }
                accounts.append(MailAccount(domain: domain, user: user))
            }
            guard let length = reader.uint32(), let body = reader.bytes(Int(length)) else { return nil }
            entries.append(Entry(name: name, accounts: accounts, body: body))
        }
        return reader.remaining == 0 ? entries : nil
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0
        var remaining: Int { bytes.count - offset }

        mutating func uint32() -> UInt32? {
            guard remaining >= 4 else { return nil }
            defer { offset += 4 }
            return DeliveryJournal.readUInt32(bytes, offset)
        }

        mutating func bytes(_ count: Int) -> [UInt8]? {
            guard count >= 0, count <= remaining else { return nil }
            defer { offset += count }
            return Array(bytes[offset..<(offset + count)])
        }

        mutating func string() -> String? {
            guard let length = uint32(), let raw = bytes(Int(length)) else { return nil }
            return String(validating: raw, as: UTF8.self)
        }
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }

    private static func appendString(_ string: String, to bytes: inout [UInt8]) {
        append(UInt32(string.utf8.count), to: &bytes)
        bytes += string.utf8
    }

    static func readUInt32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << (8 * $1) }
    }

    static func digest(_ bytes: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(data: bytes).prefix(digestSize))
    }

    static func mac(_ bytes: [UInt8], key: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: bytes, using: SymmetricKey(data: key)).prefix(digestSize))
    }

    /// A name recovery may put in a path: one component, nothing hidden, no NUL.
    static func isPathComponent(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 255 && !name.hasPrefix(".") && !name.utf8.contains(0x2F) && !name.utf8.contains(0)
    }

    // MARK: Files

    private static func read(_ fd: Int32, count: Int, at offset: Int) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset + done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            done += n
        }
        return buffer
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8], at offset: Int) -> Bool {
        FileDescriptorIO.writeAll(fd, bytes, at: offset) == nil
    }

    private static func fillWithZeros(_ fd: Int32, _ capacity: Int, path: String) throws {
        guard ftruncate(fd, 0) == 0 else { throw DeliveryError(description: "cannot reset \(path): \(errnoText())") }
        let zeros = [UInt8](repeating: 0, count: 1024 * 1024)
        var offset = 0
        while offset < capacity {
            let chunk = min(zeros.count, capacity - offset)
            guard writeAll(fd, Array(zeros[0..<chunk]), at: offset) else {
                throw DeliveryError(description: "cannot write \(path): \(errnoText())")
            }
            offset += chunk
        }
        guard fsync(fd) == 0 else { throw DeliveryError(description: "cannot flush \(path): \(errnoText())") }
    }
}

// MARK: Replay

extension DeliveryJournal {
    /// Puts back, after a crash, every journaled message whose file is in none of its
    /// account's folders (written to INBOX's `new/`) or does not hold the journaled bytes
    /// (short, or zeros a power loss left: rewritten in place); then flushes. Returns the paths written. Run before the
    /// rest of recovery, which indexes what it finds.
    static func replay(journalPath: String, layout: MaildirLayout, syncDirectory: String, logger: Logger) -> [String] {
        let (entries, damaged) = read(atPath: journalPath)
        if damaged {
            logger.warning("delivery journal: \(journalPath) has no valid header; nothing replayed from it (messages acknowledged in the last second before a crash may be missing)")
        }
        guard !entries.isEmpty else { return [] }
        var restored: [String] = []
        var filesByAccount: [MailAccount: [String: String]] = [:]
        for entry in entries {
            for account in entry.accounts {
                if filesByAccount[account] == nil { filesByAccount[account] = messageFiles(of: account, layout: layout) }
                let inbox = layout.directory(of: DefaultMailboxes.inbox, in: account)
                let existing = filesByAccount[account]?[entry.name]
                if let existing, FileManager.default.contents(atPath: existing).map(Array.init) == entry.body { continue }
                let target = existing ?? inbox + "/new/" + entry.name
                for sub in ["tmp", "new", "cur"] {
                    try? FileManager.default.createDirectory(
                        atPath: inbox + "/" + sub, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                }
                let temporary = inbox + "/tmp/" + entry.name + ".replay"
                let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
                guard fd >= 0, writeAll(fd, entry.body, at: 0), close(fd) == 0, rename(temporary, target) == 0 else {
                    logger.error("delivery journal: cannot restore \(target): \(errnoText())")
                    unlink(temporary)
                    continue
                }
                restored.append(target)
                filesByAccount[account]?[entry.name] = target
            }
        }
        let directory = open(syncDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            if cberth_syncfs(directory) != 0 { logger.error("delivery journal: cannot flush after replay: \(errnoText())") }
            close(directory)
        }
        return restored
    }

    /// Every message file of an account by its Maildir base name (the name before `:2,`).
    private static func messageFiles(of account: MailAccount, layout: MaildirLayout) -> [String: String] {
        var files: [String: String] = [:]
        for folder in MaildirMailboxStore.folderDirectories(of: account, layout: layout) {
            for sub in ["new", "cur"] {
                let directory = folder.directory + "/" + sub
                for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
                    files[MaildirFileName(name).base] = directory + "/" + name
                }
            }
        }
        return files
    }

}
