import Crypto
import Foundation
import Hummingbird
import NIOConcurrencyHelpers

/// The web admin's logins: a random session id in an HttpOnly, SameSite=Strict cookie, and
/// a CSRF token the page sends back in `X-CSRF-Token` on every state-changing request (the
/// browser attaches the cookie by itself; only a page of our origin can read the token).
/// Sessions live in memory: a restart logs everyone out, which is the safe direction.
final class AdminSessions: Sendable {
    struct Session: Sendable {
        var csrfToken: String
        var created: Date
        var lastUsed: Date

        func expiresAt(_ policy: Policy) -> Date {
            min(lastUsed.addingTimeInterval(policy.idleTimeout), created.addingTimeInterval(policy.lifetime))
        }
    }

    struct Policy: Sendable {
        /// A session unused this long ends.
        var idleTimeout: TimeInterval = 30 * 60
        /// However busy, a session ends this long after the login.
        var lifetime: TimeInterval = 12 * 3600
        /// Logins kept at once; the least recently used goes first.
        var maxSessions = 64
    }

    /// What a login or a session check hands the page (with the server's name for its
    /// header).
    struct Grant: Encodable {
        var csrfToken: String
        var expiresAt: Date
        var serverName: String
    }

    let policy: Policy
    let serverName: String
    /// Keyed by the SHA-256 of the cookie value, so the table holds nothing a reader of
    /// memory could replay.
    private let sessions = NIOLockedValueBox<[Data: Session]>([:])

    init(policy: Policy = Policy(), serverName: String = "") {
        self.policy = policy
        self.serverName = serverName
    }

    /// A new session: the cookie value and what the page gets.
    func create(now: Date = Date()) -> (cookieValue: String, grant: Grant) {
        let cookieValue = Self.randomToken()
        let session = Session(csrfToken: Self.randomToken(), created: now, lastUsed: now)
        sessions.withLockedValue { table in
            Self.prune(&table, now: now, policy: policy)
            if table.count >= policy.maxSessions, let oldest = table.min(by: { $0.value.lastUsed < $1.value.lastUsed }) {
                table[oldest.key] = nil
            }
            table[Self.key(cookieValue)] = session
        }
        return (cookieValue, grant(session))
    }

    /// The live session behind a cookie value, marked as used now unless the request is
    /// one the page makes by itself (`touch: false`: a poll is not the admin at work, so an
    /// unattended tab still ends after the idle timeout).
    func session(_ cookieValue: String, now: Date = Date(), touch: Bool = true) -> Session? {
        let key = Self.key(cookieValue)
        return sessions.withLockedValue { table in
            guard var session = table[key] else { return nil }
            guard session.expiresAt(policy) > now else {
                table[key] = nil
                return nil
            }
            if touch {
                session.lastUsed = now
                table[key] = session
            }
            return session
        }
    }

    func grant(_ session: Session) -> Grant {
        Grant(csrfToken: session.csrfToken, expiresAt: session.expiresAt(policy), serverName: serverName)
    }

    func remove(_ cookieValue: String) {
        _ = sessions.withLockedValue { $0.removeValue(forKey: Self.key(cookieValue)) }
    }

    var count: Int { sessions.withLockedValue { $0.count } }

    private static func prune(_ table: inout [Data: Session], now: Date, policy: Policy) {
        table = table.filter { $0.value.expiresAt(policy) > now }
    }

    private static func key(_ cookieValue: String) -> Data {
        Data(SHA256.hash(data: Data(cookieValue.utf8)))
    }

    /// 256 random bits, URL-safe base64 (a cookie value and a header value as is).
    static func randomToken() -> String {
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        return bytes.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Compares without stopping at the first difference, so response time does not tell
    /// an attacker how much of a guessed token was right.
    static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let a = Array(a.utf8), b = Array(b.utf8)
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}

/// The session cookie's name and attributes. Over TLS it is a `__Host-` cookie: Secure,
/// Path=/, no Domain, so no other host or plain-HTTP page can set or read it.
struct SessionCookie: Sendable {
    let secure: Bool

    var name: String { secure ? "__Host-berth_session" : "berth_session" }

    func header(_ value: String, maxAge: Int) -> String {
        "\(name)=\(value); Path=/; HttpOnly; SameSite=Strict; Max-Age=\(maxAge)" + (secure ? "; Secure" : "")
    }

    var clear: String { header("", maxAge: 0) }

    /// The cookie's value in a request, if the client sent one.
    func value(in request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let trimmed = pair.trimmingCharacters(in: .whitespaces)
                guard let equals = trimmed.firstIndex(of: "=") else { continue }
                if trimmed[..<equals] == name {
                    let value = String(trimmed[trimmed.index(after: equals)...])
                    return value.isEmpty ? nil : value
                }
            }
        }
        return nil
    }
}
