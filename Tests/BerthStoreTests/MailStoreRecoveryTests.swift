import BerthCore
import Foundation
import GRDB
import Logging
import Testing
@testable import BerthStore

/// Start-up recovery after a crash: the Maildir and the index brought back together.
@Suite("MailStore recovery")
struct MailStoreRecoveryTests {
    static let logger = Logger(label: "test.recovery")

    /// A data directory with one delivered (indexed) message for alice@example.com.
    static func withDelivered(_ body: (ConfigStore, TempDirectory, String) throws -> Void) throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let config = try ConfigStore(path: directory.databasePath)
        let mail = try MailStore(dataDirectory: directory.path, store: config, hostname: "mx.example.com", logger: logger)
        mail.start()
        let id = try MailStoreTests.deliverAndWait(mail, InboundMessage(
            queueID: "R1.1", sender: MailStoreTests.sender,
            recipients: [("alice@example.com", .local(domain: "example.com", user: "alice"))],
            body: MailStoreTests.body()))
        mail.stop()
        try body(config, directory, id)
    }

    /// Full paths of every indexed message (INBOX folders: the account's Maildir).
    static func indexedPaths(_ config: ConfigStore) throws -> [String] {
        try indexedRows(config).map(\.path).sorted()
    }

    static func indexedRows(_ config: ConfigStore) throws -> [(path: String, domain: String, user: String, size: Int)] {
        let dataDirectory = (config.database.path as NSString).deletingLastPathComponent
        return try config.database.read { db in
            try Row.fetchAll(
                db, sql: "SELECT mailbox.domain, mailbox.user, mailbox.name, mail.file, mail.size FROM mail JOIN mailbox ON mailbox.id = mail.mailbox"
            ).map { row in
                let layout = MaildirLayout(mailRoot: dataDirectory + "/mail")
                let account = MailAccount(domain: row["domain"], user: row["user"])
                let path = layout.directory(of: row["name"], in: account) + "/" + (row["file"] as String)
                return (path, row["domain"], row["user"], row["size"])
            }
        }
    }

    static func write(_ path: String, _ text: String = "Subject: x\n\nbody\n") throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    /// A pid no process has: above the kernel's pid_max (at most 2^22).
    static let deadPID = 4_194_400

    @Test("a clean directory needs nothing")
    func clean() throws {
        try Self.withDelivered { config, directory, _ in
            let before = try Self.indexedPaths(config)
            let report = try MailStore.recover(dataDirectory: directory.path, store: config, logger: Self.logger)
            #expect(report.isEmpty)
            #expect(try Self.indexedPaths(config) == before)
        }
    }

    @Test("tmp/ leftovers of a dead writer are removed; a live writer's are kept")
    func temporaryLeftovers() throws {
        try Self.withDelivered { config, directory, _ in
            let box = directory.path + "/mail/example.com/alice"
            let dead = "\(box)/tmp/1700000000.M1P\(Self.deadPID)Q1.mx.example.com,S=10"
            let mine = "\(box)/tmp/1700000000.M2P\(getpid())Q1.mx.example.com,S=10"
            let unnamed = "\(box)/tmp/garbage"
            let live = "\(box)/tmp/1700000000.M3P1Q1.mx.example.com,S=10"  // pid 1 is always running
            let queued = directory.path + "/queue/tmp/1700000000.M4P\(Self.deadPID)Q1.mx.example.com,S=10"
            try FileManager.default.createDirectory(atPath: directory.path + "/queue/tmp", withIntermediateDirectories: true)
            for path in [dead, mine, unnamed, live, queued] { try Self.write(path) }
            let report = try MailStore.recover(dataDirectory: directory.path, store: config, logger: Self.logger)
            #expect(Set(report.removedTemporary) == [dead, mine, unnamed, queued])
            #expect(directory.files(in: "mail/example.com/alice/tmp") == [(live as NSString).lastPathComponent])
            #expect(directory.files(in: "queue/tmp").isEmpty)
        }
    }

    @Test("a tmp/ file older than 36 hours goes whatever its name says")
    func staleTemporary() throws {
        try Self.withDelivered { config, directory, _ in
            let path = directory.path + "/mail/example.com/alice/tmp/1700000000.M3P1Q1.mx.example.com,S=10"
            try Self.write(path)
            let report = try MailStore.recover(
                dataDirectory: directory.path, store: config, logger: Self.logger, now: Date().addingTimeInterval(37 * 3600))
            #expect(report.removedTemporary == [path])
        }
    }

    @Test("a message in new/ without its index row is indexed, with its size")
    func unindexedMessage() throws {
        try Self.withDelivered { config, directory, _ in
            let indexed = try Self.indexedPaths(config)
            let orphan = directory.path + "/mail/example.com/alice/new/1700000001.M1P\(Self.deadPID)Q2.mx.example.com,S=18"
            try Self.write(orphan, "Subject: y\n\nhello\n")
            // A mailbox the index has never seen.
            let bobBox = directory.path + "/mail/example.org/bob"
            for sub in ["tmp", "new", "cur"] {
                try FileManager.default.createDirectory(atPath: "\(bobBox)/\(sub)", withIntermediateDirectories: true)
            }
            let bobs = "\(bobBox)/new/1700000002.M1P\(Self.deadPID)Q3.mx.example.com,S=18"
            try Self.write(bobs, "Subject: z\n\nhello\n")
            let report = try MailStore.recover(dataDirectory: directory.path, store: config, logger: Self.logger)
            #expect(Set(report.indexed) == [orphan, bobs])
            #expect(try Self.indexedPaths(config) == (indexed + [orphan, bobs]).sorted())
            let row = try Self.indexedRows(config).first { $0.path == bobs }
            #expect(row?.domain == "example.org")
            #expect(row?.user == "bob")
            #expect(row?.size == 21, "RFC822.SIZE counts the 3 LF line ends as CRLF")
            // Run again: nothing left to do.
            #expect(try MailStore.recover(dataDirectory: directory.path, store: config, logger: Self.logger).isEmpty)
        }
    }

    @Test("an index row whose file is gone is dropped")
    func rowWithoutFile() throws {
        try Self.withDelivered { config, directory, _ in
            let indexed = try Self.indexedPaths(config)
            #expect(indexed.count == 1)
            try FileManager.default.removeItem(atPath: indexed[0])
            let report = try MailStore.recover(dataDirectory: directory.path, store: config, logger: Self.logger)
            #expect(report.droppedRows == indexed)
            #expect(try Self.indexedPaths(config).isEmpty)
        }
    }

    @Test("a queue file without its queue row is reported and left alone")
    func orphanedQueueFile() throws {
        try Self.withDelivered { config, directory, _ in
            try FileManager.default.createDirectory(atPath: directory.path + "/queue/new", withIntermediateDirectories: true)
            let path = directory.path + "/queue/new/1700000003.M1P\(Self.deadPID)Q4.mx.example.com,S=10"
            try Self.write(path)
            let report = try MailStore.recover(dataDirectory: directory.path, store: config, logger: Self.logger)
            #expect(report.orphanedQueueFiles == [path])
            #expect(FileManager.default.fileExists(atPath: path))
        }
    }

    @Test("the writer pid is read from a Maildir name", arguments: [
        ("1700000000.M123P4567Q8.mx.example.com,S=99", Int32(4567)),
        ("1700000000.M1P1Q1.host", 1),
        ("garbage", nil),
        ("1700000000.M1Q1.host", nil),
    ] as [(String, Int32?)])
    func writerPID(_ row: (String, Int32?)) {
        #expect(MailStore.writerPID(ofMaildirName: row.0) == row.1)
    }
}
