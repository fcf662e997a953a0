/// Why a command could not be parsed: answer `tag BAD reason`, or `* BAD reason` when the
/// tag was not readable, and carry on with the next command. The reason never quotes the
/// command's strings (they may be a password).
public struct IMAPParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The command's tag, when it was readable.
    public var tag: String?
    public var reason: String

    public init(tag: String?, reason: String) {
        self.tag = tag
        self.reason = reason
    }

    public var description: String { "\(tag ?? "*") BAD \(reason)" }
}

/// A rule that did not match, thrown between the parser's rule functions.
struct ParseFailure: Error {
    var reason: String

    init(_ reason: String) {
        self.reason = reason
    }
}
