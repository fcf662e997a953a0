import BerthCore
import Foundation
import GRDB
import HummingbirdBcrypt
import Testing
@testable import BerthStore

@Suite("ConfigStore")
struct ConfigStoreTests {
    struct Refused: Error {}

    static func withStore(_ body: (ConfigStore, TempDirectory) throws -> Void) throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        try body(try ConfigStore(path: directory.databasePath), directory)
    }

    @Test("migrations create every table, and re-opening is idempotent")
    func migrations() throws {
        try Self.withStore { store, directory in
            let tables = [
                "settings", "portSequence", "port", "ipAddress", "domain", "user", "queue", "certificateSequence",
                "certificate", "queueRecipient", "route", "dkimKey", "mailbox", "mail", "expunged", "userAlias",
            ]
            let (present, migrations) = try store.database.read { db in
                (try tables.filter { try db.tableExists($0) },
                 try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations"))
            }
            #expect(present == tables)
            #expect(migrations == ["v1", "v2-port-limits", "v3-certificate-library", "v4-outbound", "v5-mail-index", "v6-user-profile"])
            try store.setSetting("hostname", "mx.example.com")
            let again = try ConfigStore(path: directory.databasePath)
            #expect(try again.setting("hostname") == "mx.example.com")
            #expect(try again.setting("absent") == nil)
            let mode = try FileManager.default.attributesOfItem(atPath: directory.databasePath)[.posixPermissions] as? Int
            #expect(mode == 0o600, "the database holds password hashes")
        }
    }

    @Test("updateBindings round-trips through the database, in order")
    func roundTrip() throws {
        try Self.withStore { store, directory in
            #expect(try store.bindings() == Bindings())
            let written: Bindings = try store.updateBindings { bindings, newPortID in
                bindings.mergeDiscovered([DiscoveredAddress(address: "127.0.0.1", family: .ipv4, interface: "lo")])
                try bindings.addManualAddress("0:0::5", AddressPatch(hostname: "mx.example.com", description: "failover"), present: false)
                for port in Port.defaults(makeID: { try! newPortID() }) {
                    bindings.ports.append(port)
                }
                try bindings.assign(portID: bindings.ports[0].id, to: ["127.0.0.1", "::5"])
                try bindings.updatePort(id: bindings.ports[2].id, PortPatch(
                    certificatePath: "/etc/berth/cert.pem", certificatePassword: "pfx-secret", description: "submission"))
                try Validation.validate(bindings)
                return bindings
            }
            #expect(try store.bindings() == written)
            #expect(written.ports.count == 9)
            #expect(Set(written.ipAddresses.map(\.address)) == ["::", "0.0.0.0", "127.0.0.1", "::5"])
            #expect(written.ipAddresses.last?.address == "::5", "list order is kept")
            #expect(try ConfigStore(path: directory.databasePath).bindings() == written)
        }
    }

    @Test("a throwing change writes nothing")
    func throwingChangeWritesNothing() throws {
        try Self.withStore { store, _ in
            try store.updateBindings { bindings, newPortID in
                try bindings.addPort(id: try newPortID(), PortPatch(name: "SMTP", protocol: .smtp, port: 25))
                bindings.mergeDiscovered([DiscoveredAddress(address: "192.0.2.1", family: .ipv4, interface: "eth0")])
            }
            let before = try store.bindings()
            #expect(throws: Refused.self) {
                try store.updateBindings { bindings, newPortID in
                    try bindings.addPort(id: try newPortID(), PortPatch(name: "Other", protocol: .smtp, port: 26))
                    try bindings.deletePorts([bindings.ports[0].id])
                    try bindings.addManualAddress("203.0.113.1", AddressPatch(), present: false)
                    throw Refused()
                }
            }
            #expect(try store.bindings() == before)
            // A validation refusal inside the change is the same.
            let error = Fixture.refusal {
                try store.updateBindings { bindings, newPortID in
                    try bindings.addPort(id: try newPortID(), PortPatch(
                        name: "smtp", protocol: .smtp, port: 2525, assignedTo: ["192.0.2.1"]))
                    try Validation.validate(bindings)
                }
            }
            #expect(error?.code == .nameTaken)
            #expect(try store.bindings() == before)
        }
    }

    @Test("port ids are never reused, even after deletion")
    func idsNeverReused() throws {
        try Self.withStore { store, directory in
            var seen: [String] = []
            for round in 0..<3 {
                let id: String = try store.updateBindings { bindings, newPortID in
                    let id = try newPortID()
                    try bindings.addPort(id: id, PortPatch(name: "Port \(round)", protocol: .smtp, port: 2500 + round))
                    return id
                }
                #expect(!seen.contains(id))
                seen.append(id)
                try store.updateBindings { bindings, _ in try bindings.deletePorts([id]) }
                #expect(try store.bindings().ports.isEmpty)
            }
            // Also after the store is opened again.
            let reopened = try ConfigStore(path: directory.databasePath)
            let id: String = try reopened.updateBindings { _, newPortID in try newPortID() }
            #expect(!seen.contains(id))
            #expect(Set(seen).count == 3)
        }
    }

    @Test("updateBindings fires the change feed after the commit")
    func changeFeed() async throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try ConfigStore(path: directory.databasePath)
        var iterator = store.changes.subscribe().makeAsyncIterator()
        _ = try store.updateBindings { bindings, newPortID in
            try bindings.addPort(id: try newPortID(), PortPatch(name: "SMTP", protocol: .smtp, port: 25))
        }
        let woke: Void? = await iterator.next()
        #expect(woke != nil)
    }

    // MARK: Domains and users

    static func populated(_ directory: TempDirectory) throws -> ConfigStore {
        let store = try ConfigStore(path: directory.databasePath)
        try store.saveDomain(Domain(name: "example.com"), creating: true, check: DomainRules.validate)
        try store.saveDomain(Domain(name: "example.org"), creating: true, check: DomainRules.validate)
        try store.addUser(User(domain: "example.com", name: "alice", displayName: "Alice Liddell"), password: "correct horse battery")
        try store.addUser(User(domain: "example.org", name: "bob"), password: "hunter2hunter2")
        return store
    }

    @Test("domains and users are stored and listed")
    func domainsAndUsers() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try Self.populated(directory)
        #expect(try store.domains().map(\.name) == ["example.com", "example.org"])
        #expect(try store.domain("EXAMPLE.com")?.name == "example.com")
        #expect(try store.users(domain: "example.com") == [User(domain: "example.com", name: "alice", displayName: "Alice Liddell")])
        #expect(Fixture.refusal { _ = try store.users(domain: "nowhere.example") }?.code == .notFound)
    }

    @Test("duplicates are conflicts; unknown domains not_found; check runs")
    func refusals() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try Self.populated(directory)
        let cases: [(String, BindingsError.Code, () throws -> Void)] = [
            ("duplicate user", .conflict, { try store.addUser(User(domain: "example.com", name: "alice"), password: "another password") }),
            ("duplicate domain", .conflict, { try store.saveDomain(Domain(name: "example.com"), creating: true, check: { _, _ in }) }),
            ("update of a missing domain", .notFound, { try store.saveDomain(Domain(name: "missing.example"), creating: false, check: { _, _ in }) }),
            ("user in a missing domain", .notFound, { try store.addUser(User(domain: "missing.example", name: "x"), password: "long enough") }),
            ("domain with an unlisted ipAddress", .validationFailed, {
                try store.saveDomain(Domain(name: "example.net", ipAddress: "192.0.2.1"), creating: true, check: DomainRules.validate)
            }),
            ("delete of a missing user", .notFound, { try store.deleteUser(domain: "example.com", name: "nobody") }),
            ("delete of a missing domain", .notFound, { try store.deleteDomain("missing.example") }),
        ]
        for (label, code, body) in cases {
            #expect(Fixture.refusal(body)?.code == code, "\(label)")
        }
        #expect(try store.users(domain: "example.com").count == 1)
        #expect(try store.domain("example.net") == nil)
    }

    @Test("profile fields and aliases are stored; an alias takes its user's mail; clashes change nothing")
    func profilesAndAliases() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try Self.populated(directory)
        let alice = try store.updateUser(
            domain: "example.com", name: "alice",
            change: UserChange(givenName: "Alice", surname: "Liddell", aliases: ["a.liddell", "rabbit-hole"]))
        #expect(alice == User(domain: "example.com", name: "alice", displayName: "Alice Liddell", givenName: "Alice",
                              surname: "Liddell", aliases: ["a.liddell", "rabbit-hole"]))
        #expect(try store.users(domain: "example.com") == [alice])
        #expect(store.directory.classify("A.Liddell@Example.com") == .local(domain: "example.com", user: "alice"))
        #expect(store.directory.classify("a.liddell@example.org") == .unknownLocalUser)

        let clashes: [(String, () throws -> Void)] = [
            ("a new user named like an alias", {
                try store.addUser(User(domain: "example.com", name: "a.liddell"), password: "long enough")
            }),
            ("an alias named like a user", {
                try store.addUser(User(domain: "example.com", name: "carol", aliases: ["alice"]), password: "long enough")
            }),
            ("another user's alias", {
                try store.addUser(User(domain: "example.com", name: "carol", aliases: ["rabbit-hole"]), password: "long enough")
            }),
        ]
        for (label, body) in clashes {
            #expect(Fixture.refusal(body)?.code == .conflict, "\(label)")
        }
        #expect(try store.users(domain: "example.com").map(\.name) == ["alice"], "a refused user leaves no row")
        // The same alias in another domain is another address.
        try store.addUser(User(domain: "example.org", name: "carol", aliases: ["a.liddell"]), password: "long enough")
        #expect(store.directory.classify("a.liddell@example.org") == .local(domain: "example.org", user: "carol"))

        // A refused change keeps the old aliases; an empty list removes them; deleting the user frees them.
        #expect(Fixture.refusal { _ = try store.updateUser(domain: "example.org", name: "bob", change: UserChange(aliases: ["carol"])) }?.code == .conflict)
        _ = try store.updateUser(domain: "example.com", name: "alice", change: UserChange(aliases: ["rabbit-hole"]))
        #expect(store.directory.classify("a.liddell@example.com") == .unknownLocalUser)
        try store.deleteUser(domain: "example.com", name: "alice")
        #expect(store.directory.classify("rabbit-hole@example.com") == .unknownLocalUser)
        try store.addUser(User(domain: "example.com", name: "rabbit-hole"), password: "long enough")
    }

    @Test("passwords are stored as bcrypt hashes, never in clear")
    func passwordHashed() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try Self.populated(directory)
        let rows = try store.database.read { db in try Row.fetchAll(db, sql: "SELECT * FROM user") }
        #expect(rows.count == 2)
        for row in rows {
            let hash: String = row["passwordHash"]
            #expect(hash.hasPrefix("$2"), "bcrypt modular crypt format: \(hash.prefix(4))")
            #expect(hash.count == 60)
            for column in row.columnNames {
                let text = row[column].map { "\($0)" } ?? ""
                #expect(!text.contains("correct horse battery"), "column \(column) holds alice's password")
                #expect(!text.contains("hunter2hunter2"), "column \(column) holds bob's password")
            }
        }
        let raw = try Data(contentsOf: URL(fileURLWithPath: directory.databasePath))
        #expect(raw.range(of: Data("correct horse battery".utf8)) == nil)
    }

    @Test("a domain with users is deleted only with force, and the refusal counts them")
    func deleteDomainWithUsers() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try Self.populated(directory)
        try store.addUser(User(domain: "example.com", name: "carol"), password: "carols password")
        let error = Fixture.refusal { try store.deleteDomain("Example.COM") }
        #expect(error?.code == .conflict)
        #expect(error?.message.contains("2 users") == true, "\(error?.message ?? "")")
        #expect(try store.users(domain: "example.com").count == 2, "nothing deleted")
        try store.deleteDomain("example.com", force: true)
        #expect(try store.domain("example.com") == nil)
        #expect(try store.allUsers().map(\.address) == ["bob@example.org"])
        // A domain without users needs no force.
        try store.saveDomain(Domain(name: "empty.example"), creating: true, check: DomainRules.validate)
        try store.deleteDomain("empty.example")
        #expect(try store.domain("empty.example") == nil)
    }

    @Test("allUsers lists every user of every domain, by domain then name")
    func allUsers() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try Self.populated(directory)
        try store.addUser(User(domain: "example.com", name: "aaron"), password: "aarons password")
        #expect(try store.allUsers().map(\.address) == ["aaron@example.com", "alice@example.com", "bob@example.org"])
    }

    @Test("two domains cannot claim one ipAddress")
    func domainIPAddressUnique() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try Self.populated(directory)
        try store.updateBindings { bindings, _ in
            try bindings.addManualAddress("192.0.2.1", AddressPatch(), present: false)
            try bindings.addManualAddress("192.0.2.2", AddressPatch(), present: false)
        }
        try store.saveDomain(Domain(name: "example.com", ipAddress: "192.0.2.1"), creating: false, check: DomainRules.validate)
        let error = Fixture.refusal {
            try store.saveDomain(Domain(name: "example.org", ipAddress: "192.0.2.1"), creating: false, check: DomainRules.validate)
        }
        #expect(error?.code == .conflict)
        #expect(error?.field == "ipAddress")
        #expect(error?.message.contains("example.com") == true)
        #expect(try store.domain("example.org")?.ipAddress == nil)
        // Saving a domain with its own address again is no conflict; another address is fine.
        try store.saveDomain(Domain(name: "example.com", ipAddress: "192.0.2.1"), creating: false, check: DomainRules.validate)
        try store.saveDomain(Domain(name: "example.org", ipAddress: "192.0.2.2"), creating: false, check: DomainRules.validate)
    }

    // MARK: Server settings

    @Test("server settings: defaults, partial update, canonical networks, change feed")
    func serverSettings() async throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try ConfigStore(path: directory.databasePath)
        #expect(try store.serverSettings() == ServerSettings())
        var iterator = store.changes.subscribe().makeAsyncIterator()
        let updated = try store.updateServerSettings {
            $0.authBanThreshold = 5
            $0.proxyTrustedNetworks = ["10.1.2.3/8", "2001:DB8::1/32", "10.0.0.0/8"]
        }
        #expect(updated.proxyTrustedNetworks == ["10.0.0.0/8", "2001:db8::/32"])
        #expect(updated.authBanThreshold == 5)
        #expect(updated.authFailureDelayMs == 1000, "untouched")
        let woke: Void? = await iterator.next()
        #expect(woke != nil, "running services hear of the change")
        #expect(try ConfigStore(path: directory.databasePath).serverSettings() == updated, "stored")
    }

    @Test("server settings: a refused change writes nothing")
    func serverSettingsRefused() throws {
        try Self.withStore { store, _ in
            try store.updateServerSettings { $0.authBanSeconds = 60 }
            let before = try store.serverSettings()
            let error = Fixture.refusal {
                try store.updateServerSettings {
                    $0.authBanThreshold = 3
                    $0.proxyTrustedNetworks = ["10.0.0.0/33"]
                }
            }
            #expect(error?.field == "proxyTrustedNetworks[0]")
            #expect(try store.serverSettings() == before)
        }
    }

    @Test("settings stored by an older version read with defaults for new keys")
    func serverSettingsOldJSON() throws {
        try Self.withStore { store, _ in
            try store.setSetting("serverSettings", #"{"authBanThreshold": 7}"#)
            var expected = ServerSettings()
            expected.authBanThreshold = 7
            #expect(try store.serverSettings() == expected)
        }
    }

    @Test("migration v2 gives ports stored before it the connection-limit defaults")
    func portLimitsMigration() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let queue = try DatabaseQueue(path: directory.databasePath)
        try ConfigStore.migrator.migrate(queue, upTo: "v1")
        try queue.write { db in
            try db.execute(
                sql: "INSERT INTO port(id, position, body) VALUES ('1', 0, ?)",
                arguments: [#"{"id":"1","name":"Old","protocol":"smtp","encryption":"none","tlsRequired":false,"port":25,"description":""}"#])
        }
        try queue.close()
        let store = try ConfigStore(path: directory.databasePath)
        let port = try #require(try store.bindings().port("1"))
        #expect(port.maxConnections == Port.defaultMaxConnections)
        #expect(port.maxConnectionsPerClient == Port.defaultMaxConnectionsPerClient)
        #expect(port.proxyProtocol == false)
        #expect(port.name == "Old")
    }

    // MARK: Directory

    @Test("directory classifies recipients, case-insensitively", arguments: [
        ("alice@example.com", RecipientClass.local(domain: "example.com", user: "alice")),
        ("ALICE@Example.COM", .local(domain: "example.com", user: "alice")),
        ("Bob@EXAMPLE.ORG", .local(domain: "example.org", user: "bob")),
        ("alice@example.org", .unknownLocalUser),
        ("nobody@example.com", .unknownLocalUser),
        ("alice@elsewhere.net", .remote),
        ("alice@sub.example.com", .remote),
        ("no-at-sign", .remote),
    ])
    func classify(address: String, expected: RecipientClass) throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try Self.populated(directory)
        #expect(store.directory.classify(address) == expected)
    }

    @Test("directory follows commits: new users are known at once, deleted ones gone")
    func directoryRefresh() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try Self.populated(directory)
        #expect(store.directory.classify("carol@example.com") == .unknownLocalUser)
        try store.addUser(User(domain: "example.com", name: "carol"), password: "carols password")
        #expect(store.directory.classify("carol@example.com") == .local(domain: "example.com", user: "carol"))
        try store.deleteUser(domain: "example.com", name: "carol")
        #expect(store.directory.classify("carol@example.com") == .unknownLocalUser)
        try store.deleteDomain("example.org", force: true)
        #expect(store.directory.classify("bob@example.org") == .remote)
        #expect(!store.directory.verify(address: "bob@example.org", password: "hunter2hunter2"), "users go with their domain")
        // A fresh store over the same file sees the same directory.
        let reopened = try ConfigStore(path: directory.databasePath)
        #expect(reopened.directory.classify("alice@example.com") == .local(domain: "example.com", user: "alice"))
    }

    @Test("verify(address:password:)", arguments: [
        ("alice@example.com", "correct horse battery", true),
        ("ALICE@example.COM", "correct horse battery", true),
        ("alice@example.com", "Correct horse battery", false),
        ("alice@example.com", "correct horse batter", false),
        ("alice@example.com", "", false),
        ("bob@example.org", "hunter2hunter2", true),
        ("bob@example.org", "correct horse battery", false),
        ("nobody@example.com", "correct horse battery", false),
    ])
    func verify(_ row: (String, String, Bool)) throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try Self.populated(directory)
        #expect(store.directory.verify(address: row.0, password: row.1) == row.2)
        // The second time a verified password comes from the cache; a wrong one never does.
        #expect(store.directory.verify(address: row.0, password: row.1) == row.2)
    }

    @Test("verified credentials are cached: bcrypt once, never for a wrong password, ended by a password change")
    func verifiedCache() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try Self.populated(directory)
        let cache = store.directory
        let before = cache.bcryptChecks
        #expect(cache.verify(address: "alice@example.com", password: "correct horse battery"))
        #expect(cache.verify(address: "Alice@Example.com", password: "correct horse battery"))
        #expect(cache.bcryptChecks == before + 1, "the second login is a cache hit")
        #expect(!cache.verify(address: "alice@example.com", password: "wrong password!"))
        #expect(!cache.verify(address: "alice@example.com", password: "wrong password!"))
        #expect(cache.bcryptChecks == before + 3, "failures are checked every time")
        _ = try store.updateUser(domain: "example.com", name: "alice", change: UserChange(password: "a brand new password"))
        #expect(!cache.verify(address: "alice@example.com", password: "correct horse battery"), "the old password is gone")
        #expect(cache.verify(address: "alice@example.com", password: "a brand new password"))
        try store.deleteUser(domain: "example.com", name: "alice")
        #expect(!cache.verify(address: "alice@example.com", password: "a brand new password"), "a deleted user")
    }

    @Test("a cache entry lasts its lifetime, and a full cache stays at its size")
    func verifiedCacheLimits() {
        let hash = Bcrypt.hash("correct horse battery", cost: 4)
        let expiring = MailDirectory(verifiedLifetime: .zero)
        expiring.update(domains: ["example.com"], users: ["alice@example.com": hash])
        #expect(expiring.verify(address: "alice@example.com", password: "correct horse battery"))
        #expect(expiring.verify(address: "alice@example.com", password: "correct horse battery"))
        #expect(expiring.bcryptChecks == 2, "an expired entry is checked again")
        let small = MailDirectory(maxVerified: 2)
        let users = Dictionary(uniqueKeysWithValues: (0..<4).map { ("u\($0)@example.com", hash) })
        small.update(domains: ["example.com"], users: users)
        for user in users.keys { #expect(small.verify(address: user, password: "correct horse battery")) }
        #expect(small.verifiedCount == 2)
    }
}

enum Fixture {
    static func refusal(_ body: () throws -> Void) -> BindingsError? {
        do {
            try body()
            return nil
        } catch let error as BindingsError {
            return error
        } catch {
            return nil
        }
    }
}
