import BerthCore
import Foundation
import Testing
@testable import BerthStore

/// The outbound queue's rows: per-recipient verdicts, the file leaves with the last one.
@Suite("Outbound queue store")
struct QueueStoreTests {
    /// One message for two remote recipients, queued through the Maildir writer.
    static func withQueued(_ body: (ConfigStore, MailStore, [QueueEntry]) throws -> Void) throws {
        try MailStoreTests.withMailStore { mail, config, _ in
            let told = Locked<[QueueEntry]>([])
            mail.onQueued = { entries in told.set(told.get() + entries) }
            _ = try MailStoreTests.deliverAndWait(mail, InboundMessage(
                queueID: "S1.1", sender: "alice@example.com",
                recipients: [("bob@remote.example", .remote), ("carol@remote.example", .remote)],
                body: MailStoreTests.body(sender: "alice@example.com")))
            try body(config, mail, told.get())
        }
    }

    @Test("the writer tells the queue what it queued, with one row per recipient")
    func queuedRowsAndCallback() throws {
        try Self.withQueued { config, _, told in
            #expect(told.count == 1)
            #expect(told.first?.queueID == "S1.1")
            #expect(told.first?.recipients.map(\.address) == ["bob@remote.example", "carol@remote.example"])
            let pending = try config.pendingQueue()
            #expect(pending.map(\.queueID) == told.map(\.queueID))
            #expect(pending.first?.recipients.map(\.row) == told.first?.recipients.map(\.row))
            let listed = try config.queuedMessages()
            #expect(listed.map(\.id) == ["S1.1"])
            #expect(listed.first?.recipients.map(\.state) == [.pending, .pending])
            let depth = try config.queueDepth()
            #expect(depth.messages == 1 && depth.recipients == 2)
        }
    }

    @Test("a deferred recipient keeps the file; the last verdict removes message and file path")
    func verdicts() throws {
        try Self.withQueued { config, _, told in
            let entry = try #require(told.first)
            let later = Date().addingTimeInterval(600)
            let first = try config.applyDeliveryResults([
                RecipientUpdate(row: entry.recipients[0].row, outcome: .delivered, attempts: 1, lastError: nil, warned: false),
                RecipientUpdate(row: entry.recipients[1].row, outcome: .deferred(until: later), attempts: 1, lastError: "451 try later", warned: false),
            ])
            #expect(first.isEmpty)
            let listed = try #require(try config.queuedMessages(queueID: "S1.1").first)
            #expect(listed.recipients.map(\.state) == [.delivered, .pending])
            #expect(listed.recipients[1].lastError == "451 try later")
            #expect(abs((listed.recipients[1].nextAttemptAt ?? .distantPast).timeIntervalSince(later)) < 0.01)
            #expect(try config.pendingQueue().first?.recipients.map(\.address) == ["carol@remote.example"])

            let last = try config.applyDeliveryResults([
                RecipientUpdate(row: entry.recipients[1].row, outcome: .bounced, attempts: 2, lastError: "550 no", warned: false),
            ])
            #expect(last == [entry.path])
            #expect(try config.queuedMessages().isEmpty)
            let after = try config.queueDepth()
            #expect(after.messages == 0 && after.recipients == 0)
        }
    }

    @Test("retry makes pending recipients due now; delete drops the message; unknown ids are not found")
    func retryAndDelete() throws {
        try Self.withQueued { config, _, told in
            let entry = try #require(told.first)
            _ = try config.applyDeliveryResults([
                RecipientUpdate(row: entry.recipients[0].row, outcome: .deferred(until: .distantFuture), attempts: 1, lastError: "x", warned: false),
            ])
            let now = Date()
            #expect(try config.retryQueued(queueID: "S1.1", at: now) == 2)
            #expect(try config.pendingQueue().first?.recipients.allSatisfy { abs($0.nextAttemptAt.timeIntervalSince(now)) < 0.01 } == true)
            #expect(throws: BindingsError.self) { try config.retryQueued(queueID: "nope") }
            #expect(try config.deleteQueued(queueID: "S1.1") == entry.path)
            #expect(try config.pendingQueue().isEmpty)
            #expect(throws: BindingsError.self) { try config.deleteQueued(queueID: "S1.1") }
        }
    }

    @Test("routes and DKIM keys are stored and replaced")
    func routesAndKeys() throws {
        try MailStoreTests.withMailStore { _, config, _ in
            try config.saveRoute(OutboundRoute(domain: "partner.example", host: "10.0.0.5", port: 2525))
            try config.saveRoute(OutboundRoute(domain: "partner.example", host: "10.0.0.6"))
            #expect(try config.routes() == [OutboundRoute(domain: "partner.example", host: "10.0.0.6")])
            try config.deleteRoute(domain: "PARTNER.example")
            #expect(throws: BindingsError.self) { try config.deleteRoute(domain: "partner.example") }

            #expect(throws: BindingsError.self) {
                try config.replaceDKIMKeys(domain: "nowhere.example", with: [])
            }
            try config.saveDomain(Domain(name: "example.org"), creating: true) { _, _ in }
            let key = StoredDKIMKey(domain: "example.org", selector: "s1", algorithm: "ed25519-sha256", privateKey: "k", createdAt: Date())
            try config.replaceDKIMKeys(domain: "example.org", with: [key])
            #expect(try config.dkimKeys(domain: "example.org").map(\.selector) == ["s1"])
            try config.deleteDomain("example.org")
            #expect(try config.dkimKeys(domain: "example.org").isEmpty, "keys go with their domain")
        }
    }
}

@Suite("Maildir flush and truncated files")
struct TruncatedFileTests {
    @Test("a file shorter than its S= size is truncated; names without S= never are")
    func truncatedByName() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let full = directory.path + "/1.M1P1Q1.host,S=5"
        let short = directory.path + "/1.M1P1Q2.host,S=50:2,S"
        let unnamed = directory.path + "/plain"
        // Another program's name (a Dovecot Maildir with compressed files has S= above the
        // file's size): never called truncated, never removed (QA).
        let foreign = directory.path + "/1795999996.hand4.otherhost,S=99999"
        for path in [full, short, unnamed, foreign] { try Data("hello".utf8).write(to: URL(fileURLWithPath: path)) }
        #expect(!MailStore.isTruncated(full))
        #expect(MailStore.isTruncated(short))
        #expect(!MailStore.isTruncated(unnamed))
        #expect(!MailStore.isTruncated(foreign))
    }

    @Test("recovery removes a truncated message and drops its row")
    func recoveryRemovesTruncated() throws {
        try MailStoreRecoveryTests.withDelivered { config, directory, _ in
            let path = try #require(try MailStoreRecoveryTests.indexedPaths(config).first)
            // A crash before the batch's flush: the rename reached the disk, the data did not.
            try Data().write(to: URL(fileURLWithPath: path))
            let report = try MailStore.recover(dataDirectory: directory.path, store: config, logger: MailStoreRecoveryTests.logger)
            #expect(report.removedTruncated == [path])
            #expect(report.droppedRows == [path])
            #expect(try MailStoreRecoveryTests.indexedPaths(config).isEmpty)
        }
    }
}
