import BerthCore
import Foundation
import HummingbirdBcrypt

/// In-memory copy of domains and users, refreshed after every committed change, so that
/// RCPT checks never touch the database on the event loop.
public final class MailDirectory: @unchecked Sendable {
    private let lock = NSLock()
    private var domains: Set<String> = []
    private var users: [String: String] = [:]

    public init() {}

    /// Replaces the copy; the store calls this after every committed domain or user change.
    public func update(domains: Set<String>, users: [String: String]) {
        lock.withLock {
            self.domains = domains
            self.users = users
        }
    }

    /// Classifies `address` (`local@domain`; the domain compared case-insensitively,
    /// the local part too, as every user name is stored in lower case).
    /// RFC 5321 §4.5.1: mail to "postmaster" of every local domain (and to the bare
    /// "postmaster") MUST be accepted; without such a user it lands in that domain's
    /// postmaster Maildir, ready for whoever the admin makes postmaster.
    public func classify(_ address: String) -> RecipientClass {
        guard let at = address.lastIndex(of: "@") else {
            guard address.lowercased() == "postmaster" else { return .remote }
            return lock.withLock { .local(domain: domains.min() ?? "localhost", user: "postmaster") }
        }
        let user = address[..<at].lowercased()
        let domain = address[address.index(after: at)...].lowercased()
        return lock.withLock {
            guard domains.contains(domain) else { return .remote }
            if users["\(user)@\(domain)"] != nil || user == "postmaster" { return .local(domain: domain, user: user) }
            return .unknownLocalUser
        }
    }

    /// Checks a password with bcrypt (slow by design: call off the event loop).
    /// Unknown users cost a hash too, so timing does not tell which users exist.
    public func verify(address: String, password: String) -> Bool {
        let key = address.lowercased()
        let hash = lock.withLock { users[key] }
        guard let hash else {
            _ = Bcrypt.verify(password, hash: Self.decoyHash)
            return false
        }
        return Bcrypt.verify(password, hash: hash)
    }

    private static let decoyHash = Bcrypt.hash("berth-decoy-password", cost: ConfigStore.passwordHashCost)
}
