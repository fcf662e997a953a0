import SwiftASN1

/// Why a message could not be decoded, and so how the server answers it.
public enum LDAPDecodeError: Error, Equatable, Sendable {
    /// The message's envelope, id or operation cannot be read: RFC 4511 §4.1.1 has the
    /// server send a Notice of Disconnection (protocolError) and end the session.
    case malformedMessage(String)
    /// The id and operation are known and the request's contents are not valid: the
    /// request is answered with protocolError (nil: one that gets no response) and the
    /// session goes on.
    case malformedRequest(id: Int32, operation: LDAPResponseOperation?, reason: String)
}

/// Decodes one framed LDAPMessage (RFC 4511 §4, BER per §5.1) with SwiftASN1's BER
/// parser, which bounds nesting at 50 levels; the framer has already bounded its size.
/// OCTET STRINGs must be primitive (§5.1), strings UTF-8 (§4.1.2).
public enum LDAPDecoder {
    public static func decode(_ bytes: ArraySlice<UInt8>) throws(LDAPDecodeError) -> LDAPMessage {
        let root: ASN1Node
        do {
            root = try BER.parse(bytes)
        } catch {
            throw .malformedMessage("not valid BER: \(error)")
        }
        guard root.identifier == .sequence, case .constructed(let nodes) = root.content else {
            throw .malformedMessage("an LDAPMessage is a SEQUENCE")
        }
        var children = nodes.makeIterator()
        guard let idNode = children.next(), let id = try? Int32(berEncoded: idNode, withIdentifier: .integer), id > 0 else {
            throw .malformedMessage("messageID missing or not in 1…2147483647")
        }
        guard let operationNode = children.next(), operationNode.identifier.tagClass == .application else {
            throw .malformedMessage("message \(id): protocolOp missing")
        }
        let tag = operationNode.identifier.tagNumber
        guard let kind = OperationKind(rawValue: tag) else {
            throw .malformedMessage("message \(id): [APPLICATION \(tag)] is not a request")
        }
        do {
            let request = try kind.decode(operationNode)
            var controls: [LDAPControl] = []
            if let controlsNode = children.next() {
                controls = try decodeControls(controlsNode)
                guard children.next() == nil else { throw Invalid("data after the controls") }
            }
            return LDAPMessage(id: id, request: request, controls: controls)
        } catch let invalid as Invalid {
            throw .malformedRequest(id: id, operation: kind.responseOperation, reason: invalid.reason)
        } catch {
            throw .malformedRequest(id: id, operation: kind.responseOperation, reason: "\(error)")
        }
    }

    /// The request operations' [APPLICATION n] tags (§4.2–§4.12).
    enum OperationKind: UInt {
        case bind = 0, unbind = 2, search = 3, modify = 6, add = 8, delete = 10, modifyDN = 12, compare = 14
        case abandon = 16, extended = 23

        var responseOperation: LDAPResponseOperation? {
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

        func decode(_ node: ASN1Node) throws -> LDAPRequest {
            switch self {
            case .unbind:
                return .unbind  // NULL; its contents are not looked at
            case .abandon:
                return .abandon(try Int32(berEncoded: node, withIdentifier: node.identifier))
            case .delete:
                return .delete(dn: try string(node, node.identifier))
            default:
                break
            }
            var fields = try Fields(node)
            let request: LDAPRequest
            switch self {
            case .bind: request = .bind(try LDAPDecoder.bind(&fields))
            case .search: request = .search(try LDAPDecoder.search(&fields))
            case .compare:
                let dn = try fields.string("entry")
                var ava = try Fields(try fields.next("ava"), .sequence)
                request = .compare(LDAPCompareRequest(dn: dn, attribute: try ava.string("attributeDesc"), value: try ava.octets("assertionValue")))
                try ava.end()
            case .extended:
                let name = try string(try fields.next("requestName"), LDAPEncoder.context(0))
                let value = try fields.optional(LDAPEncoder.context(1)).map { try octets($0, LDAPEncoder.context(1)) }
                request = .extended(LDAPExtendedRequest(name: name, value: value))
            // A read-only directory answers these from their DN; the rest is not looked at.
            case .modify: return .modify(dn: try fields.string("object"))
            case .add: return .add(dn: try fields.string("entry"))
            case .modifyDN: return .modifyDN(dn: try fields.string("entry"))
            case .unbind, .abandon, .delete: preconditionFailure("handled above")
            }
            try fields.end()
            return request
        }
    }

    static func bind(_ fields: inout Fields) throws -> LDAPBindRequest {
        let version = try fields.integer("version")
        guard (1...127).contains(version) else { throw Invalid("version \(version) is not 1…127") }
        let name = try fields.string("name")
        let authentication = try fields.next("authentication")
        switch authentication.identifier {
        case LDAPEncoder.context(0):
            return LDAPBindRequest(version: version, name: name, authentication: .simple(password: try octets(authentication, authentication.identifier)))
        case LDAPEncoder.context(3):
            var sasl = try Fields(authentication, authentication.identifier)
            let mechanism = try sasl.string("mechanism")
            let credentials = try sasl.optional(.octetString).map { try octets($0, .octetString) }
            try sasl.end()
            return LDAPBindRequest(version: version, name: name, authentication: .sasl(mechanism: mechanism, credentials: credentials))
        default:
            throw Invalid("authentication choice \(authentication.identifier) is neither simple [0] nor sasl [3]")
        }
    }

    static func search(_ fields: inout Fields) throws -> LDAPSearchRequest {
        let base = try fields.string("baseObject")
        guard let scope = LDAPSearchRequest.Scope(rawValue: try fields.integer("scope", .enumerated)) else {
            throw Invalid("scope is not baseObject, singleLevel or wholeSubtree")
        }
        let deref = try fields.integer("derefAliases", .enumerated)
        guard (0...3).contains(deref) else { throw Invalid("derefAliases \(deref) is not 0…3") }
        let sizeLimit = try fields.integer("sizeLimit")
        let timeLimit = try fields.integer("timeLimit")
        guard sizeLimit >= 0, timeLimit >= 0, sizeLimit <= Int(Int32.max), timeLimit <= Int(Int32.max) else {
            throw Invalid("sizeLimit and timeLimit are 0…2147483647")
        }
        let typesOnly = try Bool(berEncoded: try fields.next("typesOnly"), withIdentifier: .boolean)
        let filter = try self.filter(try fields.next("filter"))
        var selection = try Fields(try fields.next("attributes"), .sequence)
        var attributes: [String] = []
        while let attribute = selection.nextIfAny() { attributes.append(try string(attribute, .octetString)) }
        return LDAPSearchRequest(
            base: base, scope: scope, derefAliases: deref, sizeLimit: sizeLimit, timeLimit: timeLimit, typesOnly: typesOnly,
            filter: filter, attributes: attributes)
    }

    /// §4.5.1.7; the choices are context tags 0–9.
    static func filter(_ node: ASN1Node) throws -> LDAPFilter {
        guard node.identifier.tagClass == .contextSpecific else { throw Invalid("filter \(node.identifier) is not a Filter choice") }
        let tag = node.identifier
        switch tag.tagNumber {
        case 0, 1:
            // RFC 4526: an empty and is absolute true, an empty or absolute false.
            var set = try Fields(node, tag)
            var filters: [LDAPFilter] = []
            while let child = set.nextIfAny() { filters.append(try filter(child)) }
            return tag.tagNumber == 0 ? .and(filters) : .or(filters)
        case 2:
            var inner = try Fields(node, tag)
            let negated = try filter(try inner.next("not's filter"))
            try inner.end()
            return .not(negated)
        case 3, 5, 6, 8:
            var ava = try Fields(node, tag)
            let attribute = try ava.string("attributeDesc")
            let value = try ava.octets("assertionValue")
            try ava.end()
            switch tag.tagNumber {
            case 3: return .equalityMatch(attribute: attribute, value: value)
            case 5: return .greaterOrEqual(attribute: attribute, value: value)
            case 6: return .lessOrEqual(attribute: attribute, value: value)
            default: return .approxMatch(attribute: attribute, value: value)
            }
        case 4:
            var fields = try Fields(node, tag)
            let attribute = try fields.string("type")
            var parts = try Fields(try fields.next("substrings"), .sequence)
            try fields.end()
            var initial: [UInt8]?
            var any: [[UInt8]] = []
            var final: [UInt8]?
            var count = 0
            while let part = parts.nextIfAny() {
                guard part.identifier.tagClass == .contextSpecific, final == nil else {
                    throw Invalid("substrings: a part after final, or not [0]/[1]/[2]")
                }
                let value = try octets(part, part.identifier)
                switch part.identifier.tagNumber {
                case 0 where count == 0: initial = value
                case 1: any.append(value)
                case 2: final = value
                default: throw Invalid("substrings: initial [0] only first; parts are [0], [1] or [2]")
                }
                count += 1
            }
            guard count > 0 else { throw Invalid("substrings: no part") }
            return .substrings(attribute: attribute, initial: initial, any: any, final: final)
        case 7:
            return .present(attribute: try string(node, tag))
        case 9:
            var fields = try Fields(node, tag)
            let rule = try fields.optional(LDAPEncoder.context(1)).map { try string($0, LDAPEncoder.context(1)) }
            let type = try fields.optional(LDAPEncoder.context(2)).map { try string($0, LDAPEncoder.context(2)) }
            let value = try octets(try fields.next("matchValue"), LDAPEncoder.context(3))
            let dnAttributes = try fields.optional(LDAPEncoder.context(4)).map { try Bool(berEncoded: $0, withIdentifier: LDAPEncoder.context(4)) } ?? false
            try fields.end()
            guard rule != nil || type != nil else { throw Invalid("extensibleMatch without matchingRule or type") }
            return .extensibleMatch(rule: rule, attribute: type, value: value, dnAttributes: dnAttributes)
        default:
            throw Invalid("filter choice [\(tag.tagNumber)] does not exist")
        }
    }

    static func decodeControls(_ node: ASN1Node) throws -> [LDAPControl] {
        var list = try Fields(node, LDAPEncoder.context(0))
        var controls: [LDAPControl] = []
        while let controlNode = list.nextIfAny() {
            var fields = try Fields(controlNode, .sequence)
            let type = try fields.string("controlType")
            let criticality = try fields.optional(.boolean).map { try Bool(berEncoded: $0, withIdentifier: .boolean) } ?? false
            let value = try fields.optional(.octetString).map { try octets($0, .octetString) }
            try fields.end()
            controls.append(LDAPControl(type: type, criticality: criticality, value: value))
        }
        return controls
    }

    /// The simple paged results control's value (RFC 2696 §2): page size and cookie.
    public static func pagedResults(_ value: [UInt8]?) -> (size: Int, cookie: [UInt8])? {
        guard let value, let node = try? BER.parse(value), var fields = try? Fields(node, .sequence),
              let size = try? fields.integer("size"), size >= 0, let cookie = try? fields.octets("cookie"), (try? fields.end()) != nil
        else { return nil }
        return (size, cookie)
    }

    // MARK: - fields

    struct Invalid: Error {
        let reason: String
        init(_ reason: String) { self.reason = reason }
    }

    /// The components of a constructed node, read in order.
    struct Fields {
        private var iterator: ASN1NodeCollection.Iterator

        init(_ node: ASN1Node, _ identifier: ASN1Identifier? = nil) throws {
            if let identifier, node.identifier != identifier {
                throw Invalid("\(node.identifier) where \(identifier) belongs")
            }
            guard case .constructed(let nodes) = node.content else { throw Invalid("\(node.identifier) must be constructed") }
            iterator = nodes.makeIterator()
        }

        mutating func nextIfAny() -> ASN1Node? { iterator.next() }

        mutating func next(_ what: String) throws -> ASN1Node {
            guard let node = iterator.next() else { throw Invalid("\(what) missing") }
            return node
        }

        /// The next component if it has `identifier` (an OPTIONAL or DEFAULT one).
        mutating func optional(_ identifier: ASN1Identifier) throws -> ASN1Node? {
            var peek = iterator
            guard let node = peek.next(), node.identifier == identifier else { return nil }
            iterator = peek
            return node
        }

        mutating func string(_ what: String) throws -> String { try LDAPDecoder.string(try next(what), .octetString) }
        mutating func octets(_ what: String) throws -> [UInt8] { try LDAPDecoder.octets(try next(what), .octetString) }

        mutating func integer(_ what: String, _ identifier: ASN1Identifier = .integer) throws -> Int {
            let node = try next(what)
            guard let value = try? Int32(berEncoded: node, withIdentifier: identifier) else {
                throw Invalid("\(what) is not an \(identifier == .enumerated ? "ENUMERATED" : "INTEGER") of 32 bits")
            }
            return Int(value)
        }

        func end() throws {
            var rest = iterator
            guard rest.next() == nil else { throw Invalid("unexpected trailing field") }
        }
    }

    static func octets(_ node: ASN1Node, _ identifier: ASN1Identifier) throws -> [UInt8] {
        guard node.identifier == identifier else { throw Invalid("\(node.identifier) where \(identifier) belongs") }
        guard case .primitive(let bytes) = node.content else { throw Invalid("constructed OCTET STRING (RFC 4511 §5.1: primitive only)") }
        return Array(bytes)
    }

    static func string(_ node: ASN1Node, _ identifier: ASN1Identifier) throws -> String {
        let bytes = try octets(node, identifier)
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.utf8.elementsEqual(bytes) else { throw Invalid("not UTF-8 (RFC 4511 §4.1.2)") }
        return text
    }
}
