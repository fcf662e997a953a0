import BerthCore
import Foundation
import GRDB

/// The mail index in the server's SQLite database (tables `mailbox`, `mail`, `expunged`).
/// Each call is one transaction; the Maildir writer's deliveries join the same tables
/// (`insertDelivered`) inside its batch transaction.
public struct SQLiteMailIndex: MailIndex {
    let database: DatabasePool

    public init(database: DatabasePool) {
        self.database = database
    }

    static func registerMigrations(_ migrator: inout DatabaseMigrator) {
        // Issue 8: folders with UIDVALIDITY/UIDNEXT/HIGHESTMODSEQ, messages with UID, flags,
        // keywords, MODSEQ and file; expunges remembered for QRESYNC. The old `message`
        // table goes: start-up recovery indexes every Maildir file that has no row.
        migrator.registerMigration("v5-mail-index") { db in
            try db.create(table: "mailbox") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("domain", .text).notNull()
                t.column("user", .text).notNull()
                t.column("name", .text).notNull()
                t.column("specialUse", .text)
                t.column("subscribed", .boolean).notNull().defaults(to: true)
                t.column("uidValidity", .integer).notNull()
                t.column("uidNext", .integer).notNull().defaults(to: 1)
                t.column("highestModSeq", .integer).notNull().defaults(to: 1)
                t.uniqueKey(["domain", "user", "name"])
            }
            try db.create(table: "mail", options: .withoutRowID) { t in
                t.column("mailbox", .integer).notNull().references("mailbox", onDelete: .cascade)
                t.column("uid", .integer).notNull()
                t.column("file", .text).notNull()
                t.column("flags", .integer).notNull()
                t.column("keywords", .text).notNull().defaults(to: "")
                t.column("internalDate", .double).notNull()
                t.column("size", .integer).notNull()
                t.column("modSeq", .integer).notNull()
                t.primaryKey(["mailbox", "uid"])
            }
            try db.create(index: "mailByModSeq", on: "mail", columns: ["mailbox", "modSeq"])
            try db.create(table: "expunged", options: .withoutRowID) { t in
                t.column("mailbox", .integer).notNull().references("mailbox", onDelete: .cascade)
                t.column("uid", .integer).notNull()
                t.column("modSeq", .integer).notNull()
                t.primaryKey(["mailbox", "uid"])
            }
            try db.drop(table: "message")
            try db.alter(table: "user") { t in
                t.add(column: "quotaBytes", .integer)
            }
        }
    }

    // MARK: Folders

    public func accounts() throws -> [MailAccount] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT DISTINCT domain, user FROM mailbox ORDER BY domain, user").map {
                MailAccount(domain: $0["domain"], user: $0["user"])
            }
        }
    }

    public func mailboxes(of account: MailAccount) throws -> [MailboxInfo] {
        try database.read { db in
            try Row.fetchAll(
                db.cachedStatement(sql: "SELECT \(Self.mailboxColumns) FROM mailbox WHERE domain = ? AND user = ? ORDER BY name <> 'INBOX', name"),
                arguments: [account.domain, account.user]
            ).map(Self.mailbox)
        }
    }

    public func mailbox(named name: String, of account: MailAccount) throws -> MailboxInfo? {
        try database.read { db in try Self.mailbox(named: name, of: account, db) }
    }

    public func mailbox(id: Int64, of account: MailAccount) throws -> MailboxInfo? {
        try database.read { db in try Self.mailbox(id: id, of: account, db) }
    }

    public func contents(ofMailboxNamed name: String, of account: MailAccount) throws -> (mailbox: MailboxInfo, messages: [IndexedMessage])? {
        try database.read { db in
            guard let folder = try Self.mailbox(named: name, of: account, db) else { return nil }
            return (folder, try Self.messages(db, Self.folderMessagesSQL, [folder.id]))
        }
    }

    public func messages(_ uids: [UInt32], inMailbox id: Int64, of account: MailAccount) throws -> (mailbox: MailboxInfo, messages: [IndexedMessage])? {
        try database.read { db in
            guard let folder = try Self.mailbox(id: id, of: account, db) else { return nil }
            return (folder, try Self.messages(uids, in: id, db))
        }
    }

    public func changes(
        inMailbox id: Int64, of account: MailAccount, since modSeq: UInt64
    ) throws -> (mailbox: MailboxInfo, changed: [MessageRecord], expunged: [UInt32])? {
        try database.read { db in
            guard let folder = try Self.mailbox(id: id, of: account, db) else { return nil }
            // Nothing happened since: the common answer to a NOOP, without touching `mail`.
            guard folder.highestModSeq > modSeq else { return (folder, [], []) }
            let changed = try Self.messages(
                db, "SELECT \(Self.mailColumns) FROM mail WHERE mailbox = ? AND modSeq > ? ORDER BY uid", [id, Int64(modSeq)]
            ).map(\.record)
            let expunged = try Int64.fetchAll(
                db.cachedStatement(sql: "SELECT uid FROM expunged WHERE mailbox = ? AND modSeq > ? ORDER BY uid"), arguments: [id, Int64(modSeq)]
            ).map { UInt32($0) }
            return (folder, changed, expunged)
        }
    }

    public func createMailbox(_ name: String, specialUse: SpecialUse?, uidValidity: UInt32, of account: MailAccount) throws -> MailboxInfo {
        try database.write { db in try Self.createMailbox(name, specialUse: specialUse, uidValidity: uidValidity, of: account, db) }
    }

    static func createMailbox(
        _ name: String, specialUse: SpecialUse?, uidValidity: UInt32, of account: MailAccount, _ db: Database
    ) throws -> MailboxInfo {
        let exists = try Bool.fetchOne(
            db, sql: "SELECT 1 FROM mailbox WHERE domain = ? AND user = ? AND name = ?",
            arguments: [account.domain, account.user, name]) ?? false
        if exists { throw MailboxStoreError.mailboxExists(name) }
        try db.execute(
            sql: "INSERT INTO mailbox(domain, user, name, specialUse, uidValidity) VALUES (?, ?, ?, ?, ?)",
            arguments: [account.domain, account.user, name, specialUse?.rawValue, Int64(uidValidity)])
        return MailboxInfo(id: db.lastInsertedRowID, name: name, specialUse: specialUse, uidValidity: uidValidity)
    }

    public func deleteMailbox(id: Int64) throws {
        try database.write { db in
            try db.execute(sql: "DELETE FROM mail WHERE mailbox = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM expunged WHERE mailbox = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM mailbox WHERE id = ?", arguments: [id])
        }
    }

    public func renameMailboxes(_ renames: [(id: Int64, name: String)]) throws {
        try database.write { db in
            // Two steps, so that renaming A→B and B→C in one go never collides on the way.
            for rename in renames {
                try db.execute(sql: "UPDATE mailbox SET name = ? WHERE id = ?", arguments: ["\u{1}renaming \(rename.id)", rename.id])
            }
            for rename in renames {
                try db.execute(sql: "UPDATE mailbox SET name = ? WHERE id = ?", arguments: [rename.name, rename.id])
            }
        }
    }

    public func setSubscribed(id: Int64, _ subscribed: Bool) throws {
        try database.write { db in
            try db.execute(sql: "UPDATE mailbox SET subscribed = ? WHERE id = ?", arguments: [subscribed, id])
        }
    }

    // MARK: Messages

    public func messages(in mailboxID: Int64) throws -> [IndexedMessage] {
        try database.read { db in
            try Self.messages(db, Self.folderMessagesSQL, [mailboxID])
        }
    }

    public func unclaimedMessages(in mailboxID: Int64) throws -> [IndexedMessage] {
        try database.read { db in
            try Self.messages(db, "SELECT \(Self.mailColumns) FROM mail WHERE mailbox = ? AND file LIKE 'new/%' ORDER BY uid", [mailboxID])
        }
    }

    public func status(of mailboxID: Int64) throws -> (messages: Int, unseen: Int, deleted: Int, size: Int, recent: Int) {
        try database.read { db in
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT COUNT(*) AS messages, COALESCE(SUM((flags & ?) = 0), 0) AS unseen,
                           COALESCE(SUM((flags & ?) <> 0), 0) AS deleted, COALESCE(SUM(size), 0) AS size,
                           COALESCE(SUM(file LIKE 'new/%'), 0) AS recent
                    FROM mail WHERE mailbox = ?
                    """,
                arguments: [Int(MessageFlags.System.seen.rawValue), Int(MessageFlags.System.deleted.rawValue), mailboxID])!
            return (row["messages"], row["unseen"], row["deleted"], row["size"], row["recent"])
        }
    }

    public func insert(_ messages: [NewIndexedMessage], into mailboxID: Int64) throws -> [UInt32] {
        try database.write { db in try Self.insert(messages, into: mailboxID, db) }
    }

    static func insert(_ messages: [NewIndexedMessage], into mailboxID: Int64, _ db: Database) throws -> [UInt32] {
        guard !messages.isEmpty else { return [] }
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT uidNext, highestModSeq FROM mailbox WHERE id = ?"), arguments: [mailboxID]) else {
            throw MailboxStoreError.mailboxGone
        }
        var uid: Int64 = row["uidNext"]
        var modSeq: Int64 = row["highestModSeq"]
        var uids: [UInt32] = []
        let statement = try db.cachedStatement(
            sql: "INSERT INTO mail(mailbox, uid, file, flags, keywords, internalDate, size, modSeq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        for message in messages {
            modSeq += 1
            try statement.execute(arguments: [
                mailboxID, uid, message.file, Int(message.flags.system.rawValue), message.flags.keywords.joined(separator: " "),
                message.internalDate, message.size, modSeq,
            ])
            uids.append(UInt32(uid))
            uid += 1
        }
        try db.cachedStatement(sql: "UPDATE mailbox SET uidNext = ?, highestModSeq = ? WHERE id = ?")
            .execute(arguments: [uid, modSeq, mailboxID])
        return uids
    }

    public func update(_ changes: [(uid: UInt32, flags: MessageFlags, file: String)], in mailboxID: Int64) throws -> [MessageRecord] {
        guard !changes.isEmpty else { return [] }
        return try database.write { db in
            var modSeq = try Self.highestModSeq(of: mailboxID, db)
            var records: [MessageRecord] = []
            let statement = try db.cachedStatement(
                sql: "UPDATE mail SET flags = ?, keywords = ?, file = ?, modSeq = ? WHERE mailbox = ? AND uid = ?")
            let select = try db.cachedStatement(sql: "SELECT \(Self.mailColumns) FROM mail WHERE mailbox = ? AND uid = ?")
            for change in changes {
                modSeq += 1
                try statement.execute(arguments: [
                    Int(change.flags.system.rawValue), change.flags.keywords.joined(separator: " "), change.file, modSeq,
                    mailboxID, Int64(change.uid),
                ])
                if db.changesCount > 0, let row = try Row.fetchOne(select, arguments: [mailboxID, Int64(change.uid)]) {
                    records.append(Self.message(row).record)
                }
            }
            try db.cachedStatement(sql: "UPDATE mailbox SET highestModSeq = ? WHERE id = ?").execute(arguments: [modSeq, mailboxID])
            return records
        }
    }

    public func relocate(_ changes: [(uid: UInt32, file: String)], in mailboxID: Int64) throws {
        guard !changes.isEmpty else { return }
        try database.write { db in
            let statement = try db.cachedStatement(sql: "UPDATE mail SET file = ? WHERE mailbox = ? AND uid = ?")
            for change in changes {
                try statement.execute(arguments: [change.file, mailboxID, Int64(change.uid)])
            }
        }
    }

    public func transfer(
        _ copies: [(source: UInt32, copy: NewIndexedMessage)], from source: Int64, to destination: Int64, removeFromSource: Bool
    ) throws -> [UInt32] {
        try database.write { db in
            let uids = try Self.insert(copies.map(\.copy), into: destination, db)
            if removeFromSource { _ = try Self.remove(uids: copies.map(\.source), from: source, db) }
            return uids
        }
    }

    public func remove(uids: [UInt32], from mailboxID: Int64) throws -> [UInt32] {
        try database.write { db in try Self.remove(uids: uids, from: mailboxID, db) }
    }

    static func remove(uids: [UInt32], from mailboxID: Int64, _ db: Database) throws -> [UInt32] {
        var modSeq = try highestModSeq(of: mailboxID, db)
        var removed: [UInt32] = []
        let delete = try db.cachedStatement(sql: "DELETE FROM mail WHERE mailbox = ? AND uid = ?")
        let record = try db.cachedStatement(sql: "INSERT OR REPLACE INTO expunged(mailbox, uid, modSeq) VALUES (?, ?, ?)")
        for uid in Set(uids).sorted() {
            try delete.execute(arguments: [mailboxID, Int64(uid)])
            guard db.changesCount > 0 else { continue }
            modSeq += 1
            try record.execute(arguments: [mailboxID, Int64(uid), modSeq])
            removed.append(uid)
        }
        if !removed.isEmpty {
            try db.cachedStatement(sql: "UPDATE mailbox SET highestModSeq = ? WHERE id = ?").execute(arguments: [modSeq, mailboxID])
        }
        return removed
    }

    public func usage(of account: MailAccount) throws -> (bytes: Int, messages: Int) {
        try database.read { db in
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT COALESCE(SUM(mail.size), 0) AS bytes, COUNT(mail.uid) AS messages
                    FROM mailbox JOIN mail ON mail.mailbox = mailbox.id WHERE mailbox.domain = ? AND mailbox.user = ?
                    """,
                arguments: [account.domain, account.user])!
            return (row["bytes"], row["messages"])
        }
    }

    // MARK: Delivery

    /// INBOX of `account` inside the writer's transaction, created if the account has none.
    static func inbox(of account: MailAccount, _ db: Database) throws -> Int64 {
        if let id = try Int64.fetchOne(
            db.cachedStatement(sql: "SELECT id FROM mailbox WHERE domain = ? AND user = ? AND name = 'INBOX'"),
            arguments: [account.domain, account.user])
        {
            return id
        }
        return try createMailbox(DefaultMailboxes.inbox, specialUse: nil, uidValidity: newUIDValidity(), of: account, db).id
    }

    /// Messages the Maildir writer just put in `new/` of an INBOX, inside its batch
    /// transaction (one commit and one flush for the whole batch).
    static func insertDelivered(_ message: NewIndexedMessage, for account: MailAccount, _ db: Database) throws -> Int64 {
        let inbox = try inbox(of: account, db)
        _ = try insert([message], into: inbox, db)
        return inbox
    }

    /// A fresh UIDVALIDITY: the time, as Dovecot does, so a rebuilt index never reuses one
    /// a client may have cached (RFC 3501 §2.3.1.1).
    static func newUIDValidity() -> UInt32 {
        let now = UInt32(truncatingIfNeeded: Int(Date().timeIntervalSince1970))
        return uidValidityLock.withLock {
            lastUIDValidity = max(now, lastUIDValidity &+ 1)
            return lastUIDValidity
        }
    }

    /// Makes every later UIDVALIDITY larger than `value` (a rebuilt index must not give a
    /// folder the UIDVALIDITY it had, even within the same second).
    public static func raiseUIDValidity(above value: UInt32) {
        uidValidityLock.withLock { lastUIDValidity = max(lastUIDValidity, value) }
    }

    private nonisolated(unsafe) static var lastUIDValidity: UInt32 = 0
    private static let uidValidityLock = NSLock()

    // MARK: Rows

    private static func highestModSeq(of mailboxID: Int64, _ db: Database) throws -> Int64 {
        guard let value = try Int64.fetchOne(db.cachedStatement(sql: "SELECT highestModSeq FROM mailbox WHERE id = ?"), arguments: [mailboxID]) else {
            throw MailboxStoreError.mailboxGone
        }
        return value
    }

    // Reads go through cached statements: compiling one (GRDB's authorizer and region
    // tracking included) costs more than running it, and a session's NOOP, SELECT or FETCH
    // runs the same few queries again and again.

    static let mailboxColumns = "id, name, specialUse, subscribed, uidValidity, uidNext, highestModSeq"

    static func mailbox(named name: String, of account: MailAccount, _ db: Database) throws -> MailboxInfo? {
        try Row.fetchOne(
            db.cachedStatement(sql: "SELECT \(mailboxColumns) FROM mailbox WHERE domain = ? AND user = ? AND name = ?"),
            arguments: [account.domain, account.user, name]
        ).map(mailbox)
    }

    static func mailbox(id: Int64, of account: MailAccount, _ db: Database) throws -> MailboxInfo? {
        try Row.fetchOne(
            db.cachedStatement(sql: "SELECT \(mailboxColumns) FROM mailbox WHERE id = ? AND domain = ? AND user = ?"),
            arguments: [id, account.domain, account.user]
        ).map(mailbox)
    }

    /// Messages of a query selecting `mailColumns`, decoded straight from the cursor.
    static func messages(_ db: Database, _ sql: String, _ arguments: StatementArguments) throws -> [IndexedMessage] {
        let cursor = try Row.fetchCursor(db.cachedStatement(sql: sql), arguments: arguments)
        var found: [IndexedMessage] = []
        while let row = try cursor.next() { found.append(message(row)) }
        return found
    }

    /// Those of `uids` the folder holds, in UID order.
    static func messages(_ uids: [UInt32], in mailboxID: Int64, _ db: Database) throws -> [IndexedMessage] {
        let statement = try db.cachedStatement(sql: "SELECT \(mailColumns) FROM mail WHERE mailbox = ? AND uid = ?")
        var found: [IndexedMessage] = []
        found.reserveCapacity(uids.count)
        var last: UInt32?
        for uid in uids.sorted() where uid != last {
            last = uid
            if let row = try Row.fetchOne(statement, arguments: [mailboxID, Int64(uid)]) { found.append(message(row)) }
        }
        return found
    }

    /// A row of `mailboxColumns`, read by position.
    static func mailbox(_ row: Row) -> MailboxInfo {
        MailboxInfo(
            id: row[0], name: row[1], specialUse: (row[2] as String?).flatMap(SpecialUse.init(rawValue:)),
            subscribed: row[3], uidValidity: UInt32(truncatingIfNeeded: row[4] as Int64),
            uidNext: UInt32(truncatingIfNeeded: row[5] as Int64),
            highestModSeq: UInt64(row[6] as Int64))
    }
    /// The `mail` columns every message query selects, in the order `message` reads them
    /// by position (a SELECT of a 300-message folder decodes 2,100 values: names cost).
    static let mailColumns = "uid, file, flags, keywords, internalDate, size, modSeq"
    /// Every message of a folder, in UID order.
    static let folderMessagesSQL = "SELECT \(mailColumns) FROM mail WHERE mailbox = ? ORDER BY uid"

    static func message(_ row: Row) -> IndexedMessage {
        let keywords: String = row[3]
        let flags = MessageFlags(
            system: MessageFlags.System(rawValue: UInt8(truncatingIfNeeded: row[2] as Int)),
            keywords: keywords.isEmpty ? [] : keywords.split(separator: " ").map(String.init))
        return IndexedMessage(
            record: MessageRecord(
                uid: UInt32(truncatingIfNeeded: row[0] as Int64), flags: flags, internalDate: row[4],
                size: row[5], modSeq: UInt64(row[6] as Int64)),
            file: row[1])
    }
}
