/// POP3 limits, each with the RFC that sets it.
public enum POP3Limits {
    /// RFC 2449 §4: a command is at most 255 octets, CRLF included.
    public static let commandLineLength = 255
    /// PASS, AUTH and the lines of a SASL exchange. RFC 1939 §7 bounds PASS like any
    /// command, and RFC 5034 §4 asks clients to keep `AUTH mech initial-response` within
    /// 255 octets, but long passphrases (and a base64 PLAIN response carrying one) exceed
    /// that in practice; they are accepted up to SMTP's `authLineLength`.
    public static let credentialLineLength = 2048
    /// The line cap the handler gives its `LineFramer`: the longest line any state accepts.
    /// The parser then holds ordinary commands to `commandLineLength`.
    public static let framerLineLength = credentialLineLength
    /// RFC 2449 §4: a response's first line is at most 512 octets, CRLF included.
    public static let responseLineLength = 512
    /// RFC 1939 §3: the autologout timer is at least 10 minutes.
    public static let idleTimeoutSeconds: Int64 = 600
    /// Bad commands (and failed authentications) before the server gives up on a client.
    public static let errorsBeforeDisconnect = 10
    /// Largest message number and TOP line count accepted: RFC 1939 sets none, so the
    /// parser bounds them to a signed 32-bit value (2^31 − 1), which no maildrop reaches.
    public static let maxNumber = Int(Int32.max)
}
