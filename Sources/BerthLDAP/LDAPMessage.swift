/// A request as the client sent it (RFC 4511 §4): one LDAPMessage, decoded by
/// `LDAPDecoder`. Values are bytes (`AssertionValue` and `OCTET STRING` are opaque);
/// names, descriptions and OIDs are `LDAPString`s, UTF-8 (§4.1.2).
public struct LDAPMessage: Equatable, Sendable {
    /// 1…2³¹−1 from a client; 0 is reserved for unsolicited notifications (§4.1.1.1).
    public var id: Int32
    public var request: LDAPRequest
    public var controls: [LDAPControl]

    public init(id: Int32, request: LDAPRequest, controls: [LDAPControl] = []) {
        self.id = id
        self.request = request
        self.controls = controls
    }
}

/// `protocolOp`, the requests a client may send. Update operations carry only what a
/// read-only directory needs to answer them.
public enum LDAPRequest: Equatable, Sendable {
    case bind(LDAPBindRequest)
    case unbind
    case search(LDAPSearchRequest)
    case modify(dn: String)
    case add(dn: String)
    case delete(dn: String)
    case modifyDN(dn: String)
    case compare(LDAPCompareRequest)
    case abandon(Int32)
    case extended(LDAPExtendedRequest)

    /// The response this request gets, if any (§4.2–§4.12).
    public var responseOperation: LDAPResponseOperation? {
        switch self {
        case .bind: .bind
        case .search: .searchDone
        case .modify: .modify
        case .add: .add
        case .delete: .delete
        case .modifyDN: .modifyDN
        case .compare: .compare
        case .extended: .extended
        case .unbind, .abandon: nil
        }
    }

    /// For the mail log.
    public var name: String {
        switch self {
        case .bind: "bind"
        case .unbind: "unbind"
        case .search: "search"
        case .modify: "modify"
        case .add: "add"
        case .delete: "delete"
        case .modifyDN: "modifyDN"
        case .compare: "compare"
        case .abandon: "abandon"
        case .extended: "extended"
        }
    }
}

/// §4.1.11. `value` is nil when the control has none.
public struct LDAPControl: Equatable, Sendable {
    public var type: String
    public var criticality: Bool
    public var value: [UInt8]?

    public init(type: String, criticality: Bool = false, value: [UInt8]? = nil) {
        self.type = type
        self.criticality = criticality
        self.value = value
    }
}

/// §4.2.
public struct LDAPBindRequest: Equatable, Sendable {
    public enum Authentication: Equatable, Sendable {
        case simple(password: [UInt8])
        case sasl(mechanism: String, credentials: [UInt8]?)
    }

    public var version: Int
    public var name: String
    public var authentication: Authentication

    public init(version: Int = 3, name: String, authentication: Authentication) {
        self.version = version
        self.name = name
        self.authentication = authentication
    }
}

/// §4.5.1.
public struct LDAPSearchRequest: Equatable, Sendable {
    public enum Scope: Int, Equatable, Sendable {
        case baseObject = 0, singleLevel = 1, wholeSubtree = 2
    }

    public var base: String
    public var scope: Scope
    /// 0 neverDerefAliases … 3 derefAlways; a directory without aliases can ignore it.
    public var derefAliases: Int
    /// 0: no limit asked for.
    public var sizeLimit: Int
    /// Seconds; 0: no limit asked for.
    public var timeLimit: Int
    public var typesOnly: Bool
    public var filter: LDAPFilter
    /// Empty: all user attributes (§4.5.1.8).
    public var attributes: [String]

    public init(
        base: String, scope: Scope, derefAliases: Int = 0, sizeLimit: Int = 0, timeLimit: Int = 0, typesOnly: Bool = false,
        filter: LDAPFilter, attributes: [String] = []
    ) {
        self.base = base
        self.scope = scope
        self.derefAliases = derefAliases
        self.sizeLimit = sizeLimit
        self.timeLimit = timeLimit
        self.typesOnly = typesOnly
        self.filter = filter
        self.attributes = attributes
    }
}

/// §4.10.
public struct LDAPCompareRequest: Equatable, Sendable {
    public var dn: String
    public var attribute: String
    public var value: [UInt8]

    public init(dn: String, attribute: String, value: [UInt8]) {
        self.dn = dn
        self.attribute = attribute
        self.value = value
    }
}

/// §4.12.
public struct LDAPExtendedRequest: Equatable, Sendable {
    public var name: String
    public var value: [UInt8]?

    public init(name: String, value: [UInt8]? = nil) {
        self.name = name
        self.value = value
    }

    /// RFC 4511 §4.14.1.
    public static let startTLS = "1.3.6.1.4.1.1466.20037"
    /// RFC 4532.
    public static let whoAmI = "1.3.6.1.4.1.4203.1.11.3"
}

/// §4.5.1.7. Attribute descriptions are kept as sent; matching decides how to compare them.
public indirect enum LDAPFilter: Equatable, Sendable {
    case and([LDAPFilter])
    case or([LDAPFilter])
    case not(LDAPFilter)
    case equalityMatch(attribute: String, value: [UInt8])
    case substrings(attribute: String, initial: [UInt8]?, any: [[UInt8]], final: [UInt8]?)
    case greaterOrEqual(attribute: String, value: [UInt8])
    case lessOrEqual(attribute: String, value: [UInt8])
    case present(attribute: String)
    case approxMatch(attribute: String, value: [UInt8])
    case extensibleMatch(rule: String?, attribute: String?, value: [UInt8], dnAttributes: Bool)
}
