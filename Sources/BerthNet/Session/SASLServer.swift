import Foundation

/// The server side of a SASL exchange as a pure value (RFC 4422), shared by SMTP AUTH
/// (RFC 4954), IMAP AUTHENTICATE (RFC 9051 §6.2.2) and POP3 AUTH (RFC 5034). Mechanisms:
/// PLAIN (RFC 4616) and LOGIN. Each protocol only wraps a `.challenge` in its own
/// continuation (`334 `, `+ `) and maps a `.failed` reason to its reply.
public struct SASLServer: Sendable, Hashable {
    public enum Mechanism: String, Sendable, Hashable, CaseIterable {
        case plain = "PLAIN"
        case login = "LOGIN"
    }

    public enum Failure: Sendable, Hashable {
        case unknownMechanism
        /// Not base64, or not the mechanism's shape.
        case malformed
        /// The client sent "*" (RFC 4954 §4, RFC 9051 §6.2.2).
        case cancelled
        /// PLAIN with an authorization identity other than the user (RFC 4616 §2):
        /// acting as someone else is not offered.
        case authorizationIdentity
    }

    public enum Step: Sendable, Hashable {
        /// Send this base64 challenge; the next client line goes to `respond`.
        case challenge(String)
        /// The exchange is complete: check these credentials.
        case verify(user: String, password: String)
        case failed(Failure)
    }

    enum State: Sendable, Hashable {
        case idle
        case plainAwaitingResponse
        case loginAwaitingUser
        case loginAwaitingPassword(user: String)
    }

    private(set) var state: State = .idle

    public init() {}

    /// True while the next client line is a SASL response, not a command.
    public var awaitsResponse: Bool { state != .idle }

    /// `AUTH mechanism [initial-response]`; "=" is an empty initial response (RFC 4954 §4).
    public mutating func start(mechanism: String, initialResponse: String?) -> Step {
        state = .idle
        switch Mechanism(rawValue: mechanism.uppercased()) {
        case .plain:
            guard let initialResponse else {
                state = .plainAwaitingResponse
                return .challenge("")
            }
            return plain(initialResponse == "=" ? "" : initialResponse)
        case .login:
            guard let initialResponse else {
                state = .loginAwaitingUser
                return .challenge(Self.loginUserPrompt)
            }
            return loginUser(initialResponse)
        case .none:
            return .failed(.unknownMechanism)
        }
    }

    /// One client line during the exchange.
    public mutating func respond(_ line: String) -> Step {
        let current = state
        state = .idle
        if line == "*" { return .failed(.cancelled) }
        switch current {
        case .idle: return .failed(.malformed)
        case .plainAwaitingResponse: return plain(line)
        case .loginAwaitingUser: return loginUser(line)
        case .loginAwaitingPassword(let user):
            guard let password = Self.decodeText(line) else { return .failed(.malformed) }
            return .verify(user: user, password: password)
        }
    }

    /// Abandons the exchange (a bad line, a reset).
    public mutating func reset() { state = .idle }

    private mutating func plain(_ response: String) -> Step {
        guard let (authzid, user, password) = Self.decodePlain(response) else { return .failed(.malformed) }
        guard authzid.isEmpty || authzid.lowercased() == user.lowercased() else {
            return .failed(.authorizationIdentity)
        }
        return .verify(user: user, password: password)
    }

    private mutating func loginUser(_ response: String) -> Step {
        guard let user = Self.decodeText(response), !user.isEmpty else { return .failed(.malformed) }
        state = .loginAwaitingPassword(user: user)
        return .challenge(Self.loginPasswordPrompt)
    }

    /// RFC 4616: `[authzid] NUL authcid NUL passwd`, base64. Returns (authzid, user, password).
    public static func decodePlain(_ base64: String) -> (authzid: String, user: String, password: String)? {
        guard let data = Data(base64Encoded: base64) else { return nil }
        return splitPlain(Array(data))
    }

    /// RFC 4616's message as bytes (LDAP carries it unencoded, RFC 4513 §5.2.1.2).
    public static func splitPlain(_ message: [UInt8]) -> (authzid: String, user: String, password: String)? {
        let parts = message.split(separator: 0, omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        let user = String(decoding: parts[1], as: UTF8.self)
        guard !user.isEmpty else { return nil }
        return (String(decoding: parts[0], as: UTF8.self), user, String(decoding: parts[2], as: UTF8.self))
    }

    public static func decodeText(_ base64: String) -> String? {
        guard let data = Data(base64Encoded: base64) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// "Username:" and "Password:" as the LOGIN mechanism asks for them.
    public static let loginUserPrompt = Data("Username:".utf8).base64EncodedString()
    public static let loginPasswordPrompt = Data("Password:".utf8).base64EncodedString()
}
