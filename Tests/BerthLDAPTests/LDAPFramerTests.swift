import Testing
@testable import BerthLDAP

@Suite("LDAP framer: a message's end from its header, never a buffer sized by the client's length")
struct LDAPFramerTests {
    static let limit = 256 * 1024

    static let cases: [(String, String, LDAPFramer.Frame)] = [
        ("nothing yet", "", .needMore),
        ("the tag only", "30", .needMore),
        ("a short-form header, body not complete", "3005 020103", .needMore),
        ("a whole unbind", "3005 0201034200", .message(length: 7)),
        ("an unbind and the start of the next message", "3005 0201034200 300c02", .message(length: 7)),
        ("long form, one length octet", "3081 05 0201034200", .message(length: 8)),
        ("long form, four length octets (liblber sends these)", "3084 00000005 0201034200", .message(length: 11)),
        ("long form, length octets not all here", "3084 0000", .needMore),
        ("long form, 200 KiB body announced, 5 bytes here", "3083 032000 0102030405", .needMore),
    ]

    @Test("Frames", arguments: cases)
    func frames(label: String, bytes: String, expected: LDAPFramer.Frame) throws {
        #expect(try LDAPFramer.frame(hex(bytes), maxSize: Self.limit) == expected, "\(label)")
    }

    static let refusals: [(String, String, LDAPFramer.Error)] = [
        ("a SET, not a SEQUENCE", "3105 0201034200", .notASequence(0x31)),
        ("an HTTP request", "474554202f20", .notASequence(0x47)),
        ("a TLS ClientHello on a plain port", "160301", .notASequence(0x16)),
        ("indefinite length", "3080 0201034200 0000", .indefiniteLength),
        ("five length octets", "3085 0000000005", .tooLarge(announced: UInt64.max)),
        ("127 length octets", "30ff", .tooLarge(announced: UInt64.max)),
        ("4 GiB announced", "3084 ffffffff", .tooLarge(announced: 0xFFFF_FFFF + 6)),
        ("one byte over the limit", "3083 03fffc", .tooLarge(announced: 256 * 1024 + 1)),
    ]

    @Test("Refuses", arguments: refusals)
    func refuses(label: String, bytes: String, expected: LDAPFramer.Error) {
        #expect(throws: expected, "\(label)") { try LDAPFramer.frame(hex(bytes), maxSize: Self.limit) }
    }

    @Test("Exactly the limit is taken")
    func atTheLimit() throws {
        #expect(try LDAPFramer.frame(hex("3083 03fffb"), maxSize: Self.limit) == .needMore)  // 5 + 262139
    }
}
