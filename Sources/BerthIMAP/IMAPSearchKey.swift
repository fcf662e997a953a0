/// `search-key` (RFC 3501 §6.4.4, §9), with MODSEQ (RFC 7162 §3.1.5).
public indirect enum IMAPSearchKey: Sendable, Hashable {
    case all, answered, deleted, draft, flagged, new, old, recent, seen
    case unanswered, undeleted, undraft, unflagged, unseen
    case bcc(String), body(String), cc(String), from(String), subject(String), text(String), to(String)
    /// `HEADER header-fld-name astring`
    case header(String, String)
    case keyword(IMAPFlag), unkeyword(IMAPFlag)
    /// Internal date, ignoring time and zone.
    case before(IMAPDate), on(IMAPDate), since(IMAPDate)
    /// The Date: header.
    case sentBefore(IMAPDate), sentOn(IMAPDate), sentSince(IMAPDate)
    case larger(UInt32), smaller(UInt32)
    case uid(IMAPSequenceSet)
    /// A bare sequence set: message numbers.
    case sequenceSet(IMAPSequenceSet)
    case not(IMAPSearchKey)
    case or(IMAPSearchKey, IMAPSearchKey)
    /// `"(" search-key *(SP search-key) ")"`, and the top level's several keys: all must match.
    case and([IMAPSearchKey])
    /// `"MODSEQ" [SP entry-name SP entry-type-req] SP mod-sequence-valzer` (RFC 7162).
    case modSeq(IMAPSearchModSeq)
}

public struct IMAPSearchModSeq: Sendable, Hashable {
    /// The flag of `"/flags/<flag>"` and `priv` / `shared` / `all`, if given.
    public var entry: Entry?
    public var value: UInt64

    public struct Entry: Sendable, Hashable {
        public var flag: IMAPFlag
        public var type: String

        public init(flag: IMAPFlag, type: String) {
            self.flag = flag
            self.type = type
        }
    }

    public init(entry: Entry? = nil, value: UInt64) {
        self.entry = entry
        self.value = value
    }
}

/// `search-return-opt = "MIN" / "MAX" / "ALL" / "COUNT"` (RFC 4731 §3), `"SAVE"` (RFC 5182).
public enum IMAPSearchReturnOption: String, Sendable, Hashable, CaseIterable {
    case min = "MIN", max = "MAX", all = "ALL", count = "COUNT", save = "SAVE"
}

/// A SEARCH command's arguments.
public struct IMAPSearchCommand: Sendable, Hashable {
    /// `CHARSET astring`, upper-cased; nil when absent (US-ASCII). The caller answers
    /// `NO [BADCHARSET]` for one it does not support.
    public var charset: String?
    /// `RETURN (...)` (RFC 4731): nil for a plain SEARCH (answered with `* SEARCH`); an
    /// empty list means `ALL` and an ESEARCH answer.
    public var returnOptions: [IMAPSearchReturnOption]?
    /// One key, or `.and` of the top level's keys.
    public var key: IMAPSearchKey

    public init(charset: String? = nil, returnOptions: [IMAPSearchReturnOption]? = nil, key: IMAPSearchKey) {
        self.charset = charset
        self.returnOptions = returnOptions
        self.key = key
    }
}
