import BerthCore
import Foundation
import GRDB
import Testing
@testable import BerthStore

@Suite("ConfigStore: certificate library")
struct CertificateLibraryStoreTests {
    /// A store with one TLS port whose own certificate is /etc/ssl/port.pem.
    static func withStore(_ body: (ConfigStore, TempDirectory) async throws -> Void) async throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try ConfigStore(path: directory.databasePath)
        try store.updateBindings { bindings, newPortID in
            try bindings.addPort(id: try newPortID(), PortPatch(
                name: "SMTP SSL", protocol: .smtp, encryption: .ssl, port: 465, certificatePath: "/etc/ssl/port.pem"))
        }
        try await body(store, directory)
    }

    @Test("add, list, get and delete; the password is kept for the loader")
    func roundTrip() async throws {
        try await Self.withStore { store, directory in
            #expect(try store.libraryCertificates().isEmpty)
            let a = try store.addLibraryCertificate(certificatePath: "/etc/ssl/a.pem")
            let b = try store.addLibraryCertificate(
                certificatePath: "/etc/ssl/b.p12", privateKeyPath: "", certificatePassword: "pfx-secret")
            let c = try store.addLibraryCertificate(certificatePath: "/etc/ssl/c.pem", privateKeyPath: "/etc/ssl/c.key")
            #expect(a == LibraryCertificate(id: a.id, certificatePath: "/etc/ssl/a.pem"))
            #expect(b.privateKeyPath == nil, "an empty key path is no key path")
            #expect(b.source == CertificateSource(certificatePath: "/etc/ssl/b.p12", password: "pfx-secret"))
            #expect(c.source.privateKeyPath == "/etc/ssl/c.key")
            #expect(try store.libraryCertificates() == [a, b, c], "oldest first")
            #expect(try store.libraryCertificate(id: b.id) == b)
            #expect(try store.libraryCertificate(id: "999") == nil)

            #expect(try store.deleteLibraryCertificate(id: b.id) == b)
            #expect(try store.libraryCertificates() == [a, c])
            #expect(try ConfigStore(path: directory.databasePath).libraryCertificates() == [a, c], "kept across a restart")
            let createdAt = try store.database.read { db in
                try Double.fetchOne(db, sql: "SELECT createdAt FROM certificate WHERE id = ?", arguments: [a.id])
            }
            #expect(abs((createdAt ?? 0) - Date().timeIntervalSince1970) < 60)
        }
    }

    @Test("ids are never reused, even after a delete and a restart")
    func idsNeverReused() async throws {
        try await Self.withStore { store, directory in
            var seen: Set<String> = []
            for round in 0..<3 {
                let added = try store.addLibraryCertificate(certificatePath: "/etc/ssl/\(round).pem")
                #expect(seen.insert(added.id).inserted)
                try store.deleteLibraryCertificate(id: added.id)
            }
            let again = try ConfigStore(path: directory.databasePath).addLibraryCertificate(certificatePath: "/etc/ssl/0.pem")
            #expect(!seen.contains(again.id))
        }
    }

    @Test("refusals: the same file twice, an unknown id, a file a port names; nothing changes")
    func refusals() async throws {
        try await Self.withStore { store, _ in
            let first = try store.addLibraryCertificate(certificatePath: "/etc/ssl/a.pem")
            let twice = Fixture.refusal { _ = try store.addLibraryCertificate(certificatePath: "/etc/ssl/a.pem", privateKeyPath: "/k") }
            #expect(twice?.code == .conflict)
            #expect(twice?.field == "certificatePath")
            #expect(twice?.message.contains("id \(first.id)") == true, "\(twice?.message ?? "")")

            #expect(Fixture.refusal { _ = try store.deleteLibraryCertificate(id: "999") }?.code == .notFound)

            let ports = try store.addLibraryCertificate(certificatePath: "/etc/ssl/port.pem")
            let inUse = Fixture.refusal { _ = try store.deleteLibraryCertificate(id: ports.id) }
            #expect(inUse?.code == .conflict)
            #expect(inUse?.message.contains("'SMTP SSL'") == true, "names the port: \(inUse?.message ?? "")")
            #expect(try store.libraryCertificates() == [first, ports])

            // Once the port names another file, the certificate can go.
            try store.updateBindings { bindings, _ in
                _ = try bindings.updatePort(id: bindings.ports[0].id, PortPatch(certificatePath: "/etc/ssl/other.pem"))
            }
            try store.deleteLibraryCertificate(id: ports.id)
            #expect(try store.libraryCertificates() == [first])
        }
    }

    @Test("the change feed fires after an add and after a delete")
    func changeFeed() async throws {
        try await Self.withStore { store, _ in
            var iterator = store.changes.subscribe().makeAsyncIterator()
            let added = try store.addLibraryCertificate(certificatePath: "/etc/ssl/a.pem")
            let afterAdd: Void? = await iterator.next()
            #expect(afterAdd != nil)
            try store.deleteLibraryCertificate(id: added.id)
            let afterDelete: Void? = await iterator.next()
            #expect(afterDelete != nil)
        }
    }
}
