/// One client command (RFC 3501 §6 and the extensions Berth speaks).
public struct IMAPCommand: Sendable, Hashable {
    public var tag: String
    public var kind: Kind

    public init(tag: String, _ kind: Kind) {
        self.tag = tag
        self.kind = kind
    }

    public enum Kind: Sendable, Hashable {
        // Any state (RFC 3501 §6.1).
        case capability
        case noop
        case logout
        /// RFC 2971
        case id([IMAPIDField]?)
        // Not authenticated (§6.2).
        case startTLS
        /// RFC 3501 §6.2.2 and SASL-IR (RFC 4959): the initial response is the base64 text
        /// as sent, `""` for `=` (an empty response), nil when absent.
        case authenticate(mechanism: String, initialResponse: String?)
        case login(user: String, password: String)
        // Authenticated (§6.3).
        case select(IMAPMailboxName, parameters: [IMAPSelectParameter])
        case examine(IMAPMailboxName, parameters: [IMAPSelectParameter])
        case create(IMAPMailboxName)
        case delete(IMAPMailboxName)
        case rename(from: IMAPMailboxName, to: IMAPMailboxName)
        case subscribe(IMAPMailboxName)
        case unsubscribe(IMAPMailboxName)
        case list(IMAPListCommand)
        case lsub(reference: IMAPMailboxName, pattern: String)
        case status(IMAPMailboxName, [IMAPStatusAttribute])
        case append(IMAPAppendCommand)
        /// RFC 2342
        case namespace
        /// RFC 5161
        case enable([String])
        /// RFC 2177; the session then waits for the `DONE` line (`IMAPCommandParser.isIdleDone`).
        case idle
        /// RFC 9208
        case getQuota(root: String)
        case getQuotaRoot(IMAPMailboxName)
        case setQuota(root: String, limits: [IMAPQuotaLimit])
        // Selected (§6.4).
        case check
        case close
        /// RFC 3691
        case unselect
        case expunge
        /// `UID EXPUNGE` (RFC 4315 §2.1)
        case uidExpunge(IMAPSequenceSet)
        case search(IMAPSearchCommand, uid: Bool)
        case fetch(IMAPSequenceSet, [IMAPFetchAttribute], modifiers: [IMAPFetchModifier], uid: Bool)
        case store(IMAPSequenceSet, IMAPStoreAction, unchangedSince: UInt64?, uid: Bool)
        case copy(IMAPSequenceSet, IMAPMailboxName, uid: Bool)
        /// RFC 6851
        case move(IMAPSequenceSet, IMAPMailboxName, uid: Bool)
    }
}

/// `select-param` (RFC 4466 §2.1, RFC 7162 §3.1.8, §3.2.5).
public enum IMAPSelectParameter: Sendable, Hashable {
    case condStore
    case qresync(IMAPQResyncParameter)
}

/// `"QRESYNC" SP "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")"`
public struct IMAPQResyncParameter: Sendable, Hashable {
    public var uidValidity: UInt32
    public var modSeq: UInt64
    public var knownUIDs: IMAPSequenceSet?
    /// `seq-match-data = "(" known-sequence-set SP known-uid-set ")"`
    public var sequenceMatch: SequenceMatch?

    public struct SequenceMatch: Sendable, Hashable {
        public var sequenceNumbers: IMAPSequenceSet
        public var uids: IMAPSequenceSet

        public init(sequenceNumbers: IMAPSequenceSet, uids: IMAPSequenceSet) {
            self.sequenceNumbers = sequenceNumbers
            self.uids = uids
        }
    }

    public init(uidValidity: UInt32, modSeq: UInt64, knownUIDs: IMAPSequenceSet? = nil, sequenceMatch: SequenceMatch? = nil) {
        self.uidValidity = uidValidity
        self.modSeq = modSeq
        self.knownUIDs = knownUIDs
        self.sequenceMatch = sequenceMatch
    }
}

/// LIST, basic (RFC 3501 §6.3.8) or extended (RFC 5258) enough for SPECIAL-USE (RFC 6154).
public struct IMAPListCommand: Sendable, Hashable {
    public var selectOptions: [IMAPListSelectOption]
    public var reference: IMAPMailboxName
    /// `list-mailbox` patterns, decoded from modified UTF-7, wildcards `*` and `%` kept.
    public var patterns: [String]
    public var returnOptions: [IMAPListReturnOption]

    public init(selectOptions: [IMAPListSelectOption] = [], reference: IMAPMailboxName, patterns: [String],
                returnOptions: [IMAPListReturnOption] = []) {
        self.selectOptions = selectOptions
        self.reference = reference
        self.patterns = patterns
        self.returnOptions = returnOptions
    }
}

/// `list-select-opt` (RFC 5258 §6, RFC 6154 §6).
public enum IMAPListSelectOption: String, Sendable, Hashable, CaseIterable {
    case subscribed = "SUBSCRIBED"
    case remote = "REMOTE"
    case recursiveMatch = "RECURSIVEMATCH"
    case specialUse = "SPECIAL-USE"
}

/// `return-option` (RFC 5258 §6, RFC 6154 §6, RFC 5819 STATUS).
public enum IMAPListReturnOption: Sendable, Hashable {
    case subscribed
    case children
    case specialUse
    case status([IMAPStatusAttribute])
}

/// `status-att` (RFC 3501 §6.3.10; HIGHESTMODSEQ RFC 7162; SIZE RFC 8438; DELETED RFC 9208).
public enum IMAPStatusAttribute: String, Sendable, Hashable, CaseIterable {
    case messages = "MESSAGES"
    case recent = "RECENT"
    case uidNext = "UIDNEXT"
    case uidValidity = "UIDVALIDITY"
    case unseen = "UNSEEN"
    case highestModSeq = "HIGHESTMODSEQ"
    case size = "SIZE"
    case deleted = "DELETED"
}

/// `append = "APPEND" SP mailbox [SP flag-list] [SP date-time] SP literal`
public struct IMAPAppendCommand: Sendable, Hashable {
    public var mailbox: IMAPMailboxName
    public var flags: [IMAPFlag]
    public var date: IMAPDateTime?
    public var message: IMAPAppendMessage

    public init(mailbox: IMAPMailboxName, flags: [IMAPFlag] = [], date: IMAPDateTime? = nil, message: IMAPAppendMessage) {
        self.mailbox = mailbox
        self.flags = flags
        self.date = date
        self.message = message
    }
}

public enum IMAPAppendMessage: Sendable, Hashable {
    /// The framer streamed the message out (`IMAPFrame.appendMessageBytes`); the caller
    /// holds its `size` octets.
    case streamed(size: Int)
    /// The message was inside the command bytes (a command parsed without the framer).
    case inline([UInt8])
}

/// `store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag)))`
public struct IMAPStoreAction: Sendable, Hashable {
    public enum Operation: Sendable, Hashable {
        case add, remove, replace
    }

    public var operation: Operation
    public var silent: Bool
    public var flags: [IMAPFlag]

    public init(_ operation: Operation, silent: Bool = false, flags: [IMAPFlag]) {
        self.operation = operation
        self.silent = silent
        self.flags = flags
    }
}

/// One field of `ID` (RFC 2971): a name and a value or NIL.
public struct IMAPIDField: Sendable, Hashable {
    public var name: String
    public var value: String?

    public init(_ name: String, _ value: String?) {
        self.name = name
        self.value = value
    }
}

/// `setquota-resource = resource-name SP resource-limit` (RFC 9208 §4.1.3).
public struct IMAPQuotaLimit: Sendable, Hashable {
    /// Upper-cased: STORAGE, MESSAGE, MAILBOX, ANNOTATION-STORAGE or an extension.
    public var resource: String
    public var limit: UInt64

    public init(resource: String, limit: UInt64) {
        self.resource = resource
        self.limit = limit
    }
}
