/// SMTP limits, each with the RFC that sets it.
public enum SMTPLimits {
    /// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF.
    public static let commandLineLength = 512
    /// RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets including CRLF.
    public static let textLineLength = 1000
    /// RFC 5321 §4.5.3.1.8 asks for at least 100 recipients; more get 452 4.5.3.
    public static let recipients = 100
    /// RFC 5321 §4.5.3.1.3: a path is at most 256 octets.
    public static let pathLength = 256
    /// RFC 1870 SIZE: the default maximum message size, 25 MiB.
    public static let defaultMessageSize = 25 * 1024 * 1024
    /// RFC 5321 §4.5.3.2.7: the server waits at least 5 minutes for the next command.
    public static let idleTimeoutSeconds: Int64 = 300
    /// Errors (bad commands, refused recipients) before the server gives up on a client.
    public static let errorsBeforeDisconnect = 10
    /// A SASL response line (RFC 4954 §4): a base64 "authzid\0authcid\0passwd" fits easily.
    public static let authLineLength = 2048
}
