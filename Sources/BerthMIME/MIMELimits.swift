/// How much of a message the MIME parser looks at. Past a limit it stops structuring and
/// treats the rest as opaque bytes; it never fails and never does more than linear work
/// per nesting level.
public struct MIMELimits: Sendable, Hashable {
    /// Largest header section parsed (a message's or a part's). A longer header ends at the
    /// last whole field within the limit; what follows is body.
    public var maxHeaderSize: Int
    /// Header fields indexed per header; later ones stay in the bytes (HEADER) but are not
    /// looked up.
    public var maxHeaderFields: Int
    /// Longest header field value decoded, in octets. RFC 5322 §2.1.1 caps lines at 998
    /// octets, but real mail folds far longer fields; longer values are cut for lookup
    /// (the raw bytes stay whole).
    public var maxLineLength: Int
    /// Nesting of multiparts and message/rfc822 parts. Deeper parts are opaque
    /// application/octet-stream.
    public var maxDepth: Int
    /// Body parts in one message, nested ones included. Later parts are dropped from the
    /// structure.
    public var maxParts: Int
    /// Decoded text returned for SEARCH BODY / TEXT, in UTF-8 octets.
    public var maxSearchTextSize: Int

    public static let defaultHeaderSize = 256 * 1024
    public static let defaultHeaderFields = 2_000
    public static let defaultLineLength = 64 * 1024
    public static let defaultDepth = 32
    public static let defaultParts = 1_000
    public static let defaultSearchTextSize = 1024 * 1024

    public init(
        maxHeaderSize: Int = MIMELimits.defaultHeaderSize,
        maxHeaderFields: Int = MIMELimits.defaultHeaderFields,
        maxLineLength: Int = MIMELimits.defaultLineLength,
        maxDepth: Int = MIMELimits.defaultDepth,
        maxParts: Int = MIMELimits.defaultParts,
        maxSearchTextSize: Int = MIMELimits.defaultSearchTextSize
    ) {
        self.maxHeaderSize = max(0, maxHeaderSize)
        self.maxHeaderFields = max(0, maxHeaderFields)
        self.maxLineLength = max(1, maxLineLength)
        self.maxDepth = max(0, maxDepth)
        self.maxParts = max(1, maxParts)
        self.maxSearchTextSize = max(0, maxSearchTextSize)
    }

    public static let `default` = MIMELimits()
}

/// Byte values the parser compares against.
enum Byte {
    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let colon = UInt8(ascii: ":")
    static let semicolon = UInt8(ascii: ";")
    static let comma = UInt8(ascii: ",")
    static let equals = UInt8(ascii: "=")
    static let question = UInt8(ascii: "?")
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let openParen = UInt8(ascii: "(")
    static let closeParen = UInt8(ascii: ")")
    static let dash = UInt8(ascii: "-")
    static let underscore = UInt8(ascii: "_")
    static let star = UInt8(ascii: "*")
    static let apostrophe = UInt8(ascii: "'")
    static let percent = UInt8(ascii: "%")
    static let slash = UInt8(ascii: "/")

    static func isWhitespace(_ byte: UInt8) -> Bool { byte == space || byte == tab }
    static func isLineBreak(_ byte: UInt8) -> Bool { byte == cr || byte == lf }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}
