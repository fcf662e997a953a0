import BerthCore
import Foundation
import GRDB
import Logging
import Testing
@testable import BerthStore

@Suite("MailStore")
struct MailStoreTests {
    static let sender = "sender@remote.example"
    static let trace = Array("Received: from client.remote.example ([192.0.2.50])\n\tby mx.example.com with ESMTP; Tue, 1 Jan 2030 00:00:00 +0000\n".utf8)
    static let content = Array("From: Sender <sender@remote.example>\nSubject: hello\n\nHi Alice.\n..dot line stays as given\n".utf8)

    /// What the session hands the store: Return-Path, trace, content, LF line ends.
    static func body(sender: String = sender, trace: [UInt8] = trace, content: [UInt8] = content) -> MessageBody {
        .bytes(Array("Return-Path: <\(sender)>\n".utf8) + trace + content)
    }

    /// A started store over a fresh data directory; stopped and removed by `body`'s end.
    /// (A body may stop the store itself: stopping twice is fine.)
    static func withMailStore(
        journalCheckpointInterval: TimeInterval = DeliveryJournal.defaultCheckpointInterval,
        _ body: (MailStore, ConfigStore, TempDirectory) throws -> Void
    ) throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let config = try ConfigStore(path: directory.databasePath)
        let mail = try MailStore(
            dataDirectory: directory.path, store: config, hostname: "mx.example.com",
            journalCheckpointInterval: journalCheckpointInterval, logger: Logger(label: "test.mailstore"))
        mail.start()
        defer { mail.stop() }
        try body(mail, config, directory)
    }

    /// Delivers and waits (bounded) for the completion; `settling`: and for the files of a
    /// journaled message, as a mailbox read would.
    static func deliverAndWait(
        _ mail: MailStore, _ message: InboundMessage, timeout: TimeInterval = 30, settling: Bool = true
    ) throws -> String {
        let done = DispatchSemaphore(value: 0)
        let result = Locked<Result<String, any Error>?>(nil)
        mail.deliver(message) { outcome in
            result.set(outcome)
            done.signal()
        }
        guard done.wait(timeout: .now() + timeout) == .success else {
            throw DeliveryTimeout()
        }
        if settling { mail.journal.settle() }  // a journaled message's files follow its acknowledgement
        return try result.get()!.get()
    }

    struct DeliveryTimeout: Error {}

    @Test("one local and one remote recipient: a Maildir file, a queue file, two index rows")
    func localAndRemote() throws {
        try Self.withMailStore { mail, config, directory in
            let message = InboundMessage(
                queueID: "Q1.1", sender: Self.sender,
                recipients: [
                    ("alice@example.com", .local(domain: "example.com", user: "alice")),
                    ("carol@elsewhere.example", .remote),
                ],
                body: Self.body(), authenticatedUser: "bob@example.com")
            let id = try Self.deliverAndWait(mail, message)
            #expect(id == "Q1.1", "the store answers with the session's queue id")

            let delivered = directory.files(in: "mail/example.com/alice/new")
            try #require(delivered.count == 1)
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: "\(directory.path)/mail/example.com/alice/new/\(delivered[0])")))
            // Maildir files use LF line ends; SMTP's CRLF stays in the queue copy.
            let returnPath = Array("Return-Path: <\(Self.sender)>\n".utf8)
            #expect(bytes.starts(with: returnPath))
            #expect(bytes == returnPath + Self.trace + Self.content)
            #expect(!bytes.contains(0x0D))
            #expect(delivered[0].hasSuffix(",S=\(bytes.count),W=\(LineEnds.crlfCount(bytes))"), "Maildir size tags: \(delivered[0])")
            #expect(directory.files(in: "mail/example.com/alice/tmp").isEmpty)
            #expect(directory.files(in: "mail/example.com/alice/cur").isEmpty)

            let queued = directory.files(in: "queue/new")
            try #require(queued.count == 1)
            let queuedBytes = Array(try Data(contentsOf: URL(fileURLWithPath: "\(directory.path)/queue/new/\(queued[0])")))
            #expect(queuedBytes == bytes, "the queue holds a link to the same file")
            #expect(directory.files(in: "queue/tmp").isEmpty)

            let messages = try MailStoreRecoveryTests.indexedRows(config)
            let queue = try config.database.read { db in
                try Row.fetchAll(db, sql: "SELECT path, sender, recipients, size, authUser FROM queue")
            }
            #expect(messages.count == 1)
            #expect(messages.first?.domain == "example.com")
            #expect(messages.first?.user == "alice")
            #expect(messages.first?.size == LineEnds.crlfCount(bytes))
            #expect(messages.first?.path.hasSuffix("/mail/example.com/alice/new/\(delivered[0])") == true)

            #expect(queue.count == 1)
            #expect(queue.first?["sender"] == Self.sender)
            #expect(queue.first?["authUser"] == "bob@example.com")
            #expect(queue.first?["size"] == queuedBytes.count)
            let recipients = try JSONDecoder().decode([String].self, from: Data(((queue.first?["recipients"] as String?) ?? "").utf8))
            #expect(recipients == ["carol@elsewhere.example"])
            #expect((queue.first?["path"] as String?)?.hasSuffix("/queue/new/\(queued[0])") == true)
        }
    }

    @Test("unknown-user and remote-only messages write no Maildir file")
    func noLocalRecipient() throws {
        try Self.withMailStore { mail, config, directory in
            _ = try Self.deliverAndWait(mail, InboundMessage(
                queueID: "Q", sender: "", recipients: [("x@elsewhere.example", .remote), ("ghost@example.com", .unknownLocalUser)],
                body: Self.body(sender: "")))
            #expect(directory.files(in: "mail").isEmpty)
            #expect(directory.files(in: "queue/new").count == 1)
            let counts = try config.database.read { db in
                (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM mail")!, try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM queue")!)
            }
            #expect(counts == (0, 1))
        }
    }

    @Test("the null sender gets an empty Return-Path")
    func nullSender() throws {
        try Self.withMailStore { mail, _, directory in
            _ = try Self.deliverAndWait(mail, InboundMessage(
                queueID: "Q", sender: "", recipients: [("alice@example.com", .local(domain: "example.com", user: "alice"))],
                body: Self.body(sender: "", trace: [])))
            let files = directory.files(in: "mail/example.com/alice/new")
            try #require(files.count == 1)
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: "\(directory.path)/mail/example.com/alice/new/\(files[0])")))
            #expect(bytes.starts(with: Array("Return-Path: <>\n".utf8)))
        }
    }

    @Test("200 concurrent deliveries from several threads all complete, with distinct ids")
    func concurrentDeliveries() throws {
        try Self.withMailStore { mail, config, directory in
            let count = 200
            let group = DispatchGroup()
            let ids = Locked<[String]>([])
            let failures = Locked<[String]>([])
            for _ in 0..<count { group.enter() }
            DispatchQueue.concurrentPerform(iterations: count) { n in
                let message = InboundMessage(
                    queueID: "Q.\(n)", sender: "sender\(n)@remote.example",
                    recipients: [("alice@example.com", .local(domain: "example.com", user: "alice"))],
                    body: Self.body(content: Array("Subject: \(n)\n\nmessage \(n)\n".utf8)))
                mail.deliver(message) { result in
                    switch result {
                    case .success(let id): ids.mutate { $0.append(id) }
                    case .failure(let error): failures.mutate { $0.append("\(error)") }
                    }
                    group.leave()
                }
            }
            #expect(group.wait(timeout: .now() + 120) == .success, "deliveries did not complete within 120 s")
            mail.journal.settle()
            #expect(failures.get().isEmpty)
            #expect(ids.get().count == count)
            #expect(Set(ids.get()).count == count, "ids are distinct")
            #expect(directory.files(in: "mail/example.com/alice/new").count == count)
            #expect(directory.files(in: "mail/example.com/alice/tmp").isEmpty)
            let rows = try config.database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM mail") }
            #expect(rows == count)
        }
    }

    @Test("a spooled body is linked into every mailbox, flushed once, and the spool file removed")
    func spooledBody() throws {
        try Self.withMailStore { mail, config, directory in
            let spool = "\(mail.spoolRoot)/S1.1"
            let bytes = Array("Return-Path: <a@b.example>\n".utf8) + Self.content
            #expect(FileManager.default.createFile(atPath: spool, contents: Data(bytes)))
            _ = try Self.deliverAndWait(mail, InboundMessage(
                queueID: "S1.1", sender: "a@b.example",
                recipients: [
                    ("alice@example.com", .local(domain: "example.com", user: "alice")),
                    ("bob@example.com", .local(domain: "example.com", user: "bob")),
                    ("Alice@example.com", .local(domain: "example.com", user: "alice")),
                ],
                body: .file(path: spool, size: bytes.count)))
            #expect(!FileManager.default.fileExists(atPath: spool))
            for user in ["alice", "bob"] {
                let files = directory.files(in: "mail/example.com/\(user)/new")
                try #require(files.count == 1, "one copy for \(user)")
                let stored = Array(try Data(contentsOf: URL(fileURLWithPath: "\(directory.path)/mail/example.com/\(user)/new/\(files[0])")))
                #expect(stored == bytes)
            }
            let rows = try config.database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM mail") }
            #expect(rows == 2)
        }
    }

    @Test("after stop, deliveries fail instead of hanging")
    func afterStop() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let config = try ConfigStore(path: directory.databasePath)
        let mail = try MailStore(dataDirectory: directory.path, store: config, hostname: "h", logger: Logger(label: "test"))
        mail.start()
        mail.stop()
        let message = InboundMessage(
            queueID: "Q", sender: "a@b.example", recipients: [("alice@example.com", .local(domain: "example.com", user: "alice"))],
            body: Self.body())
        #expect(throws: DeliveryError.self) { _ = try Self.deliverAndWait(mail, message, timeout: 10) }
    }
}

/// A value shared with completion handlers on the writer thread.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func get() -> Value { lock.withLock { value } }
    func set(_ newValue: Value) { lock.withLock { value = newValue } }
    func mutate(_ body: (inout Value) -> Void) { lock.withLock { body(&value) } }
}
