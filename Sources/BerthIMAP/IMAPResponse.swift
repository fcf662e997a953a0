/// One server response (RFC 3501 §7).
public enum IMAPResponse: Sendable, Hashable {
    /// `tag OK/NO/BAD [code] text` — completes a command.
    case tagged(tag: String, IMAPStatus, code: IMAPResponseCode? = nil, text: String)
    /// `* OK/NO/BAD/PREAUTH/BYE [code] text`
    case untagged(IMAPUntaggedStatus, code: IMAPResponseCode? = nil, text: String)
    /// `* ...` data.
    case data(IMAPResponseData)
    /// `+ text` — a continuation request, or a base64 SASL challenge.
    case continuation(String)
}

/// `resp-cond-state = ("OK" / "NO" / "BAD") SP resp-text`
public enum IMAPStatus: String, Sendable, Hashable {
    case ok = "OK", no = "NO", bad = "BAD"
}

/// `resp-cond-state`, `resp-cond-auth` (PREAUTH) and `resp-cond-bye`.
public enum IMAPUntaggedStatus: String, Sendable, Hashable {
    case ok = "OK", no = "NO", bad = "BAD", preauth = "PREAUTH", bye = "BYE"
}

/// `resp-text-code` (RFC 3501 §7.1, RFC 4315 UIDPLUS, RFC 7162 CONDSTORE/QRESYNC,
/// RFC 5530 response codes, RFC 7888 / RFC 4469 TOOBIG, RFC 9208 OVERQUOTA).
public enum IMAPResponseCode: Sendable, Hashable {
    case alert
    case badCharset([String])
    case capability([String])
    case parse
    /// `\*` (`IMAPFlag.wildcard`) says new keywords may be created.
    case permanentFlags([IMAPFlag])
    case readOnly
    case readWrite
    case tryCreate
    case uidNext(UInt32)
    case uidValidity(UInt32)
    case unseen(UInt32)
    case appendUID(uidValidity: UInt32, uids: IMAPSequenceSet)
    case copyUID(uidValidity: UInt32, source: IMAPSequenceSet, destination: IMAPSequenceSet)
    case uidNotSticky
    case highestModSeq(UInt64)
    case noModSeq
    case modified(IMAPSequenceSet)
    case closed
    case tooBig
    case overQuota
    case limit
    case alreadyExists
    case nonExistent
    case authenticationFailed
    case authorizationFailed
    case unavailable
    case expired
    case privacyRequired
    case contactAdmin
    case noPerm
    case inUse
    case expungeIssued
    case corruption
    case serverBug
    case clientBug
    case cannot
    case notSaved
    case hasChildren
    /// Any other code: an atom and optional text (`atom [SP 1*<any TEXT-CHAR except "]">]`).
    case other(String, String?)
}

/// Untagged data (RFC 3501 §7.2-§7.4 and the extensions').
public enum IMAPResponseData: Sendable, Hashable {
    case capability([String])
    case list(IMAPListItem)
    case lsub(IMAPListItem)
    case status(IMAPMailboxName, [IMAPStatusValue])
    /// `* SEARCH 2 3 6`, with `(MODSEQ n)` after a MODSEQ search (RFC 7162 §3.1.5).
    case search([UInt32], modSeq: UInt64? = nil)
    case esearch(IMAPESearchResponse)
    case flags([IMAPFlag])
    case exists(UInt32)
    case recent(UInt32)
    case expunge(UInt32)
    /// RFC 7162 §3.2.10
    case vanished(earlier: Bool, IMAPSequenceSet)
    case fetch(UInt32, [IMAPFetchItem])
    /// RFC 2342; an empty list is written NIL.
    case namespace(personal: [IMAPNamespace], otherUsers: [IMAPNamespace], shared: [IMAPNamespace])
    /// RFC 2971; nil is `* ID NIL`.
    case id([IMAPIDField]?)
    /// RFC 5161
    case enabled([String])
    /// RFC 9208 §5.1
    case quota(root: String, [IMAPQuotaResource])
    /// RFC 9208 §5.2
    case quotaRoot(IMAPMailboxName, roots: [String])
}

/// `mailbox-list = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox
/// [SP mbox-list-extended]` (RFC 5258 §9)
public struct IMAPListItem: Sendable, Hashable {
    /// `\Noselect`, `\HasChildren`, `\Sent` (RFC 6154) ...
    public var attributes: [String]
    /// The hierarchy delimiter; nil for a flat namespace.
    public var delimiter: Character?
    public var mailbox: IMAPMailboxName
    /// RFC 5258 §3.5 `CHILDINFO`: the selection options (`SUBSCRIBED`, `SPECIAL-USE`) some
    /// descendant matches; only with RECURSIVEMATCH, empty otherwise.
    public var childInfo: [String]

    public init(attributes: [String], delimiter: Character?, mailbox: IMAPMailboxName, childInfo: [String] = []) {
        self.attributes = attributes
        self.delimiter = delimiter
        self.mailbox = mailbox
        self.childInfo = childInfo
    }
}

public struct IMAPStatusValue: Sendable, Hashable {
    public var attribute: IMAPStatusAttribute
    public var value: UInt64

    public init(_ attribute: IMAPStatusAttribute, _ value: UInt64) {
        self.attribute = attribute
        self.value = value
    }
}

/// `esearch-response = "ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data)`
/// (RFC 4731 §3.1, MODSEQ RFC 7162 §3.1.5)
public struct IMAPESearchResponse: Sendable, Hashable {
    /// The correlator `(TAG "a1")`.
    public var tag: String?
    public var uid: Bool
    public var min: UInt32?
    public var max: UInt32?
    /// Omitted when empty (RFC 4731 §3.1).
    public var all: IMAPSequenceSet?
    public var count: UInt32?
    public var modSeq: UInt64?

    public init(tag: String?, uid: Bool, min: UInt32? = nil, max: UInt32? = nil, all: IMAPSequenceSet? = nil,
                count: UInt32? = nil, modSeq: UInt64? = nil) {
        self.tag = tag
        self.uid = uid
        self.min = min
        self.max = max
        self.all = all
        self.count = count
        self.modSeq = modSeq
    }
}

/// One namespace of `* NAMESPACE` (RFC 2342 §5): a prefix and its delimiter.
public struct IMAPNamespace: Sendable, Hashable {
    public var prefix: String
    public var delimiter: Character?

    public init(prefix: String, delimiter: Character?) {
        self.prefix = prefix
        self.delimiter = delimiter
    }
}

/// `quota-resource = resource-name SP resource-usage SP resource-limit` (RFC 9208 §5.1)
public struct IMAPQuotaResource: Sendable, Hashable {
    public var name: String
    public var usage: UInt64
    public var limit: UInt64

    public init(name: String, usage: UInt64, limit: UInt64) {
        self.name = name
        self.usage = usage
        self.limit = limit
    }
}

/// `msg-att` items of a FETCH response (RFC 3501 §7.4.2).
public enum IMAPFetchItem: Sendable, Hashable {
    case flags([IMAPFlag])
    case internalDate(IMAPDateTime)
    case rfc822Size(UInt64)
    case uid(UInt32)
    /// RFC 7162 §3.1.4.1: `MODSEQ (n)`.
    case modSeq(UInt64)
    case envelope(IMAPEnvelope)
    /// `BODY`: the structure without extension data.
    case body(IMAPBodyStructure)
    case bodyStructure(IMAPBodyStructure)
    /// `BODY[section]<origin> nstring`; the data is always sent as a literal.
    case bodySection(IMAPSection, origin: UInt32? = nil, data: [UInt8]?)
    case rfc822([UInt8]?)
    case rfc822Header([UInt8]?)
    case rfc822Text([UInt8]?)
}
