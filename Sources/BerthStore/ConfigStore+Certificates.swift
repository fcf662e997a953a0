import BerthCore
import Foundation
import GRDB

/// The certificate library: certificates SNI picks from on every TLS port. The store keeps
/// where they are and their passwords; loading and checking them is the caller's (the admin
/// API checks a file before `addLibraryCertificate`, the server loads them to serve them).
extension ConfigStore {
    /// Every library certificate, oldest first.
    public func libraryCertificates() throws -> [LibraryCertificate] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM certificate ORDER BY createdAt, CAST(id AS INTEGER)")
                .map(Self.libraryCertificate)
        }
    }

    public func libraryCertificate(id: String) throws -> LibraryCertificate? {
        try database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM certificate WHERE id = ?", arguments: [id]).map(Self.libraryCertificate)
        }
    }

    /// Adds a certificate under a new id. `certificatePath` (absolute, resolved) may be in
    /// the library once: a second add of the same file is a 409 naming the first.
    @discardableResult
    public func addLibraryCertificate(
        certificatePath: String, privateKeyPath: String? = nil, certificatePassword: String? = nil
    ) throws -> LibraryCertificate {
        let certificate: LibraryCertificate = try database.write { db in
            if let existing = try String.fetchOne(
                db, sql: "SELECT id FROM certificate WHERE certificatePath = ?", arguments: [certificatePath])
            {
                throw BindingsError(
                    .conflict, "certificate \(certificatePath) is already in the library as id \(existing)",
                    field: "certificatePath")
            }
            try db.execute(sql: "INSERT INTO certificateSequence DEFAULT VALUES")
            let certificate = LibraryCertificate(
                id: String(db.lastInsertedRowID), certificatePath: certificatePath,
                privateKeyPath: privateKeyPath.flatMap { $0.isEmpty ? nil : $0 },
                certificatePassword: certificatePassword.flatMap { $0.isEmpty ? nil : $0 })
            try db.execute(
                sql: """
                    INSERT INTO certificate(id, certificatePath, privateKeyPath, certificatePassword, createdAt)
                    VALUES (?, ?, ?, ?, ?)
                    """,
                arguments: [
                    certificate.id, certificate.certificatePath, certificate.privateKeyPath,
                    certificate.certificatePassword, Date().timeIntervalSince1970,
                ])
            return certificate
        }
        changes.notify()
        return certificate
    }

    /// Deletes a library certificate. One whose file a port names as its own certificate
    /// is refused (409, naming the port) while the port names it: the check and the delete
    /// are one transaction, so a port saved meanwhile cannot slip between them.
    @discardableResult
    public func deleteLibraryCertificate(id: String) throws -> LibraryCertificate {
        let certificate: LibraryCertificate = try database.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM certificate WHERE id = ?", arguments: [id]) else {
                throw BindingsError.notFound("no certificate with id '\(id)'")
            }
            let certificate = Self.libraryCertificate(row)
            let users = try Self.loadBindings(db).ports(namingCertificate: certificate.certificatePath)
            if !users.isEmpty {
                let names = users.map { "'\($0.name)' (id \($0.id))" }.joined(separator: ", ")
                throw BindingsError(
                    .conflict,
                    "certificate \(id) (\(certificate.certificatePath)) is the certificate of port\(users.count == 1 ? "" : "s") \(names); give the port\(users.count == 1 ? "" : "s") another certificate first",
                    field: "id")
            }
            try db.execute(sql: "DELETE FROM certificate WHERE id = ?", arguments: [id])
            return certificate
        }
        changes.notify()
        return certificate
    }

    static func libraryCertificate(_ row: Row) -> LibraryCertificate {
        LibraryCertificate(
            id: row["id"], certificatePath: row["certificatePath"], privateKeyPath: row["privateKeyPath"],
            certificatePassword: row["certificatePassword"])
    }
}
