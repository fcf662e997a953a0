import BerthCore
import Foundation
import GRDB
import Logging
import Testing
@testable import BerthStore

/// The IMAP/POP3 store: Maildir++ folders on disk plus the SQLite index, on real files.
@Suite("Maildir mailbox store")
struct MaildirMailboxStoreTests {
    static let alice = MailAccount(domain: "example.com", user: "alice")
    static let message = Array("Subject: hello\r\nFrom: bob@example.org\r\n\r\nHi Alice.\r\n".utf8)

    static func withStore(
        quota: Int? = nil, _ body: (MaildirMailboxStore, ConfigStore, TempDirectory) throws -> Void
    ) throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let config = try ConfigStore(path: directory.databasePath)
        let store = try MaildirMailboxStore(
            dataDirectory: directory.path, index: SQLiteMailIndex(database: config.database), hostname: "mx.example.com",
            quotaLimit: { _ in quota }, logger: Logger(label: "test.mailboxes"))
        try body(store, config, directory)
    }

    @Test("first use creates the six default folders with SPECIAL-USE, as Maildir++ directories")
    func defaults() throws {
        try Self.withStore { store, _, directory in
            let folders = try store.mailboxes(of: Self.alice)
            #expect(folders.map(\.name) == ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"])
            #expect(folders.first { $0.name == "Sent" }?.specialUse == .sent)
            #expect(folders.first { $0.name == "Junk" }?.specialUse == .junk)
            for folder in [".Sent", ".Drafts", ".Trash", ".Junk", ".Archive"] {
                #expect(directory.files(in: "mail/example.com/alice/\(folder)") == ["cur", "maildirfolder", "new", "tmp"])
            }
            #expect(directory.files(in: "mail/example.com/alice").contains("cur"))
            // A folder deleted later stays deleted.
            try store.deleteMailbox("Junk", of: Self.alice)
            #expect(try store.mailboxes(of: Self.alice).map(\.name).contains("Junk") == false)
        }
    }

    @Test("APPEND stores LF in cur/ with the flags in the name; served size counts CRLF")
    func append() throws {
        try Self.withStore { store, _, directory in
            let (validity, uid) = try store.append(
                .bytes(Self.message), to: "INBOX", flags: MessageFlags(system: [.seen, .flagged], keywords: ["$Label1"]),
                internalDate: 1_700_000_000, of: Self.alice)
            #expect(uid == 1)
            let snapshot = try store.snapshot("inbox", of: Self.alice)
            #expect(snapshot.mailbox.uidValidity == validity)
            #expect(snapshot.mailbox.uidNext == 2)
            #expect(snapshot.messages.count == 1)
            let record = snapshot.messages[0]
            #expect(record.size == Self.message.count)
            #expect(record.flags == MessageFlags(system: [.seen, .flagged], keywords: ["$Label1"]))
            #expect(record.internalDate == 1_700_000_000)
            let files = directory.files(in: "mail/example.com/alice/cur")
            #expect(files.count == 1)
            #expect(files.first?.hasSuffix(":2,FS") == true)
            let path = try #require(try store.messagePath(uid: uid, in: snapshot.mailbox.id, of: Self.alice))
            let stored = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            #expect(stored == Array("Subject: hello\nFrom: bob@example.org\n\nHi Alice.\n".utf8))
            #expect(directory.files(in: "mail/example.com/alice/tmp").isEmpty)
            #expect(throws: MailboxStoreError.noSuchMailbox("Nope")) {
                try store.append(.bytes(Self.message), to: "Nope", flags: .none, internalDate: nil, of: Self.alice)
            }
        }
    }

    @Test("STORE renames the file, raises MODSEQ, honours UNCHANGEDSINCE; changes() reports it")
    func flags() throws {
        try Self.withStore { store, _, directory in
            _ = try store.append(.bytes(Self.message), to: "INBOX", flags: .none, internalDate: nil, of: Self.alice)
            _ = try store.append(.bytes(Self.message), to: "INBOX", flags: .none, internalDate: nil, of: Self.alice)
            let before = try store.snapshot("INBOX", of: Self.alice)
            let inbox = before.mailbox.id
            let result = try store.storeFlags(
                .add(MessageFlags(system: [.seen, .deleted], keywords: ["Work"])), uids: [1], in: inbox, of: Self.alice,
                unchangedSince: nil)
            #expect(result.updated.map(\.uid) == [1])
            #expect(result.updated[0].modSeq > before.mailbox.highestModSeq)
            #expect(directory.files(in: "mail/example.com/alice/cur").filter { $0.hasSuffix(":2,ST") }.count == 1)
            let changes = try store.changes(in: inbox, of: Self.alice, since: before.mailbox.highestModSeq)
            #expect(changes.changed.map(\.uid) == [1])
            #expect(changes.expunged.isEmpty)
            // CONDSTORE: message 2 is unchanged since the snapshot, message 1 is not.
            let conditional = try store.storeFlags(
                .replace(MessageFlags(system: [.answered])), uids: [1, 2], in: inbox, of: Self.alice,
                unchangedSince: before.mailbox.highestModSeq)
            #expect(conditional.modified == [1])
            #expect(conditional.updated.map(\.uid) == [2])
            let removed = try store.storeFlags(
                .remove(MessageFlags(keywords: ["work"])), uids: [1], in: inbox, of: Self.alice, unchangedSince: nil)
            #expect(removed.updated.first?.flags == MessageFlags(system: [.seen, .deleted]), "keywords compare case-insensitively")
        }
    }

    @Test("COPY links, MOVE renames and removes atomically, EXPUNGE is recorded for QRESYNC")
    func copyMoveExpunge() throws {
        try Self.withStore { store, _, directory in
            for _ in 0..<3 { _ = try store.append(.bytes(Self.message), to: "INBOX", flags: .none, internalDate: nil, of: Self.alice) }
            let inbox = try store.snapshot("INBOX", of: Self.alice).mailbox
            let copied = try store.copy(uids: [1, 3, 99], from: inbox.id, to: "Archive", move: false, of: Self.alice)
            #expect(copied.uids.map(\.source) == [1, 3])
            #expect(copied.uids.map(\.destination) == [1, 2])
            #expect(copied.uidValidity == (try store.snapshot("Archive", of: Self.alice)).mailbox.uidValidity)
            #expect(directory.files(in: "mail/example.com/alice/.Archive/cur").count == 2)
            let moved = try store.copy(uids: [2], from: inbox.id, to: "Trash", move: true, of: Self.alice)
            #expect(moved.uids.map(\.destination) == [1])
            #expect(try store.snapshot("INBOX", of: Self.alice).messages.map(\.uid) == [1, 3])
            #expect(directory.files(in: "mail/example.com/alice/.Trash/cur").count == 1)
            #expect(directory.files(in: "mail/example.com/alice/cur").count == 2)
            let expunged = try store.expunge(uids: [3, 7], in: inbox.id, of: Self.alice)
            #expect(expunged == [3])
            #expect(directory.files(in: "mail/example.com/alice/cur").count == 1)
            let changes = try store.changes(in: inbox.id, of: Self.alice, since: inbox.highestModSeq)
            #expect(changes.expunged == [2, 3])
            #expect(try store.quota(of: Self.alice).messages == 4)
        }
    }

    @Test("CREATE, RENAME with children, DELETE; bad names refused")
    func folders() throws {
        try Self.withStore { store, _, directory in
            _ = try store.createMailbox("Projects/", of: Self.alice)
            _ = try store.createMailbox("Projects/v1.2 Ünïcode", of: Self.alice)
            #expect(directory.files(in: "mail/example.com/alice").contains(".Projects.v1&AC4-2 &ANw-n&AO8-code"))
            #expect(throws: MailboxStoreError.mailboxExists("Projects")) { try store.createMailbox("Projects", of: Self.alice) }
            #expect(throws: MailboxStoreError.self) { try store.createMailbox("a//b", of: Self.alice) }
            #expect(throws: MailboxStoreError.self) { try store.createMailbox("../x", of: Self.alice) }
            let before = try store.snapshot("Projects/v1.2 Ünïcode", of: Self.alice).mailbox
            try store.renameMailbox("Projects", to: "Work", of: Self.alice)
            let names = try store.mailboxes(of: Self.alice).map(\.name)
            #expect(names.contains("Work") && names.contains("Work/v1.2 Ünïcode") && !names.contains("Projects"))
            #expect(try store.snapshot("Work/v1.2 Ünïcode", of: Self.alice).mailbox.id == before.id)
            #expect(throws: MailboxStoreError.cannotDelete("Work", reason: "it has child folders, delete them first")) {
                try store.deleteMailbox("Work", of: Self.alice)
            }
            try store.deleteMailbox("Work/v1.2 Ünïcode", of: Self.alice)
            try store.deleteMailbox("Work", of: Self.alice)
            #expect(!directory.files(in: "mail/example.com/alice").contains { $0.hasPrefix(".Work") })
            #expect(throws: MailboxStoreError.cannotDelete("INBOX", reason: "INBOX cannot be deleted")) {
                try store.deleteMailbox("inbox", of: Self.alice)
            }
        }
    }

    @Test("RENAME INBOX moves its messages into a new folder and leaves INBOX empty")
    func renameInbox() throws {
        try Self.withStore { store, _, _ in
            _ = try store.append(.bytes(Self.message), to: "INBOX", flags: .none, internalDate: nil, of: Self.alice)
            try store.renameMailbox("INBOX", to: "Old", of: Self.alice)
            #expect(try store.snapshot("INBOX", of: Self.alice).messages.isEmpty)
            #expect(try store.snapshot("Old", of: Self.alice).messages.count == 1)
        }
    }

    @Test("quota: an APPEND or COPY past the limit is refused and stores nothing")
    func quota() throws {
        try Self.withStore(quota: Self.message.count * 2) { store, _, directory in
            _ = try store.append(.bytes(Self.message), to: "INBOX", flags: .none, internalDate: nil, of: Self.alice)
            _ = try store.append(.bytes(Self.message), to: "INBOX", flags: .none, internalDate: nil, of: Self.alice)
            #expect(throws: MailboxStoreError.overQuota) {
                try store.append(.bytes(Self.message), to: "INBOX", flags: .none, internalDate: nil, of: Self.alice)
            }
            let inbox = try store.snapshot("INBOX", of: Self.alice).mailbox
            #expect(throws: MailboxStoreError.overQuota) {
                try store.copy(uids: [1], from: inbox.id, to: "Archive", move: false, of: Self.alice)
            }
            _ = try store.copy(uids: [1], from: inbox.id, to: "Archive", move: true, of: Self.alice)
            #expect(directory.files(in: "mail/example.com/alice/cur").count == 1)
            #expect(directory.files(in: "mail/example.com/alice/tmp").isEmpty)
            let usage = try store.quota(of: Self.alice)
            #expect(usage == QuotaUsage(usedBytes: Self.message.count * 2, messages: 2, limitBytes: Self.message.count * 2))
        }
    }

    @Test("observers hear of changes to their folder only; a maildrop has one holder")
    func observeAndLock() throws {
        try Self.withStore { store, _, _ in
            let inbox = try store.snapshot("INBOX", of: Self.alice).mailbox
            let heard = LockedCounter()
            let observation = store.observe(inbox.id, of: Self.alice) { heard.add() }
            _ = try store.append(.bytes(Self.message), to: "INBOX", flags: .none, internalDate: nil, of: Self.alice)
            _ = try store.append(.bytes(Self.message), to: "Sent", flags: .none, internalDate: nil, of: Self.alice)
            #expect(heard.value == 1)
            observation.cancel()
            _ = try store.append(.bytes(Self.message), to: "INBOX", flags: .none, internalDate: nil, of: Self.alice)
            #expect(heard.value == 1)
            #expect(store.notifier.observerCount == 0)

            let held = try #require(store.lockMaildrop(of: Self.alice))
            #expect(store.lockMaildrop(of: Self.alice) == nil)
            held.cancel()
            #expect(store.lockMaildrop(of: Self.alice) != nil, "released (and the new hold released when dropped)")
            #expect(store.lockMaildrop(of: Self.alice) != nil)
        }
    }

    @Test("reconcile: files mutt added, renamed or removed, and folders made on disk, are taken in")
    func reconcile() throws {
        try Self.withStore { store, config, directory in
            _ = try store.append(.bytes(Self.message), to: "INBOX", flags: .none, internalDate: nil, of: Self.alice)
            _ = try store.append(.bytes(Self.message), to: "INBOX", flags: .none, internalDate: nil, of: Self.alice)
            let inbox = try store.snapshot("INBOX", of: Self.alice).mailbox
            // mutt marks message 1 seen (rename) and deletes message 2. (By UID: names do
            // not sort in delivery order, their microseconds are not zero-padded.)
            let first = try #require(try store.messagePath(uid: 1, in: inbox.id, of: Self.alice))
            let second = try #require(try store.messagePath(uid: 2, in: inbox.id, of: Self.alice))
            try FileManager.default.moveItem(atPath: first, toPath: first + "S")
            try FileManager.default.removeItem(atPath: second)
            // A message another program delivered, and a folder made by hand.
            try Data("Subject: x\n\nnew\n".utf8).write(to: URL(fileURLWithPath: directory.path + "/mail/example.com/alice/new/1700000000.M1P1Q1.other"))
            try MaildirMailboxStore.makeMaildir(directory.path + "/mail/example.com/alice/.Lists", isFolder: true)
            let layout = MaildirLayout(mailRoot: directory.path + "/mail")
            let report = try MaildirMailboxStore.reconcile(Self.alice, layout: layout, index: store.index)
            #expect(report.relocated == 1)
            #expect(report.dropped.count == 1)
            #expect(report.indexed.count == 1)
            #expect(report.foldersAdded == ["Lists"])
            let after = try store.snapshot("INBOX", of: Self.alice)
            #expect(after.messages.map(\.uid) == [1, 3])
            #expect(after.messages.last?.size == 16 + 3)
            #expect(try store.messagePath(uid: 1, in: inbox.id, of: Self.alice)?.hasSuffix(":2,S") == true)
            #expect(after.messages.first?.flags.system == .seen, "the flags mutt gave the file win (QA)")
            let again = try MaildirMailboxStore.reconcile(Self.alice, layout: layout, index: store.index)
            #expect(again == MaildirMailboxStore.ReconcileReport())
            _ = config
        }
    }

    @Test("reindex: new UIDVALIDITYs, and keywords, special use and subscriptions carried over from the old rows")
    func reindexCarriesOverIndexOnlyState() throws {
        try Self.withStore { store, _, directory in
            let labelled = MessageFlags(system: .seen, keywords: ["$Label1", "Work"])
            _ = try store.append(.bytes(Self.message), to: "INBOX", flags: labelled, internalDate: nil, of: Self.alice)
            _ = try store.append(.bytes(Self.message), to: "INBOX", flags: .none, internalDate: nil, of: Self.alice)
            _ = try store.append(
                .bytes(Self.message), to: "INBOX", flags: MessageFlags(keywords: ["Moved"]), internalDate: nil, of: Self.alice)
            // Another program moves the third file into Archive: its keywords follow its base name.
            let inboxID = try store.snapshot("INBOX", of: Self.alice).mailbox.id
            let moved = try #require(try store.messagePath(uid: 3, in: inboxID, of: Self.alice))
            try FileManager.default.moveItem(
                atPath: moved, toPath: directory.path + "/mail/example.com/alice/.Archive/cur/" + URL(fileURLWithPath: moved).lastPathComponent)
            // Sent renamed keeps \Sent; a new Sent beside it has none; Junk unsubscribed.
            try store.renameMailbox("Sent", to: "Sent Items", of: Self.alice)
            _ = try store.createMailbox("Sent", of: Self.alice)
            try store.setSubscribed("Junk", false, of: Self.alice)
            let before = Dictionary(uniqueKeysWithValues: try store.index.mailboxes(of: Self.alice).map { ($0.name, $0) })

            let layout = MaildirLayout(mailRoot: directory.path + "/mail")
            let (report, lost) = try MaildirMailboxStore.reindex(Self.alice, layout: layout, index: store.index)
            #expect(lost == nil)
            #expect(report.indexed.count == 3)
            let after = Dictionary(uniqueKeysWithValues: try store.index.mailboxes(of: Self.alice).map { ($0.name, $0) })
            #expect(Set(after.keys) == Set(before.keys))
            for (name, folder) in after {
                #expect(folder.uidValidity > before[name]!.uidValidity, "\(name): a new UIDVALIDITY")
                #expect(folder.specialUse == before[name]!.specialUse, "\(name)")
                #expect(folder.subscribed == (name != "Junk"), "\(name)")
            }
            #expect(after["Sent Items"]?.specialUse == .sent)
            #expect(after["Sent"]?.specialUse == nil)
            let inbox = try store.index.messages(in: after["INBOX"]!.id).map(\.record.flags)
            #expect(inbox == [labelled, .none])
            let archive = try store.index.messages(in: after["Archive"]!.id).map(\.record.flags)
            #expect(archive == [MessageFlags(keywords: ["Moved"])])
        }
    }

    @Test("\\Recent: delivered messages wait in new/ until one session claims them")
    func recent() throws {
        try Self.withStore { store, config, directory in
            let mail = try MailStore(dataDirectory: directory.path, store: config, hostname: "mx.example.com", logger: Logger(label: "t"))
            mail.start()
            defer { mail.stop() }
            for n in 0..<2 {
                _ = try MailStoreTests.deliverAndWait(mail, InboundMessage(
                    queueID: "R\(n)", sender: MailStoreTests.sender,
                    recipients: [("alice@example.com", .local(domain: "example.com", user: "alice"))], body: MailStoreTests.body()))
            }
            let inbox = try store.snapshot("INBOX", of: Self.alice).mailbox
            #expect(try store.status("INBOX", of: Self.alice).recent == 2)
            #expect(try store.claimRecent(in: inbox.id, of: Self.alice) == [1, 2])
            #expect(try store.claimRecent(in: inbox.id, of: Self.alice) == [], "claimed once")
            #expect(try store.status("INBOX", of: Self.alice).recent == 0)
            #expect(directory.files(in: "mail/example.com/alice/new").isEmpty)
            #expect(directory.files(in: "mail/example.com/alice/cur").allSatisfy { $0.hasSuffix(":2,") })
            #expect(try store.messagePath(uid: 1, in: inbox.id, of: Self.alice) != nil)
        }
    }

    @Test("a file deleted behind the store's back is expunged when a session asks for it")
    func vanishedFile() throws {
        try Self.withStore { store, _, directory in
            _ = try store.append(.bytes(Self.message), to: "INBOX", flags: .none, internalDate: nil, of: Self.alice)
            let inbox = try store.snapshot("INBOX", of: Self.alice).mailbox
            let heard = LockedCounter()
            let observation = store.observe(inbox.id, of: Self.alice) { heard.add() }
            defer { observation.cancel() }
            let cur = directory.path + "/mail/example.com/alice/cur"
            for name in directory.files(in: "mail/example.com/alice/cur") { try FileManager.default.removeItem(atPath: cur + "/" + name) }
            #expect(try store.messagePath(uid: 1, in: inbox.id, of: Self.alice) == nil)
            #expect(try store.snapshot("INBOX", of: Self.alice).messages.isEmpty)
            #expect(try store.changes(in: inbox.id, of: Self.alice, since: inbox.highestModSeq).expunged == [1])
            #expect(heard.value == 1)
        }
    }

    @Test("names other programs made: W= trusted only when S= is the file's size")
    func foreignSizes() throws {
        try Self.withStore { store, _, directory in
            let new = directory.path + "/mail/example.com/alice/new/"
            try FileManager.default.createDirectory(atPath: new, withIntermediateDirectories: true)
            let text = "Subject: x\n\nbody\n"  // 17 octets, 3 LFs
            try Data(text.utf8).write(to: URL(fileURLWithPath: new + "1795999990.a.other,S=17,W=9999"))
            try Data(text.utf8).write(to: URL(fileURLWithPath: new + "1795999991.b.other,S=17,W=20"))
            try Data(text.utf8).write(to: URL(fileURLWithPath: new + "1795999992.c.other,S=99999"))
            let layout = MaildirLayout(mailRoot: directory.path + "/mail")
            _ = try MaildirMailboxStore.reconcile(Self.alice, layout: layout, index: store.index)
            #expect(try store.snapshot("INBOX", of: Self.alice).messages.map(\.size) == [20, 20, 20])
        }
    }

    @Test("Maildir++ names: levels in modified UTF-7, dots escaped, INBOX canonical")
    func layout() {
        #expect(MaildirLayout.directoryName(of: "Sent") == ".Sent")
        #expect(MaildirLayout.directoryName(of: "A/B.C") == ".A.B&AC4-C")
        #expect(MaildirLayout.folderName(ofDirectory: ".A.B&AC4-C") == "A/B.C")
        #expect(MaildirLayout.folderName(ofDirectory: ".DELETED.4") == nil)
        #expect(MaildirLayout.folderName(ofDirectory: "..") == nil)
        #expect(MaildirLayout.canonical("inbox") == "INBOX")
        #expect(MaildirLayout.canonical("Inbox/Sub") == "INBOX/Sub")
        #expect(MaildirFileName("123.M1P2Q3.host,S=10,W=12:2,FS").crlfSize == 12)
        #expect(MaildirFileName("123.M1P2Q3.host,S=10,W=12:2,FS").base == "123.M1P2Q3.host,S=10,W=12")
        #expect(MaildirFileName("123.M1P2Q3.host").info == nil)
        #expect(MessageFlags(system: [.seen, .draft, .answered, .deleted, .flagged, .forwarded]).maildirInfo == "DFPRST")
    }
}

final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
