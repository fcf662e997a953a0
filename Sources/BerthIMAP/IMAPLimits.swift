/// How much an IMAP client may send in one command. RFC 3501 sets no line or literal
/// limit; RFC 7162 §4 asks servers to accept command lines of at least 8192 octets, and
/// RFC 7888 §4 lets a server refuse literals it finds too big (`[TOOBIG]`).
public struct IMAPLimits: Sendable, Hashable {
    /// Longest line segment of a command (the text between literals), CRLF included.
    /// RFC 7162 §4: at least 8192 octets.
    public var maxLineLength: Int
    /// Largest literal in an ordinary command (a LOGIN password, a SEARCH string).
    public var maxLiteralSize: Int
    /// Largest APPEND message literal: the largest message the server stores. Streamed out
    /// in chunks, never buffered whole.
    public var maxAppendLiteralSize: Int
    /// Literals in one command (a SEARCH can have one per key).
    public var maxLiteralsPerCommand: Int
    /// Line segments and literals of one command together, the streamed APPEND message
    /// excluded: what the framer holds in memory for one command at most.
    public var maxCommandSize: Int
    /// Largest piece of an APPEND message handed out at once.
    public var appendChunkSize: Int

    public static let defaultLineLength = 8 * 1024
    public static let defaultLiteralSize = 64 * 1024
    /// The same default as SMTP's SIZE (RFC 1870): 25 MiB.
    public static let defaultAppendLiteralSize = 25 * 1024 * 1024
    public static let defaultLiteralsPerCommand = 32
    public static let defaultCommandSize = 256 * 1024
    public static let defaultAppendChunkSize = 64 * 1024

    public init(
        maxLineLength: Int = IMAPLimits.defaultLineLength,
        maxLiteralSize: Int = IMAPLimits.defaultLiteralSize,
        maxAppendLiteralSize: Int = IMAPLimits.defaultAppendLiteralSize,
        maxLiteralsPerCommand: Int = IMAPLimits.defaultLiteralsPerCommand,
        maxCommandSize: Int = IMAPLimits.defaultCommandSize,
        appendChunkSize: Int = IMAPLimits.defaultAppendChunkSize
    ) {
        self.maxLineLength = max(16, maxLineLength)
        self.maxLiteralSize = max(0, maxLiteralSize)
        self.maxAppendLiteralSize = max(0, maxAppendLiteralSize)
        self.maxLiteralsPerCommand = max(0, maxLiteralsPerCommand)
        self.maxCommandSize = max(self.maxLineLength, maxCommandSize)
        self.appendChunkSize = max(1, appendChunkSize)
    }

    public static let `default` = IMAPLimits()

    /// Nesting of parentheses in a SEARCH program (each level is a recursive call).
    public static let maxSearchDepth = 32
    /// Quoted strings in responses longer than this are sent as literals instead.
    public static let maxQuotedResponseLength = 1024
}
