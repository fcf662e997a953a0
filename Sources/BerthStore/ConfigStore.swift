import BerthCore
import Foundation
import GRDB
import HummingbirdBcrypt

/// The configuration store: bindings, domains, users, settings, mailbox index.
/// SQLite through GRDB; every change is one transaction, then the change feed fires.
public final class ConfigStore: Sendable {
    public let database: DatabasePool
    public let changes = ChangeFeed()
    /// Domains and users in memory for SMTP; reloaded synchronously after each commit, so
    /// a user the API just created is known to the very next RCPT.
    public let directory = MailDirectory()
    /// bcrypt cost for stored passwords (2^10 rounds: ~50 ms a check on this class of machine).
    public static let passwordHashCost: UInt8 = 10

    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // WAL + NORMAL: a commit is durable at the next checkpoint; message bodies are
            // fsynced by the Maildir writer before any 250, the index can be rebuilt from them.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        database = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(database)
        try refreshDirectory()
        // The file holds password hashes and certificate passwords.
        chmod(path, 0o600)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "settings") { t in
                t.primaryKey("key", .text)
                t.column("value", .text).notNull()
            }
            // AUTOINCREMENT: port ids are never reused, even after deletion.
            try db.create(table: "portSequence") { t in
                t.autoIncrementedPrimaryKey("n")
            }
            try db.create(table: "port") { t in
                t.primaryKey("id", .text)
                t.column("position", .integer).notNull()
                t.column("body", .jsonText).notNull()
            }
            try db.create(table: "ipAddress") { t in
                t.primaryKey("address", .text)
                t.column("position", .integer).notNull()
                t.column("body", .jsonText).notNull()
            }
            try db.create(table: "domain") { t in
                t.primaryKey("name", .text)
                t.column("body", .jsonText).notNull()
            }
            try db.create(table: "user") { t in
                t.column("domain", .text).notNull().references("domain", onDelete: .cascade)
                t.column("name", .text).notNull()
                t.column("displayName", .text).notNull().defaults(to: "")
                t.column("passwordHash", .text).notNull()
                t.primaryKey(["domain", "name"])
            }
            try db.create(table: "message") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("domain", .text).notNull()
                t.column("user", .text).notNull()
                t.column("path", .text).notNull()
                t.column("size", .integer).notNull()
                t.column("receivedAt", .double).notNull()
            }
            try db.create(index: "messageMailbox", on: "message", columns: ["domain", "user"])
            try db.create(table: "queue") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("path", .text).notNull()
                t.column("sender", .text).notNull()
                t.column("recipients", .jsonText).notNull()
                t.column("size", .integer).notNull()
                t.column("authUser", .text)
                t.column("receivedAt", .double).notNull()
            }
        }
        // BINDINGS.md added connection limits and PROXY protocol to ports: stored ports get
        // the defaults written out, so every body in the table is a whole Port.
        migrator.registerMigration("v2-port-limits") { db in
            try db.execute(
                sql: """
                    UPDATE port SET body = json_insert(body,
                        '$.maxConnections', ?, '$.maxConnectionsPerClient', ?, '$.proxyProtocol', json('false'))
                    """,
                arguments: [Port.defaultMaxConnections, Port.defaultMaxConnectionsPerClient])
        }
        // BINDINGS.md, "Certificates (the library) and SNI". Ids come from their own
        // AUTOINCREMENT sequence, like port ids: never reused, even after a delete.
        migrator.registerMigration("v3-certificate-library") { db in
            try db.create(table: "certificateSequence") { t in
                t.autoIncrementedPrimaryKey("n")
            }
            try db.create(table: "certificate") { t in
                t.primaryKey("id", .text)
                t.column("certificatePath", .text).notNull().unique()
                t.column("privateKeyPath", .text)
                t.column("certificatePassword", .text)
                t.column("createdAt", .double).notNull()
            }
        }
        // Issue 6, outbound delivery: each queued recipient has its own state (delivered
        // or bounced exactly once), static routes, and the domains' DKIM keys.
        migrator.registerMigration("v4-outbound") { db in
            try db.alter(table: "queue") { t in
                t.add(column: "queueID", .text)
            }
            try db.execute(sql: "UPDATE queue SET queueID = 'Q' || id")
            try db.create(index: "queueByQueueID", on: "queue", columns: ["queueID"], unique: true)
            try db.create(table: "queueRecipient") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("queue", .integer).notNull().indexed().references("queue", onDelete: .cascade)
                t.column("address", .text).notNull()
                t.column("state", .text).notNull().defaults(to: "pending")
                t.column("attempts", .integer).notNull().defaults(to: 0)
                t.column("nextAttemptAt", .double).notNull()
                t.column("lastError", .text)
                t.column("warned", .boolean).notNull().defaults(to: false)
            }
            try db.execute(sql: """
                INSERT INTO queueRecipient(queue, address, nextAttemptAt)
                SELECT queue.id, json_each.value, queue.receivedAt FROM queue, json_each(queue.recipients)
                """)
            try db.create(table: "route") { t in
                t.primaryKey("domain", .text)
                t.column("body", .jsonText).notNull()
            }
            try db.create(table: "dkimKey") { t in
                t.column("domain", .text).notNull().references("domain", onDelete: .cascade)
                t.column("selector", .text).notNull()
                t.column("algorithm", .text).notNull()
                t.column("privateKey", .text).notNull()
                t.column("createdAt", .double).notNull()
                t.primaryKey(["domain", "selector"])
            }
        }
        SQLiteMailIndex.registerMigrations(&migrator)
        // Issue 9: the names an address book shows, and other addresses of a mailbox.
        migrator.registerMigration("v6-user-profile") { db in
            try db.alter(table: "user") { t in
                t.add(column: "givenName", .text).notNull().defaults(to: "")
                t.add(column: "surname", .text).notNull().defaults(to: "")
            }
            try db.create(table: "userAlias") { t in
                t.column("domain", .text).notNull()
                t.column("alias", .text).notNull()
                t.column("user", .text).notNull()
                t.primaryKey(["domain", "alias"])
                t.foreignKey(["domain", "user"], references: "user", columns: ["domain", "name"], onDelete: .cascade)
            }
            try db.create(index: "userAliasByUser", on: "userAlias", columns: ["domain", "user"])
        }
        return migrator
    }

    // MARK: Settings

    public func setting(_ key: String) throws -> String? {
        try database.read { db in try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = ?", arguments: [key]) }
    }

    public func setSetting(_ key: String, _ value: String) throws {
        try database.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)", arguments: [key, value])
        }
    }

    /// Settings key of the server settings (JSON).
    static let serverSettingsKey = "serverSettings"

    /// The server settings; defaults until first changed.
    public func serverSettings() throws -> ServerSettings {
        try database.read(Self.loadServerSettings)
    }

    static func loadServerSettings(_ db: Database) throws -> ServerSettings {
        guard let text = try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = ?", arguments: [serverSettingsKey])
        else { return ServerSettings() }
        return try JSONDecoder().decode(ServerSettings.self, from: Data(text.utf8))
    }

    /// Runs `change` on the current settings in one write transaction, validates the result
    /// (`Validation.validated`, which also makes it canonical) and stores it. If `change` or
    /// the validation throws, nothing is written. The change feed fires after a commit that
    /// changed anything, so running services re-read the settings.
    @discardableResult
    public func updateServerSettings(_ change: (inout ServerSettings) throws -> Void) throws -> ServerSettings {
        let (settings, changed): (ServerSettings, Bool) = try database.write { db in
            let before = try Self.loadServerSettings(db)
            var settings = before
            try change(&settings)
            settings = try Validation.validated(settings)
            guard settings != before else { return (settings, false) }
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            let body = String(decoding: try encoder.encode(settings), as: UTF8.self)
            try db.execute(
                sql: "INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)", arguments: [Self.serverSettingsKey, body])
            return (settings, true)
        }
        if changed { changes.notify() }
        return settings
    }

    // MARK: Bindings

    public func bindings() throws -> Bindings {
        try database.read(Self.loadBindings)
    }

    static func loadBindings(_ db: Database) throws -> Bindings {
        let decoder = JSONDecoder()
        let ports = try String.fetchAll(db, sql: "SELECT body FROM port ORDER BY position")
            .map { try decoder.decode(Port.self, from: Data($0.utf8)) }
        let addresses = try String.fetchAll(db, sql: "SELECT body FROM ipAddress ORDER BY position")
            .map { try decoder.decode(IPAddressEntry.self, from: Data($0.utf8)) }
        return Bindings(ports: ports, ipAddresses: addresses)
    }

    static func saveBindings(_ bindings: Bindings, _ db: Database) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        try db.execute(sql: "DELETE FROM port")
        for (position, port) in bindings.ports.enumerated() {
            let body = String(decoding: try encoder.encode(port), as: UTF8.self)
            try db.execute(sql: "INSERT INTO port(id, position, body) VALUES (?, ?, ?)", arguments: [port.id, position, body])
        }
        try db.execute(sql: "DELETE FROM ipAddress")
        for (position, entry) in bindings.ipAddresses.enumerated() {
            let body = String(decoding: try encoder.encode(entry), as: UTF8.self)
            try db.execute(
                sql: "INSERT INTO ipAddress(address, position, body) VALUES (?, ?, ?)",
                arguments: [entry.address, position, body])
        }
    }

    /// Runs `change` on the current bindings inside one write transaction. `change` mutates
    /// and validates; if it throws, nothing is written. `newPortID` hands out ids that are
    /// never reused. The change feed fires after the commit.
    public func updateBindings<T>(
        _ change: (inout Bindings, _ newPortID: () throws -> String) throws -> T
    ) throws -> T {
        let (result, changed): (T, Bool) = try database.write { db in
            var bindings = try Self.loadBindings(db)
            let before = bindings
            let value = try change(&bindings) {
                try db.execute(sql: "INSERT INTO portSequence DEFAULT VALUES")
                return String(db.lastInsertedRowID)
            }
            if bindings != before { try Self.saveBindings(bindings, db) }
            return (value, bindings != before)
        }
        if changed { changes.notify() }
        return result
    }

    /// Runs `change` on the current bindings without saving anything: the answer a real
    /// change would give, for a form that checks before it saves. New port ids are `new`.
    public func previewBindings<T>(_ change: (inout Bindings, _ newPortID: () throws -> String) throws -> T) throws -> T {
        var bindings = try bindings()
        return try change(&bindings) { "new" }
    }

    // MARK: Domains and users

    public func domains() throws -> [Domain] {
        try database.read(Self.loadDomains)
    }

    static func loadDomains(_ db: Database) throws -> [Domain] {
        try String.fetchAll(db, sql: "SELECT body FROM domain ORDER BY name").map {
            try JSONDecoder().decode(Domain.self, from: Data($0.utf8))
        }
    }

    public func domain(_ name: String) throws -> Domain? {
        try domains().first { $0.name == name.lowercased() }
    }

    /// Inserts or replaces a domain after `check` (run inside the transaction) accepts it.
    public func saveDomain(_ domain: Domain, creating: Bool, check: (Domain, Bindings) throws -> Void) throws {
        try database.write { db in
            let exists = try Bool.fetchOne(db, sql: "SELECT 1 FROM domain WHERE name = ?", arguments: [domain.name]) ?? false
            if creating && exists { throw BindingsError(.conflict, "domain \(domain.name) already exists", field: "name") }
            if !creating && !exists { throw BindingsError.notFound("no domain '\(domain.name)'") }
            try check(domain, try Self.loadBindings(db))
            try DomainRules.validateIPAddressUnique(domain, among: try Self.loadDomains(db))
            let body = String(decoding: try JSONEncoder().encode(domain), as: UTF8.self)
            // UPDATE, never REPLACE: a replace deletes the row first, and the delete cascades to users.
            if exists {
                try db.execute(sql: "UPDATE domain SET body = ? WHERE name = ?", arguments: [body, domain.name])
            } else {
                try db.execute(sql: "INSERT INTO domain(name, body) VALUES (?, ?)", arguments: [domain.name, body])
            }
        }
        committedDirectoryChange()
    }

    /// Deletes a domain. One that still has users is refused (409, naming how many) unless
    /// `force`, which deletes its users with it; their Maildirs stay on disk.
    public func deleteDomain(_ name: String, force: Bool = false) throws {
        let key = name.lowercased()
        try database.write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM domain WHERE name = ?", arguments: [key]) ?? false else {
                throw BindingsError.notFound("no domain '\(name)'")
            }
            let users = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM user WHERE domain = ?", arguments: [key]) ?? 0
            if users > 0 && !force {
                throw BindingsError(
                    .conflict,
                    "domain \(key) has \(users) user\(users == 1 ? "" : "s"); delete them first, or delete the domain with force=true (its users go with it; their mail stays on disk)",
                    field: "name")
            }
            try db.execute(sql: "DELETE FROM domain WHERE name = ?", arguments: [key])
        }
        committedDirectoryChange()
    }

    /// Every user of every domain, by domain then name.
    public func allUsers() throws -> [User] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT \(Self.userColumns) FROM user ORDER BY domain, name").map(Self.user)
        }
    }

    public func users(domain: String) throws -> [User] {
        try database.read { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM domain WHERE name = ?", arguments: [domain.lowercased()]) ?? false else {
                throw BindingsError.notFound("no domain '\(domain)'")
            }
            return try Row.fetchAll(
                db, sql: "SELECT \(Self.userColumns) FROM user WHERE domain = ? ORDER BY name",
                arguments: [domain.lowercased()]
            ).map(Self.user)
        }
    }

    /// A user row with its aliases, in the order they were given, as a JSON array.
    static let userColumns = """
        domain, name, displayName, givenName, surname, quotaBytes, \
        (SELECT json_group_array(alias) FROM (SELECT alias FROM userAlias \
        WHERE userAlias.domain = user.domain AND userAlias.user = user.name ORDER BY rowid)) AS aliases
        """

    static func user(_ row: Row) -> User {
        let aliases = (row["aliases"] as String?).flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) }
        return User(
            domain: row["domain"], name: row["name"], displayName: row["displayName"], givenName: row["givenName"],
            surname: row["surname"], aliases: aliases ?? [], quotaBytes: row["quotaBytes"])
    }

    /// Creates a user; the password is stored as a bcrypt hash, never in clear.
    public func addUser(_ user: User, password: String) throws {
        let hash = Bcrypt.hash(password, cost: Self.passwordHashCost)
        try database.write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM domain WHERE name = ?", arguments: [user.domain]) ?? false else {
                throw BindingsError.notFound("no domain '\(user.domain)'")
            }
            if try Self.userExists(user.name, domain: user.domain, in: db) {
                throw BindingsError(.conflict, "user \(user.address) already exists", field: "name")
            }
            if let owner = try Self.aliasOwner(user.name, domain: user.domain, in: db) {
                throw BindingsError(.conflict, "\(user.address) is an alias of \(owner)@\(user.domain)", field: "name")
            }
            try db.execute(
                sql: "INSERT INTO user(domain, name, displayName, givenName, surname, passwordHash, quotaBytes) VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [user.domain, user.name, user.displayName, user.givenName, user.surname, hash, user.quotaBytes])
            try Self.replaceAliases(of: user, in: db)
        }
        committedDirectoryChange()
    }

    /// Changes a user's password (stored as a new bcrypt hash) and/or profile fields.
    public func updateUser(domain: String, name: String, change: UserChange) throws -> User {
        let hash = change.password.map { Bcrypt.hash($0, cost: Self.passwordHashCost) }
        let user = try database.write { db -> User in
            guard let row = try Row.fetchOne(
                db, sql: "SELECT \(Self.userColumns) FROM user WHERE domain = ? AND name = ?",
                arguments: [domain.lowercased(), name.lowercased()])
            else { throw BindingsError.notFound("no user '\(name)@\(domain)'") }
            let user = change.applied(to: Self.user(row))
            try db.execute(
                sql: """
                    UPDATE user SET displayName = ?, givenName = ?, surname = ?, quotaBytes = ?,
                    passwordHash = COALESCE(?, passwordHash) WHERE domain = ? AND name = ?
                    """,
                arguments: [user.displayName, user.givenName, user.surname, user.quotaBytes, hash, user.domain, user.name])
            if change.aliases != nil { try Self.replaceAliases(of: user, in: db) }
            return user
        }
        committedDirectoryChange()
        return user
    }

    private static func userExists(_ name: String, domain: String, in db: Database) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT 1 FROM user WHERE domain = ? AND name = ?", arguments: [domain, name]) ?? false
    }

    /// The user whose alias `name@domain` is, if it is one.
    private static func aliasOwner(_ name: String, domain: String, in db: Database) throws -> String? {
        try String.fetchOne(db, sql: "SELECT user FROM userAlias WHERE domain = ? AND alias = ?", arguments: [domain, name])
    }

    /// The user's aliases become `user.aliases`; one that is another user's name or alias
    /// is a conflict (and the transaction rolls back, changing nothing).
    private static func replaceAliases(of user: User, in db: Database) throws {
        try db.execute(sql: "DELETE FROM userAlias WHERE domain = ? AND user = ?", arguments: [user.domain, user.name])
        for (index, alias) in user.aliases.enumerated() {
            if try userExists(alias, domain: user.domain, in: db) {
                throw BindingsError(.conflict, "\(alias)@\(user.domain) is a user of its own", field: "aliases[\(index)]")
            }
            if let owner = try aliasOwner(alias, domain: user.domain, in: db) {
                throw BindingsError(.conflict, "\(alias)@\(user.domain) is already an alias of \(owner)@\(user.domain)", field: "aliases[\(index)]")
            }
            try db.execute(
                sql: "INSERT INTO userAlias(domain, alias, user) VALUES (?, ?, ?)", arguments: [user.domain, alias, user.name])
        }
    }

    public func deleteUser(domain: String, name: String) throws {
        try database.write { db in
            try db.execute(sql: "DELETE FROM user WHERE domain = ? AND name = ?", arguments: [domain.lowercased(), name.lowercased()])
            if db.changesCount == 0 { throw BindingsError.notFound("no user '\(name)@\(domain)'") }
        }
        committedDirectoryChange()
    }

    private func refreshDirectory() throws {
        let entries = try directoryEntries()
        directory.update(domains: entries.domains, users: entries.users, quotas: entries.quotas, aliases: entries.aliases)
    }

    /// Commits of domains and users refresh the directory before anyone hears of them.
    private func committedDirectoryChange() {
        try? refreshDirectory()
        changes.notify()
    }

    /// Domain names, `user@domain` -> bcrypt hash and -> quota, `alias@domain` -> `user`,
    /// for the in-memory directory.
    func directoryEntries() throws -> (
        domains: Set<String>, users: [String: String], quotas: [String: Int], aliases: [String: String]
    ) {
        try database.read { db in
            let domains = Set(try String.fetchAll(db, sql: "SELECT name FROM domain"))
            var users: [String: String] = [:]
            var quotas: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT domain, name, passwordHash, quotaBytes FROM user") {
                let address = "\(row["name"] as String)@\(row["domain"] as String)"
                users[address] = row["passwordHash"]
                if let quota = row["quotaBytes"] as Int? { quotas[address] = quota }
            }
            var aliases: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT domain, alias, user FROM userAlias") {
                aliases["\(row["alias"] as String)@\(row["domain"] as String)"] = row["user"]
            }
            return (domains, users, quotas, aliases)
        }
    }
}
