import Foundation

/// SASL mechanisms offered over SMTP AUTH (RFC 4954): PLAIN (RFC 4616) and LOGIN.
public enum SASLMechanism: String, Sendable, Hashable, CaseIterable {
    case plain = "PLAIN"
    case login = "LOGIN"
}

/// Progress of one AUTH exchange.
public enum SASLExchange: Sendable, Hashable {
    /// PLAIN with no initial response: waiting for the base64 credentials.
    case plainAwaitingResponse
    /// LOGIN: waiting for the user name.
    case loginAwaitingUser
    /// LOGIN: user known, waiting for the password.
    case loginAwaitingPassword(user: String)
}

public enum SASL {
    /// RFC 4616: `[authzid] NUL authcid NUL passwd`, base64. Returns (authzid, user, password).
    public static func decodePlain(_ base64: String) -> (authzid: String, user: String, password: String)? {
        guard let data = Data(base64Encoded: base64) else { return nil }
        let parts = data.split(separator: 0, omittingEmptySubsequences: false)
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
