import SwiftASN1
import Testing
@testable import BerthLDAP

@Suite("LDAP encoder: responses byte for byte, and readable back")
struct LDAPEncoderTests {
    @Test("Results", arguments: [
        ("bind success, as slapd sends it", LDAPEncoder.result(id: 1, .bind, LDAPResult(.success)), "300c02010161070a010004000400"),
        ("search done, no such object, with matched DN and message",
         LDAPEncoder.result(id: 2, .searchDone, LDAPResult(.noSuchObject, matchedDN: "dc=com", diagnosticMessage: "no")),
         "3014 020102 650f 0a0120 040664633d636f6d 04026e6f"),
        ("Who am I? response", LDAPEncoder.result(id: 2, .extended, LDAPResult(.success, responseValue: Array("u:alice".utf8))),
         "3015 020102 7810 0a0100 0400 0400 8b07753a616c696365"),
        ("Notice of Disconnection", LDAPEncoder.noticeOfDisconnection(.protocolError, ""),
         "302402010078" + "1f0a010204000400" + "8a16312e332e362e312e342e312e313436362e3230303336"),
    ] as [(String, [UInt8], String)])
    func results(label: String, bytes: [UInt8], expected: String) {
        #expect(bytes == hex(expected), "\(label): \(bytes.map(format2).joined())")
    }

    @Test("A search result entry decodes back to its DN and attributes")
    func entry() throws {
        let bytes = LDAPEncoder.entry(id: 3, dn: alice, attributes: [
            LDAPAttribute("cn", strings: ["Alice Liddell"]), LDAPAttribute("mail", strings: ["alice@example.com", "al@example.com"]),
            LDAPAttribute("objectClass", []),
        ])
        #expect(try LDAPFramer.frame(bytes, maxSize: 1 << 16) == .message(length: bytes.count))
        let root = try DER.parse(bytes)
        try DER.sequence(root, identifier: .sequence) { nodes in
            #expect(try Int(derEncoded: &nodes) == 3)
            let entry = nodes.next()!
            #expect(entry.identifier == ASN1Identifier(tagWithNumber: 4, tagClass: .application))
            try DER.sequence(entry, identifier: entry.identifier) { fields in
                #expect(try ASN1OctetString(derEncoded: &fields).bytes == Array(alice.utf8)[...])
                let attributes = try DER.sequence(of: PartialAttribute.self, identifier: .sequence, nodes: &fields)
                #expect(attributes.map(\.type) == ["cn", "mail", "objectClass"])
                #expect(attributes[1].values == ["alice@example.com", "al@example.com"])
                #expect(attributes[2].values.isEmpty)
            }
        }
    }

    @Test("The paged results control round-trips through the decoder")
    func pagedControl() throws {
        let control = LDAPEncoder.pagedResultsControl(size: 0, cookie: [1, 2, 3])
        #expect(control.type == "1.2.840.113556.1.4.319")
        #expect(LDAPDecoder.pagedResults(control.value)?.cookie == [1, 2, 3])
        let done = LDAPEncoder.result(id: 9, .searchDone, LDAPResult(.success), controls: [control])
        let root = try DER.parse(done)
        guard case .constructed(let fields) = root.content else { Issue.record("not constructed"); return }
        let nodes = Array(fields)
        #expect(nodes.count == 3)
        #expect(nodes.last?.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific))
        // The same controls field a request carries decodes with the request decoder's reader.
        #expect(try LDAPDecoder.decodeControls(nodes[2]) == [control])
    }
}

private func format2(_ byte: UInt8) -> String { byte < 16 ? "0" + String(byte, radix: 16) : String(byte, radix: 16) }

/// `PartialAttribute ::= SEQUENCE { type, vals SET OF value }` read back with SwiftASN1.
struct PartialAttribute: DERParseable {
    var type: String
    var values: [String]

    init(derEncoded node: ASN1Node) throws {
        (type, values) = try DER.sequence(node, identifier: .sequence) { nodes in
            let type = String(decoding: try ASN1OctetString(derEncoded: &nodes).bytes, as: UTF8.self)
            let set = nodes.next()!
            guard case .constructed(let items) = set.content else { throw ASN1Error.invalidASN1Object(reason: "vals") }
            return (type, try items.map { String(decoding: try ASN1OctetString(derEncoded: $0).bytes, as: UTF8.self) })
        }
    }
}
