import BerthCore
import Crypto
import Foundation
import HummingbirdBcrypt

/// In-memory copy of domains and users, refreshed after every committed change, so that
/// RCPT checks never touch the database on the event loop.
public final class MailDirectory: @unchecked Sendable {
    private let lock = NSLock()
    private var domains: Set<String> = []
    private var users: [String: String] = [:]
    private var quotas: [String: Int] = [:]
    /// `alias@domain` -> the user (local part) whose mailbox takes its mail.
    private var aliases: [String: String] = [:]
    /// Verified credentials (like Dovecot's auth cache): a client that logs in every few
    /// seconds pays bcrypt once per `verifiedLifetime`, not at every login. Keyed by an
    /// HMAC of address and password under a key of this process, so memory holds neither
    /// the password nor a fast hash of it; each entry remembers the bcrypt hash it was
    /// checked against, so a password change or a deleted user ends it at once. Failed
    /// checks are never cached, and a banned client is refused before it gets here.
    private var verified: [Data: (hash: String, until: ContinuousClock.Instant)] = [:]
    private let cacheKey = SymmetricKey(size: .bits256)
    let verifiedLifetime: Duration
    let maxVerified: Int
    /// bcrypt runs so far (tests).
    private(set) var bcryptChecks = 0
    var verifiedCount: Int { lock.withLock { verified.count } }

    public init(verifiedLifetime: Duration = .seconds(3600), maxVerified: Int = 10_000) {
        self.verifiedLifetime = verifiedLifetime
        self.maxVerified = maxVerified
    }

    /// Replaces the copy; the store calls this after every committed domain or user change.
    public func update(
        domains: Set<String>, users: [String: String], quotas: [String: Int] = [:], aliases: [String: String] = [:]
    ) {
        lock.withLock {
            self.domains = domains
            self.users = users
            self.quotas = quotas
            self.aliases = aliases
        }
    }

    /// The account's quota in octets; nil: none.
    public func quota(of account: MailAccount) -> Int? {
        lock.withLock { quotas[account.address] }
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
            let address = "\(user)@\(domain)"
            if users[address] != nil { return .local(domain: domain, user: user) }
            if let owner = aliases[address] { return .local(domain: domain, user: owner) }
            if user == "postmaster" { return .local(domain: domain, user: user) }
            return .unknownLocalUser
        }
    }

    /// Checks a password with bcrypt (slow by design: call off the event loop).
    /// Unknown users cost a hash too, so timing does not tell which users exist.
    public func verify(address: String, password: String) -> Bool {
        let key = address.lowercased()
        let credentials = Data(HMAC<SHA256>.authenticationCode(for: Data("\(key)\u{0}\(password)".utf8), using: cacheKey))
        let now = ContinuousClock.now
        let (hash, cached) = lock.withLock { () -> (String?, Bool) in
            let hash = users[key]
            guard let hash, let entry = verified[credentials] else { return (hash, false) }
            if entry.hash == hash && entry.until > now { return (hash, true) }
            verified[credentials] = nil
            return (hash, false)
        }
        if cached { return true }
        lock.withLock { bcryptChecks += 1 }
        guard let hash else {
            _ = Bcrypt.verify(password, hash: Self.decoyHash)
            return false
        }
        guard Bcrypt.verify(password, hash: hash) else { return false }
        lock.withLock {
            if verified.count >= maxVerified {
                // Full: drop what has expired, else the entry that expires first.
                verified = verified.filter { $0.value.until > now }
                if verified.count >= maxVerified, let first = verified.min(by: { $0.value.until < $1.value.until }) {
                    verified[first.key] = nil
                }
            }
            verified[credentials] = (hash, now + verifiedLifetime)
        }
        return true
    }

    private static let decoyHash = Bcrypt.hash("berth-decoy-password", cost: ConfigStore.passwordHashCost)
}
