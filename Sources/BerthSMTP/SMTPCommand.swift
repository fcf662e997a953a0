/// A parsed SMTP command (RFC 5321 §4.1, RFC 3207, RFC 4954).
public enum SMTPCommand: Sendable, Hashable {
    case helo(String)
    case ehlo(String)
    /// Reverse-path without brackets ("" for the null path) and ESMTP parameters.
    case mail(from: String, parameters: [String: String])
    case rcpt(to: String, parameters: [String: String])
    case data
    case rset
    case noop
    case quit
    case vrfy(String)
    case expn(String)
    case help(String)
    case startTLS
    case auth(mechanism: String, initialResponse: String?)
    /// BDAT and others we know but do not offer.
    case unsupported(String)
}

/// Why a command line was refused before it reached the session.
public enum SMTPCommandError: Error, Sendable, Hashable {
    case unrecognized
    case syntax(String)
}
