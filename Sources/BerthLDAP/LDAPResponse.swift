import SwiftASN1

/// The operations a response is sent as, with their [APPLICATION n] tags (RFC 4511 §4.2).
public enum LDAPResponseOperation: UInt, Equatable, Sendable {
    case bind = 1
    case searchDone = 5
    case modify = 7
    case add = 9
    case delete = 11
    case modifyDN = 13
    case compare = 15
    case extended = 24
}

/// §4.1.9 and Appendix A.
public enum LDAPResultCode: Int, Equatable, Sendable {
    case success = 0
    case operationsError = 1
    case protocolError = 2
    case timeLimitExceeded = 3
    case sizeLimitExceeded = 4
    case compareFalse = 5
    case compareTrue = 6
    case authMethodNotSupported = 7
    case strongerAuthRequired = 8
    case adminLimitExceeded = 11
    case unavailableCriticalExtension = 12
    case confidentialityRequired = 13
    case saslBindInProgress = 14
    case noSuchAttribute = 16
    case undefinedAttributeType = 17
    case inappropriateMatching = 18
    case noSuchObject = 32
    case invalidDNSyntax = 34
    case inappropriateAuthentication = 48
    case invalidCredentials = 49
    case insufficientAccessRights = 50
    case busy = 51
    case unavailable = 52
    case unwillingToPerform = 53
    case other = 80
}

/// `LDAPResult` (§4.1.9) with what some responses add after it.
public struct LDAPResult: Equatable, Sendable {
    public var code: LDAPResultCode
    public var matchedDN: String
    public var diagnosticMessage: String
    /// ExtendedResponse `responseName` [10] and `responseValue` [11] (§4.12).
    public var responseName: String?
    public var responseValue: [UInt8]?

    public init(
        _ code: LDAPResultCode, matchedDN: String = "", diagnosticMessage: String = "", responseName: String? = nil,
        responseValue: [UInt8]? = nil
    ) {
        self.code = code
        self.matchedDN = matchedDN
        self.diagnosticMessage = diagnosticMessage
        self.responseName = responseName
        self.responseValue = responseValue
    }
}

/// One attribute of a search result entry (`PartialAttribute`, §4.1.7); with
/// `typesOnly`, `values` is empty.
public struct LDAPAttribute: Equatable, Sendable {
    public var type: String
    public var values: [[UInt8]]

    public init(_ type: String, _ values: [[UInt8]]) {
        self.type = type
        self.values = values
    }

    public init(_ type: String, strings: [String]) {
        self.init(type, strings.map { Array($0.utf8) })
    }
}

/// Encodes the server's LDAPMessages. Lengths come out minimal (DER), which every BER
/// reader takes (§5.1).
public enum LDAPEncoder {
    /// A response carrying an LDAPResult: bind, search done, modify … extended.
    public static func result(
        id: Int32, _ operation: LDAPResponseOperation, _ result: LDAPResult, controls: [LDAPControl] = []
    ) -> [UInt8] {
        message(id: id, controls: controls) { coder in
            try coder.appendConstructedNode(identifier: application(operation.rawValue)) { coder in
                try Int(result.code.rawValue).serialize(into: &coder, withIdentifier: .enumerated)
                try coder.serialize(ASN1OctetString(contentBytes: Array(result.matchedDN.utf8)[...]))
                try coder.serialize(ASN1OctetString(contentBytes: Array(result.diagnosticMessage.utf8)[...]))
                if let name = result.responseName {
                    try ASN1OctetString(contentBytes: Array(name.utf8)[...]).serialize(into: &coder, withIdentifier: context(10))
                }
                if let value = result.responseValue {
                    try ASN1OctetString(contentBytes: value[...]).serialize(into: &coder, withIdentifier: context(11))
                }
            }
        }
    }

    /// SearchResultEntry (§4.5.2).
    public static func entry(id: Int32, dn: String, attributes: [LDAPAttribute]) -> [UInt8] {
        message(id: id, controls: []) { coder in
            try coder.appendConstructedNode(identifier: application(4)) { coder in
                try coder.serialize(ASN1OctetString(contentBytes: Array(dn.utf8)[...]))
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    for attribute in attributes {
                        try coder.appendConstructedNode(identifier: .sequence) { coder in
                            try coder.serialize(ASN1OctetString(contentBytes: Array(attribute.type.utf8)[...]))
                            try coder.appendConstructedNode(identifier: .set) { coder in
                                for value in attribute.values { try coder.serialize(ASN1OctetString(contentBytes: value[...])) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The Notice of Disconnection (§4.4.1): an unsolicited ExtendedResponse, message id 0.
    public static func noticeOfDisconnection(_ code: LDAPResultCode, _ message: String) -> [UInt8] {
        result(id: 0, .extended, LDAPResult(code, diagnosticMessage: message, responseName: noticeOfDisconnectionOID))
    }

    public static let noticeOfDisconnectionOID = "1.3.6.1.4.1.1466.20036"

    /// Simple paged results (RFC 2696): the control a search's done carries, with the
    /// cookie that continues it (empty: the last page).
    public static func pagedResultsControl(size: Int, cookie: [UInt8]) -> LDAPControl {
        var coder = DER.Serializer()
        try! coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(size)
            try coder.serialize(ASN1OctetString(contentBytes: cookie[...]))
        }
        return LDAPControl(type: LDAPControl.pagedResults, value: coder.serializedBytes)
    }

    private static func message(
        id: Int32, controls: [LDAPControl], _ operation: (inout DER.Serializer) throws -> Void
    ) -> [UInt8] {
        var coder = DER.Serializer()
        // Nothing here can fail: every value is an integer or bytes the serializer takes.
        try! coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(Int(id))
            try operation(&coder)
            if !controls.isEmpty {
                try coder.appendConstructedNode(identifier: context(0)) { coder in
                    for control in controls {
                        try coder.appendConstructedNode(identifier: .sequence) { coder in
                            try coder.serialize(ASN1OctetString(contentBytes: Array(control.type.utf8)[...]))
                            if control.criticality { try coder.serialize(true) }
                            if let value = control.value { try coder.serialize(ASN1OctetString(contentBytes: value[...])) }
                        }
                    }
                }
            }
        }
        return coder.serializedBytes
    }

    static func application(_ tag: UInt) -> ASN1Identifier { ASN1Identifier(tagWithNumber: tag, tagClass: .application) }
    static func context(_ tag: UInt) -> ASN1Identifier { ASN1Identifier(tagWithNumber: tag, tagClass: .contextSpecific) }
}

extension LDAPControl {
    /// RFC 2696.
    public static let pagedResults = "1.2.840.113556.1.4.319"
}
