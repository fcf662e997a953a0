/// A parsed POP3 command (RFC 1939 §4–7, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH).
public enum POP3Command: Sendable, Hashable {
    case user(String)
    /// The password exactly as sent: RFC 1939 §7 lets it contain spaces.
    case pass(String)
    /// Parsed so it can be refused by name; APOP is not offered (no timestamp in the greeting).
    case apop(name: String, digest: String)
    /// `AUTH mechanism [initial-response]`; the mechanism is uppercased, "=" is an empty
    /// initial response (RFC 5034 §4).
    case auth(mechanism: String, initialResponse: String?)
    /// Bare `AUTH`: RFC 5034 leaves it undefined, but Outlook and others send it (as in
    /// RFC 1734's drafts) and expect the mechanism list, as Dovecot and Cyrus answer.
    case authMechanisms
    case stat
    case list(Int?)
    case retr(Int)
    case dele(Int)
    case noop
    case rset
    case quit
    case top(Int, lines: Int)
    case uidl(Int?)
    case capa
    case stls

    /// The keyword, for logs (never an argument: PASS and AUTH carry credentials).
    public var keyword: String {
        switch self {
        case .user: return "USER"
        case .pass: return "PASS"
        case .apop: return "APOP"
        case .auth, .authMechanisms: return "AUTH"
        case .stat: return "STAT"
        case .list: return "LIST"
        case .retr: return "RETR"
        case .dele: return "DELE"
        case .noop: return "NOOP"
        case .rset: return "RSET"
        case .quit: return "QUIT"
        case .top: return "TOP"
        case .uidl: return "UIDL"
        case .capa: return "CAPA"
        case .stls: return "STLS"
        }
    }
}

/// Why a command line was refused before it reached the session: answer `-ERR reason`.
/// The reason never quotes the line (it may hold a password).
public struct POP3CommandError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        case unknownCommand
        case syntax
        /// Past `POP3Limits.commandLineLength` (or `credentialLineLength` for PASS/AUTH).
        case lineTooLong
    }

    public var kind: Kind
    public var reason: String

    public init(_ kind: Kind, _ reason: String) {
        self.kind = kind
        self.reason = reason
    }

    public static let unknownCommand = POP3CommandError(.unknownCommand, "unknown command")

    public var description: String { reason }
}
