import Testing
@testable import BerthLDAP

/// Bytes as hex, for fixtures captured from real clients.
func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.filter { !$0.isWhitespace })
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

/// A BER TLV with a minimal length, for hand-made malformed cases.
func tlv(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
    let count = content.count
    let length: [UInt8] = count < 0x80 ? [UInt8(count)] : count < 0x100 ? [0x81, UInt8(count)] : [0x82, UInt8(count >> 8), UInt8(count & 0xFF)]
    return [tag] + length + content
}

func octets(_ text: String, tag: UInt8 = 0x04) -> [UInt8] { tlv(tag, Array(text.utf8)) }
let alice = "uid=alice,ou=people,dc=example,dc=com"

@Suite("LDAP decoder: requests as real clients send them, and what malformed ones get")
struct LDAPDecoderTests {
    /// Captured from ldap-utils 2.5 (`ldapsearch`, `ldapwhoami`) and Python ldap3 2.9.
    static let captured: [(String, String, LDAPMessage)] = [
        ("ldapsearch -x: anonymous bind", "300c020101600702010304008000",
         LDAPMessage(id: 1, request: .bind(LDAPBindRequest(name: "", authentication: .simple(password: []))))),
        ("ldapsearch -D … -w secret: simple bind by DN",
         "3037020101603202010304257569643d616c6963652c6f753d70656f706c652c64633d6578616d706c652c64633d636f6d8006736563726574",
         LDAPMessage(id: 1, request: .bind(LDAPBindRequest(name: alice, authentication: .simple(password: Array("secret".utf8)))))),
        ("ldapwhoami -D alice@example.com: simple bind by mail address",
         "3023020101601e0201030411616c696365406578616d706c652e636f6d8006736563726574",
         LDAPMessage(id: 1, request: .bind(LDAPBindRequest(name: "alice@example.com", authentication: .simple(password: Array("secret".utf8)))))),
        ("ldapwhoami: Who am I? extended request", "301e02010277198017312e332e362e312e342e312e343230332e312e31312e33",
         LDAPMessage(id: 2, request: .extended(LDAPExtendedRequest(name: LDAPExtendedRequest.whoAmI)))),
        ("ldapsearch: unbind", "30050201034200", LDAPMessage(id: 3, request: .unbind)),
        ("ldapsearch -b '' -s base: root DSE",
         "304b020102634604000a01000a0100020100020100010100870b6f626a656374636c6173733026040e6e616d696e67436f6e74657874730414737570706f727465644c44415056657273696f6e",
         LDAPMessage(id: 2, request: .search(LDAPSearchRequest(
             base: "", scope: .baseObject, filter: .present(attribute: "objectclass"),
             attributes: ["namingContexts", "supportedLDAPVersion"])))),
        ("ldapsearch: and, or, not, substrings",
         "30819002010263818a041164633d6578616d706c652c64633d636f6d0a01020a0100020100020100010100a05aa31c040b6f626a656374436c617373040d696e65744f7267506572736f6ea12ca41a04046d61696c30128002616c820c406578616d706c652e636f6da40e0402636e300881026c6982026365a20ca30a04037569640403626f62300a0402636e04046d61696c",
         LDAPMessage(id: 2, request: .search(LDAPSearchRequest(
             base: "dc=example,dc=com", scope: .wholeSubtree,
             filter: .and([
                 .equalityMatch(attribute: "objectClass", value: Array("inetOrgPerson".utf8)),
                 .or([
                     .substrings(attribute: "mail", initial: Array("al".utf8), any: [], final: Array("@example.com".utf8)),
                     .substrings(attribute: "cn", initial: nil, any: [Array("li".utf8)], final: Array("ce".utf8)),
                 ]),
                 .not(.equalityMatch(attribute: "uid", value: Array("bob".utf8))),
             ]),
             attributes: ["cn", "mail"])))),
        ("ldapsearch -E pr=100 -z 500 -l 10 -A -s one: paged, limits, typesOnly, greaterOrEqual",
         "30620201026338041b6f753d70656f706c652c64633d6578616d706c652c64633d636f6d0a01010a0100020201f402010a0101ffa5070402736e04014d3000a02330210416312e322e3834302e3131333535362e312e342e333139040730050201640400",
         LDAPMessage(
             id: 2,
             request: .search(LDAPSearchRequest(
                 base: "ou=people,dc=example,dc=com", scope: .singleLevel, sizeLimit: 500, timeLimit: 10, typesOnly: true,
                 filter: .greaterOrEqual(attribute: "sn", value: Array("M".utf8)))),
             controls: [LDAPControl(type: LDAPControl.pagedResults, value: hex("3005020164 0400"))])),
        ("ldapsearch: extensibleMatch with rule and type",
         "30550201026350041164633d6578616d706c652c64633d636f6d0a01020a0100020100020100010100a91b810e6361736545786163744d617463688202636e8305416c696365300f040d286d61696c7e3d616c69736529",
         LDAPMessage(id: 2, request: .search(LDAPSearchRequest(
             base: "dc=example,dc=com", scope: .wholeSubtree,
             filter: .extensibleMatch(rule: "caseExactMatch", attribute: "cn", value: Array("Alice".utf8), dnAttributes: false),
             attributes: ["(mail~=alise)"])))),
        ("ldapsearch: lessOrEqual and present, empty attribute list",
         "30480201026343041164633d6578616d706c652c64633d636f6d0a01020a0100020100020100010100a01da61004097569644e756d62657204033130308709676976656e4e616d653000",
         LDAPMessage(id: 2, request: .search(LDAPSearchRequest(
             base: "dc=example,dc=com", scope: .wholeSubtree,
             filter: .and([.lessOrEqual(attribute: "uidNumber", value: Array("100".utf8)), .present(attribute: "givenName")]))))),
        ("ldap3: derefAlways, substrings with two any, paged 50",
         "30730201026349041164633d6578616d706c652c64633d636f6d0a01020a0103020100020100010100a01987046d61696ca4110402636e300b8002416c81026963820165300a0402636e04046d61696ca02330210416312e322e3834302e3131333535362e312e342e333139040730050201320400",
         LDAPMessage(
             id: 2,
             request: .search(LDAPSearchRequest(
                 base: "dc=example,dc=com", scope: .wholeSubtree, derefAliases: 3,
                 filter: .and([
                     .present(attribute: "mail"),
                     .substrings(attribute: "cn", initial: Array("Al".utf8), any: [Array("ic".utf8)], final: Array("e".utf8)),
                 ]),
                 attributes: ["cn", "mail"])),
             controls: [LDAPControl(type: LDAPControl.pagedResults, value: hex("3005020132 0400"))])),
        ("ldap3: compare",
         "30470201036e4204257569643d616c6963652c6f753d70656f706c652c64633d6578616d706c652c64633d636f6d301904046d61696c0411616c696365406578616d706c652e636f6d",
         LDAPMessage(id: 3, request: .compare(LDAPCompareRequest(dn: alice, attribute: "mail", value: Array("alice@example.com".utf8))))),
    ]

    @Test("Captured client requests decode", arguments: captured)
    func capturedRequests(label: String, bytes: String, expected: LDAPMessage) throws {
        let pdu = hex(bytes)
        #expect(try LDAPFramer.frame(pdu, maxSize: 1 << 20) == .message(length: pdu.count), "\(label)")
        #expect(try LDAPDecoder.decode(pdu[...]) == expected, "\(label)")
    }

    @Test("The paged results control's value is read", arguments: [
        ("3005020164 0400", 100, []),
        ("300a020132 0405 6162636465", 50, Array("abcde".utf8)),
    ] as [(String, Int, [UInt8])])
    func pagedResults(value: String, size: Int, cookie: [UInt8]) {
        let parsed = LDAPDecoder.pagedResults(hex(value))
        #expect(parsed?.size == size && parsed?.cookie == cookie)
    }

    @Test("A bad paged results value is nil", arguments: ["", "3003020164", "3005020164 0101ff", "0400", "300602010104000400"])
    func badPagedResults(value: String) {
        #expect(LDAPDecoder.pagedResults(hex(value)) == nil)
    }

    static func message(_ id: [UInt8], _ operation: [UInt8], _ rest: [UInt8] = []) -> [UInt8] {
        tlv(0x30, tlv(0x02, id) + operation + rest)
    }

    static func search(filter: [UInt8], scope: UInt8 = 2) -> [UInt8] {
        message([7], tlv(0x63, octets("dc=example,dc=com") + [0x0A, 1, scope, 0x0A, 1, 0, 0x02, 1, 0, 0x02, 1, 0, 0x01, 1, 0] + filter + tlv(0x30, [])))
    }

    static let simpleBind = tlv(0x60, [0x02, 1, 3] + octets(alice) + octets("pw", tag: 0x80))

    /// What the session does: disconnect (nil id) or answer that id with protocolError.
    static let malformed: [(String, [UInt8], Int32?)] = [
        ("not a SEQUENCE", tlv(0x31, [0x02, 1, 1] + simpleBind), nil),
        ("messageID 0 (reserved for the server)", message([0], simpleBind), nil),
        ("messageID negative", message([0xFF], simpleBind), nil),
        ("messageID over 2^31-1", message([0x00, 0x80, 0, 0, 0], simpleBind), nil),
        ("no protocolOp", tlv(0x30, [0x02, 1, 1]), nil),
        ("a response tag from a client (bindResponse)", message([1], tlv(0x61, [0x0A, 1, 0] + octets("") + octets(""))), nil),
        ("an unknown application tag", message([1], tlv(0x7E, [])), nil),
        ("truncated inner length", [0x30, 0x05, 0x02, 0x09, 0x01, 0x42, 0x00], nil),
        ("trailing bytes inside the message", tlv(0x30, [0x02, 1, 3, 0x42, 0x00]) + [0x00], nil),
        ("bind version 0", message([1], tlv(0x60, [0x02, 1, 0] + octets(alice) + octets("pw", tag: 0x80))), 1),
        ("bind version 128", message([1], tlv(0x60, [0x02, 2, 0, 128] + octets(alice) + octets("pw", tag: 0x80))), 1),
        ("bind name not UTF-8", message([1], tlv(0x60, [0x02, 1, 3] + tlv(0x04, [0xC3, 0x28]) + octets("pw", tag: 0x80))), 1),
        ("bind name as a constructed OCTET STRING", message([1], tlv(0x60, [0x02, 1, 3] + tlv(0x24, octets("uid=a")) + octets("pw", tag: 0x80))), 1),
        ("bind authentication [1] (removed in LDAPv3)", message([1], tlv(0x60, [0x02, 1, 3] + octets(alice) + octets("pw", tag: 0x81))), 1),
        ("bind without authentication", message([1], tlv(0x60, [0x02, 1, 3] + octets(alice))), 1),
        ("bind with a trailing field", message([1], tlv(0x60, [0x02, 1, 3] + octets(alice) + octets("pw", tag: 0x80) + [0x05, 0])), 1),
        ("search scope 3", search(filter: tlv(0x87, Array("cn".utf8)), scope: 3), 7),
        ("search filter choice [10]", search(filter: tlv(0xAA, [])), 7),
        ("search filter universal, not a choice", search(filter: octets("cn")), 7),
        ("substrings with no part", search(filter: tlv(0xA4, octets("cn") + tlv(0x30, []))), 7),
        ("substrings initial after any", search(filter: tlv(0xA4, octets("cn") + tlv(0x30, tlv(0x81, [0x61]) + tlv(0x80, [0x62])))), 7),
        ("substrings part after final", search(filter: tlv(0xA4, octets("cn") + tlv(0x30, tlv(0x82, [0x61]) + tlv(0x81, [0x62])))), 7),
        ("not with two filters", search(filter: tlv(0xA2, tlv(0x87, [0x61]) + tlv(0x87, [0x62]))), 7),
        ("equality without a value", search(filter: tlv(0xA3, octets("cn"))), 7),
        ("extensibleMatch without rule or type", search(filter: tlv(0xA9, tlv(0x83, [0x61]))), 7),
        ("search without attributes", message([7], tlv(0x63, octets("") + [0x0A, 1, 0, 0x0A, 1, 0, 0x02, 1, 0, 0x02, 1, 0, 0x01, 1, 0] + tlv(0x87, [0x61]))), 7),
        ("sizeLimit negative", message([7], tlv(0x63, octets("") + [0x0A, 1, 0, 0x0A, 1, 0, 0x02, 1, 0xFF, 0x02, 1, 0, 0x01, 1, 0] + tlv(0x87, [0x61]) + tlv(0x30, []))), 7),
        ("controls not [0]", message([1], simpleBind, tlv(0x30, [])), 1),
        ("control without a type", message([1], simpleBind, tlv(0xA0, tlv(0x30, [0x01, 1, 0xFF]))), 1),
        ("data after the controls", message([1], simpleBind, tlv(0xA0, []) + [0x05, 0]), 1),
        ("compare without an assertion", message([5], tlv(0x6E, octets(alice))), 5),
        ("extended request without a name", message([4], tlv(0x77, [])), 4),
    ]

    @Test("Malformed messages end the session; malformed requests get protocolError", arguments: malformed)
    func malformedInput(label: String, bytes: [UInt8], answeredID: Int32?) {
        do {
            let decoded = try LDAPDecoder.decode(bytes[...])
            Issue.record("\(label): decoded as \(decoded)")
        } catch {
            switch error {
            case .malformedMessage:
                #expect(answeredID == nil, "\(label): \(error)")
            case .malformedRequest(let id, _, _):
                #expect(answeredID == id, "\(label): \(error)")
            }
        }
    }

    @Test("Filters nested past the parser's depth limit are refused, not recursed into")
    func deepNesting() {
        var filter = tlv(0x87, Array("cn".utf8))
        for _ in 0..<200 { filter = tlv(0xA2, filter) }
        let pdu = Self.search(filter: filter)
        #expect(throws: LDAPDecodeError.self) { try LDAPDecoder.decode(pdu[...]) }
        var shallow = tlv(0x87, Array("cn".utf8))
        for _ in 0..<20 { shallow = tlv(0xA2, shallow) }
        #expect((try? LDAPDecoder.decode(Self.search(filter: shallow)[...])) != nil)
    }

    @Test("Abandon, delete, modify, add and modifyDN decode to what a read-only directory answers")
    func otherOperations() throws {
        #expect(try LDAPDecoder.decode(Self.message([9], [0x50, 0x01, 0x05])[...]).request == .abandon(5))
        #expect(try LDAPDecoder.decode(Self.message([9], tlv(0x4A, Array(alice.utf8)))[...]).request == .delete(dn: alice))
        let change = tlv(0x30, tlv(0x30, [0x0A, 1, 0] + tlv(0x30, octets("cn") + tlv(0x31, octets("x")))))
        #expect(try LDAPDecoder.decode(Self.message([9], tlv(0x66, octets(alice) + change))[...]).request == .modify(dn: alice))
        #expect(try LDAPDecoder.decode(Self.message([9], tlv(0x68, octets(alice) + tlv(0x30, [])))[...]).request == .add(dn: alice))
        #expect(try LDAPDecoder.decode(Self.message([9], tlv(0x6C, octets(alice) + octets("uid=b") + [0x01, 1, 0xFF]))[...]).request == .modifyDN(dn: alice))
        #expect(try LDAPDecoder.decode(Self.message([9], tlv(0x77, octets(LDAPExtendedRequest.startTLS, tag: 0x80)))[...]).request
            == .extended(LDAPExtendedRequest(name: LDAPExtendedRequest.startTLS)))
    }
}
