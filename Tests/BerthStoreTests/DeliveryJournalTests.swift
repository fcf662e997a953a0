import BerthCore
import Foundation
import Logging
import Testing
@testable import BerthStore

@Suite("Delivery journal")
struct DeliveryJournalTests {
    static let logger = Logger(label: "test.journal")
    static let alice = MailAccount(domain: "example.com", user: "alice")
    static let bob = MailAccount(domain: "example.com", user: "bob")
    static let toAlice: [(String, RecipientClass)] = [("alice@example.com", .local(domain: "example.com", user: "alice"))]
    static let toBob: [(String, RecipientClass)] = [("bob@example.com", .local(domain: "example.com", user: "bob"))]

    /// A message from MailStoreTests' sender.
    static func message(
        _ queueID: String, to recipients: [(String, RecipientClass)] = toAlice, body: MessageBody = MailStoreTests.body()
    ) -> InboundMessage {
        InboundMessage(queueID: queueID, sender: MailStoreTests.sender, recipients: recipients, body: body)
    }

    /// The user's `tmp/` turns into a file: their next message's file cannot be written
    /// (root or not). Returns its path.
    static func tmpBecomesAFile(of user: String, in directory: TempDirectory) throws -> String {
        let tmp = directory.path + "/mail/example.com/\(user)/tmp"
        try FileManager.default.removeItem(atPath: tmp)
        #expect(FileManager.default.createFile(atPath: tmp, contents: Data()))
        return tmp
    }

    static func entry(_ name: String, _ accounts: [MailAccount] = [alice], body: String = "Subject: hi\n\nhello\n") -> DeliveryJournal.Entry {
        DeliveryJournal.Entry(name: name, accounts: accounts, body: Array(body.utf8))
    }

    /// Appends and reports the messages in their mailboxes at once (as the applier would).
    static func appendApplied(_ journal: DeliveryJournal, _ entries: [DeliveryJournal.Entry]) -> Bool {
        guard let record = journal.append(entries) else { return false }
        journal.applied(through: record)
        return true
    }

    static let someKey = [UInt8](repeating: 7, count: DeliveryJournal.keySize)

    /// The key the journal's header holds (what only the server knows).
    static func headerKey(_ path: String) throws -> [UInt8] {
        let bytes = try #require(FileManager.default.contents(atPath: path))
        return Array(bytes[DeliveryJournal.headerMagic.count..<(DeliveryJournal.headerMagic.count + DeliveryJournal.keySize)])
    }

    static func writeAt(_ path: String, _ bytes: [UInt8], _ offset: Int) {
        let fd = open(path, O_RDWR)
        defer { close(fd) }
        #expect(pwrite(fd, bytes, bytes.count, off_t(offset)) == bytes.count)
    }

    static func withJournal(capacity: Int = 64 * 1024, _ body: (DeliveryJournal, TempDirectory) throws -> Void) throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let journal = try DeliveryJournal(
            path: directory.path + "/journal", syncDirectory: directory.path, capacity: capacity, checkpointInterval: 3600,
            logger: logger)
        try body(journal, directory)
    }

    @Test("records come back in order, all their entries")
    func roundTrip() throws {
        try Self.withJournal { journal, _ in
            let first = [Self.entry("1.M1P1Q1.mx"), Self.entry("1.M1P1Q2.mx", [Self.alice, Self.bob], body: "x\n")]
            let second = [Self.entry("2.M2P1Q3.mx", body: String(repeating: "line\n", count: 300))]
            #expect(Self.appendApplied(journal, first))
            #expect(Self.appendApplied(journal, second))
            #expect(DeliveryJournal.entries(atPath: journal.path) == first + second)
            #expect(journal.checkpointDeadline != nil)
        }
    }

    @Test("a checkpoint empties it; a new journal starts empty (a new generation)")
    func checkpointAndReopen() throws {
        try Self.withJournal { journal, directory in
            #expect(Self.appendApplied(journal, [Self.entry("a")]))
            try journal.checkpoint()
            #expect(DeliveryJournal.entries(atPath: journal.path).isEmpty, "old records are dead after the header moved on")
            #expect(journal.checkpointDeadline == nil)
            #expect(Self.appendApplied(journal, [Self.entry("b")]))
            #expect(DeliveryJournal.entries(atPath: journal.path) == [Self.entry("b")], "written over the dead ones")

            let reopened = try DeliveryJournal(path: journal.path, syncDirectory: directory.path, capacity: journal.capacity, logger: Self.logger)
            #expect(DeliveryJournal.entries(atPath: reopened.path).isEmpty)
        }
    }

    @Test("what does not fit is refused; after a checkpoint it fits")
    func full() throws {
        try Self.withJournal(capacity: 3 * 4096) { journal, _ in
            let big = Self.entry("big", body: String(repeating: "y", count: 5000))
            #expect(Self.appendApplied(journal, [big]))
            #expect(journal.checkpointDue(), "over half full")
            #expect(!Self.appendApplied(journal, [big]), "a second one passes the end")
            try journal.checkpoint()
            #expect(Self.appendApplied(journal, [big]))
        }
    }

    @Test("reading stops at a torn or altered record; the ones before it stay")
    func tornRecord() throws {
        try Self.withJournal { journal, _ in
            #expect(Self.appendApplied(journal, [Self.entry("first")]))
            let secondAt = 4096 + DeliveryJournal.encodeRecord([Self.entry("first")], key: Self.someKey).count
            #expect(Self.appendApplied(journal, [Self.entry("second")]))
            #expect(Self.appendApplied(journal, [Self.entry("third")]))
            // One octet of the second record's body changed: its digest no longer matches.
            let fd = open(journal.path, O_RDWR)
            defer { close(fd) }
            var byte: UInt8 = 0
            #expect(pread(fd, &byte, 1, off_t(secondAt + 40)) == 1)
            byte ^= 0xFF
            #expect(pwrite(fd, &byte, 1, off_t(secondAt + 40)) == 1)
            #expect(DeliveryJournal.entries(atPath: journal.path) == [Self.entry("first")])
        }
    }

    @Test("bytes a client sent cannot pass for a record: another key's record is dead, names that leave the folder are refused")
    func forgedRecords() throws {
        try Self.withJournal { journal, _ in
            #expect(Self.appendApplied(journal, [Self.entry("real")]))
            let tail = 4096 + DeliveryJournal.encodeRecord([Self.entry("real")], key: Self.someKey).count
            // Under a key of the attacker's own (the message body of an older generation).
            Self.writeAt(journal.path, DeliveryJournal.encodeRecord([Self.entry("forged")], key: Self.someKey), tail)
            #expect(DeliveryJournal.entries(atPath: journal.path) == [Self.entry("real")])
            // Even under the real key, a name or account that is not one path component.
            let key = try Self.headerKey(journal.path)
            for bad in [
                Self.entry("../../PWNED"), Self.entry("a/b"), Self.entry(".hidden"), Self.entry("nul\u{0}"),
                Self.entry("x", [MailAccount(domain: "..", user: "evil")]), Self.entry("x", [MailAccount(domain: "example.com", user: "a/../../b")]),
            ] {
                Self.writeAt(journal.path, DeliveryJournal.encodeRecord([bad], key: key), tail)
                #expect(DeliveryJournal.entries(atPath: journal.path) == [Self.entry("real")], "\(bad.name) \(bad.accounts)")
            }
            Self.writeAt(journal.path, DeliveryJournal.encodeRecord([Self.entry("good")], key: key), tail)
            #expect(DeliveryJournal.entries(atPath: journal.path) == [Self.entry("real"), Self.entry("good")], "the same record, well formed, is read")
        }
    }

    @Test("a damaged header is reported and nothing of the file is trusted; a new journal gets a new key")
    func damagedHeader() throws {
        try Self.withJournal { journal, directory in
            #expect(Self.appendApplied(journal, [Self.entry("a")]))
            var byte = [UInt8](repeating: 0, count: 1)
            let fd = open(journal.path, O_RDWR)
            #expect(pread(fd, &byte, 1, 20) == 1)
            byte[0] ^= 0x01
            #expect(pwrite(fd, byte, 1, 20) == 1)
            close(fd)
            let read = DeliveryJournal.read(atPath: journal.path)
            #expect(read.entries.isEmpty && read.damaged)
            let before = try Self.headerKey(journal.path)
            let reopened = try DeliveryJournal(path: journal.path, syncDirectory: directory.path, capacity: journal.capacity, logger: Self.logger)
            #expect(try Self.headerKey(reopened.path) != before)
            let again = DeliveryJournal.read(atPath: reopened.path)
            #expect(again.entries.isEmpty && !again.damaged)
        }
    }

    @Test("a missing file or a bad header reads as empty")
    func missingOrForeign() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        #expect(DeliveryJournal.entries(atPath: directory.path + "/none").isEmpty)
        let foreign = directory.path + "/foreign"
        try Data(repeating: 0x41, count: 10_000).write(to: URL(fileURLWithPath: foreign))
        #expect(DeliveryJournal.entries(atPath: foreign).isEmpty)
    }

    @Test("random and mutated payloads never crash the decoder, and no length allocates ahead of the bytes")
    func fuzzPayloads() throws {
        var random = SystemRandomNumberGenerator()
        let valid = Array(DeliveryJournal.encodeRecord([Self.entry("n", [Self.alice, Self.bob])], key: Self.someKey).dropFirst(16).dropLast(16))
        #expect(DeliveryJournal.decodePayload(valid) == [Self.entry("n", [Self.alice, Self.bob])])
        for round in 0..<2000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<Int.random(in: 0..<64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            } else {
                bytes = valid
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                }
                if round % 3 == 0 { bytes.removeLast(Int.random(in: 0..<bytes.count, using: &random)) }
            }
            // Lengths of 0xFFFFFFFF must be refused, not allocated.
            if let decoded = DeliveryJournal.decodePayload(bytes) {
                #expect(decoded.reduce(0) { $0 + $1.body.count } <= bytes.count)
            }
        }
    }

    // MARK: Replay (a crash after the 250, before the checkpoint)

    @Test("a journaled message whose file the crash lost comes back in INBOX and is indexed")
    func replayLost() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let config = try ConfigStore(path: directory.databasePath)
        let journal = try DeliveryJournal(path: MailStore.journalPath(directory.path), syncDirectory: directory.path, logger: Self.logger)
        let name = "1795000000.M1P\(MailStoreRecoveryTests.deadPID)Q1.mx.example.com,S=19,W=22"
        #expect(Self.appendApplied(journal, [Self.entry(name, [Self.alice, Self.bob])]))

        let report = try MailStore.recover(dataDirectory: directory.path, store: config, logger: Self.logger)
        let alicePath = directory.path + "/mail/example.com/alice/new/" + name
        #expect(Set(report.restoredFromJournal) == [alicePath, directory.path + "/mail/example.com/bob/new/" + name])
        #expect(FileManager.default.contents(atPath: alicePath) == Data("Subject: hi\n\nhello\n".utf8))
        #expect(try MailStoreRecoveryTests.indexedPaths(config).contains(alicePath), "recovery indexed it")

        // A second start finds it in place and restores nothing.
        #expect(try MailStore.recover(dataDirectory: directory.path, store: config, logger: Self.logger).restoredFromJournal.isEmpty)
    }

    @Test("a message a client already flagged (moved to cur/) is not doubled; a short or zeroed one is rewritten")
    func replayPresentAndShort() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let config = try ConfigStore(path: directory.databasePath)
        let inbox = directory.path + "/mail/example.com/alice"
        for sub in ["tmp", "new", "cur"] {
            try FileManager.default.createDirectory(atPath: inbox + "/" + sub, withIntermediateDirectories: true)
        }
        let body = "Subject: hi\n\nhello\n"
        try MailStoreRecoveryTests.write(inbox + "/cur/flagged:2,S", body)
        try MailStoreRecoveryTests.write(inbox + "/new/short", "Subj")
        // What a power loss can leave on some filesystems: the right size, all zeros.
        try Data(repeating: 0, count: body.utf8.count).write(to: URL(fileURLWithPath: inbox + "/new/zeros"))
        let journal = try DeliveryJournal(path: MailStore.journalPath(directory.path), syncDirectory: directory.path, logger: Self.logger)
        #expect(Self.appendApplied(journal, [Self.entry("flagged", body: body), Self.entry("short", body: body), Self.entry("zeros", body: body)]))

        let report = try MailStore.recover(dataDirectory: directory.path, store: config, logger: Self.logger)
        #expect(report.restoredFromJournal == [inbox + "/new/short", inbox + "/new/zeros"])
        #expect(FileManager.default.contents(atPath: inbox + "/new/short") == Data(body.utf8))
        #expect(FileManager.default.contents(atPath: inbox + "/new/zeros") == Data(body.utf8))
        #expect(!FileManager.default.fileExists(atPath: inbox + "/new/flagged"))
        #expect(try MailStoreRecoveryTests.indexedPaths(config).count == 3)
    }

    @Test("an expunge or a move checkpoints first, so a replay cannot bring the message back")
    func removalCheckpoints() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let config = try ConfigStore(path: directory.databasePath)
        let journal = try DeliveryJournal(
            path: MailStore.journalPath(directory.path), syncDirectory: directory.path, checkpointInterval: 3600, logger: Self.logger)
        let store = try MaildirMailboxStore(
            dataDirectory: directory.path, index: SQLiteMailIndex(database: config.database), hostname: "mx.example.com",
            journal: journal, logger: Self.logger)
        let inbox = try store.snapshot("INBOX", of: Self.alice).mailbox
        let body = MessageBody.bytes(Array("Subject: x\n\nbody\n".utf8))
        let first = try store.append(body, to: "INBOX", flags: .none, internalDate: nil, of: Self.alice).uid
        let second = try store.append(body, to: "INBOX", flags: .none, internalDate: nil, of: Self.alice).uid
        #expect(Self.appendApplied(journal, [Self.entry("delivered")]))
        _ = try store.copy(uids: [first], from: inbox.id, to: "Archive", move: false, of: Self.alice)
        #expect(DeliveryJournal.entries(atPath: journal.path).count == 1, "a copy removes nothing")
        _ = try store.expunge(uids: [], in: inbox.id, of: Self.alice)
        #expect(DeliveryJournal.entries(atPath: journal.path).count == 1, "nothing to remove, nothing to checkpoint")
        _ = try store.expunge(uids: [first], in: inbox.id, of: Self.alice)
        #expect(DeliveryJournal.entries(atPath: journal.path).isEmpty)
        #expect(Self.appendApplied(journal, [Self.entry("delivered again")]))
        _ = try store.copy(uids: [second], from: inbox.id, to: "Archive", move: true, of: Self.alice)
        #expect(DeliveryJournal.entries(atPath: journal.path).isEmpty)

        // A journal that cannot checkpoint (messages kept for recovery): nothing is removed.
        let third = try store.append(body, to: "INBOX", flags: .none, internalDate: nil, of: Self.alice).uid
        let record = try #require(journal.append([Self.entry("not placed")]))
        journal.retainForRecovery()
        journal.applied(through: record)
        #expect(throws: MailboxStoreError.self) { try store.expunge(uids: [third], in: inbox.id, of: Self.alice) }
        #expect(throws: MailboxStoreError.self) {
            try store.copy(uids: [third], from: inbox.id, to: "Archive", move: true, of: Self.alice)
        }
        #expect(try store.snapshot("INBOX", of: Self.alice).messages.map(\.uid) == [third])
    }

    // MARK: Delivery

    @Test("small local mail is acknowledged through the journal; remote or big mail through syncfs")
    func deliveryUsesTheJournal() throws {
        try MailStoreTests.withMailStore(journalCheckpointInterval: 3600) { mail, _, directory in
            _ = try MailStoreTests.deliverAndWait(mail, Self.message("J1.1"))
            let journaled = DeliveryJournal.entries(atPath: mail.journal.path)
            #expect(journaled.map(\.accounts) == [[Self.alice]])
            #expect(journaled.first.map { MessageBody.bytes($0.body) } == MailStoreTests.body())
            #expect(directory.files(in: "mail/example.com/alice/new") == journaled.map(\.name), "the file is in place before the 250")

            _ = try MailStoreTests.deliverAndWait(mail, Self.message("J2.1", to: Self.toAlice + [("carol@elsewhere.example", .remote)]))
            _ = try MailStoreTests.deliverAndWait(mail, Self.message(
                "J3.1", body: .bytes([UInt8](repeating: 0x61, count: DeliveryJournal.maxBodySize + 1))))
            #expect(DeliveryJournal.entries(atPath: mail.journal.path).count == 1, "a queued or big message is flushed with syncfs")
            #expect(directory.files(in: "mail/example.com/alice/new").count == 3)
        }
    }

    @Test("settle and checkpoint wait for the files of acknowledged records; a retained journal refuses checkpoints")
    func settleAndCheckpointWaitForTheApply() throws {
        try Self.withJournal { journal, _ in
            let first = try #require(journal.append([Self.entry("m1")]))
            let second = try #require(journal.append([Self.entry("m2")]))
            let settled = Locked(false)
            let checkpointed = Locked(false)
            let running = DispatchSemaphore(value: 0)
            Thread { running.signal(); journal.settle(); settled.set(true) }.start()
            Thread { running.signal(); try? journal.checkpoint(); checkpointed.set(true) }.start()
            #expect(running.wait(timeout: .now() + 10) == .success && running.wait(timeout: .now() + 10) == .success)
            Thread.sleep(forTimeInterval: 0.05)  // and blocked by now
            journal.applied(through: first)
            Thread.sleep(forTimeInterval: 0.05)
            #expect(!settled.get() && !checkpointed.get(), "record 2 is not in its mailbox yet")
            #expect(DeliveryJournal.entries(atPath: journal.path).count == 2)
            journal.applied(through: second)
            let deadline = Date().addingTimeInterval(30)
            while !(settled.get() && checkpointed.get()) && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
            #expect(settled.get() && checkpointed.get())
            #expect(DeliveryJournal.entries(atPath: journal.path).isEmpty)

            let third = try #require(journal.append([Self.entry("m3")]))
            journal.retainForRecovery()
            journal.applied(through: third)
            #expect(throws: DeliveryError.self) { try journal.checkpoint() }
            #expect(!journal.checkpointDue(now: Date().addingTimeInterval(7200)) && journal.checkpointDeadline == nil)
            #expect(DeliveryJournal.entries(atPath: journal.path).map(\.name) == ["m3"])
        }
    }

    @Test("an acknowledged message its mailbox could not take stays journaled and comes back at the next start")
    func failedApplyIsRetainedForRecovery() throws {
        try MailStoreTests.withMailStore(journalCheckpointInterval: 0.05) { mail, config, directory in
            _ = try MailStoreTests.deliverAndWait(mail, Self.message("F1.1"))
            let tmp = try Self.tmpBecomesAFile(of: "alice", in: directory)
            let second = MailStoreTests.body(content: Array("Subject: second\n\nkept by the journal\n".utf8))
            let id = try MailStoreTests.deliverAndWait(mail, Self.message("F2.1", body: second))
            #expect(id == "F2.1", "acknowledged: the journal holds it")
            #expect(directory.files(in: "mail/example.com/alice/new").count == 1)
            #expect(throws: DeliveryError.self) { try mail.journal.checkpoint() }
            Thread.sleep(forTimeInterval: 0.2)  // past the checkpoint interval: the writer keeps it too
            let secondBytes: [UInt8] = if case .bytes(let bytes) = second { bytes } else { [] }
            #expect(DeliveryJournal.entries(atPath: mail.journal.path).contains { $0.body == secondBytes })
            mail.stop()

            try FileManager.default.removeItem(atPath: tmp)
            let report = try MailStore.recover(dataDirectory: directory.path, store: config, logger: Self.logger)
            #expect(report.restoredFromJournal.count == 1)
            let files = directory.files(in: "mail/example.com/alice/new")
            #expect(files.count == 2)
            let bodies = files.compactMap { FileManager.default.contents(atPath: directory.path + "/mail/example.com/alice/new/" + $0) }
            #expect(bodies.contains(Data(secondBytes)))
            #expect(try MailStoreRecoveryTests.indexedPaths(config).count == 2)
        }
    }

    @Test("batches applied together: the one its mailbox cannot take stays journaled, the others are placed and indexed")
    func failedBatchInAGroup() throws {
        try MailStoreTests.withMailStore(journalCheckpointInterval: 3600) { mail, config, directory in
            for recipients in [Self.toAlice, Self.toBob] {
                _ = try MailStoreTests.deliverAndWait(mail, Self.message("G0.\(recipients[0].0)", to: recipients))
            }
            _ = try Self.tmpBecomesAFile(of: "bob", in: directory)
            // Acknowledged one after the other, without a mailbox read in between: the applier
            // usually takes both in one group (either way, the outcome is the same).
            for (n, recipients) in [Self.toAlice, Self.toBob].enumerated() {
                let id = try MailStoreTests.deliverAndWait(mail, Self.message("G\(n + 1).1", to: recipients), settling: false)
                #expect(id == "G\(n + 1).1")
            }
            mail.journal.settle()
            #expect(directory.files(in: "mail/example.com/alice/new").count == 2)
            #expect(directory.files(in: "mail/example.com/bob/new").count == 1)
            #expect(try MailStoreRecoveryTests.indexedRows(config).map(\.user).sorted() == ["alice", "alice", "bob"])
            #expect(throws: DeliveryError.self) { try mail.journal.checkpoint() }
            #expect(DeliveryJournal.entries(atPath: mail.journal.path).contains { $0.accounts == [Self.bob] })
        }
    }
}
