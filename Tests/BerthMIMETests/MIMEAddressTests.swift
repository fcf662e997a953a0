import BerthIMAP
import Testing

@testable import BerthMIME

/// An address-list header value and its ENVELOPE addresses; named by the input.
struct AddressFixture: CustomTestStringConvertible, Sendable {
    let input: String
    let expected: [IMAPAddress]
    var testDescription: String { input.debugDescription }

    init(_ input: String, _ expected: [IMAPAddress]) {
        self.input = input
        self.expected = expected
    }
}

private func address(_ name: String?, _ mailbox: String?, _ host: String?, adl: String? = nil) -> IMAPAddress {
    IMAPAddress(name: name, adl: adl, mailbox: mailbox, host: host)
}

private let missingDomain = MIMEAddressParser.missingDomain
private let missingMailbox = MIMEAddressParser.missingMailbox

struct MIMEAddressTests {
    static let fixtures: [AddressFixture] = [
        AddressFixture("", []),
        AddressFixture("a@b.example", [address(nil, "a", "b.example")]),
        AddressFixture("Fred Foobar <foobar@Blurdybloop.example>", [address("Fred Foobar", "foobar", "Blurdybloop.example")]),
        AddressFixture("\"Doe, Jane\" <jane@x.example> (work), b@c.example",
                       [address("Doe, Jane", "jane", "x.example"), address(nil, "b", "c.example")]),
        AddressFixture("\"Q \\\"x\\\" \\\\ y\" <q@x.example>", [address("Q \"x\" \\ y", "q", "x.example")]),
        AddressFixture("a@b.example (Comment Name)", [address("Comment Name", "a", "b.example")]),
        AddressFixture("(Lead) a@b.example", [address("Lead", "a", "b.example")]),
        AddressFixture("<@r1.example,@r2.example:u@h.example>", [address(nil, "u", "h.example", adl: "@r1.example,@r2.example")]),
        AddressFixture("John Q. Public <jqp@x.example>", [address("John Q. Public", "jqp", "x.example")]),
        AddressFixture("=?utf-8?q?J=C3=B6rg?= <j@x.example>", [address("=?utf-8?q?J=C3=B6rg?=", "j", "x.example")]),
        AddressFixture("Jörg <j@x.example>, ü@x.example", [address("Jörg", "j", "x.example"), address(nil, "ü", "x.example")]),
        AddressFixture("\"quoted local\"@x.example", [address(nil, "quoted local", "x.example")]),
        AddressFixture("first.last@sub.x.example", [address(nil, "first.last", "sub.x.example")]),
        AddressFixture("u@[192.0.2.1]", [address(nil, "u", "[192.0.2.1]")]),
        // Groups: start marker (mailbox = name, host NIL), members, end marker.
        AddressFixture("undisclosed-recipients:;", [.groupStart("undisclosed-recipients"), .groupEnd]),
        AddressFixture("Team: a@example.org, Carl <c@example.org>;, dave@example.org", [
            .groupStart("Team"), address(nil, "a", "example.org"), address("Carl", "c", "example.org"), .groupEnd,
            address(nil, "dave", "example.org"),
        ]),
        AddressFixture("G1: ; G2:a@x.example;, z@x.example", [
            .groupStart("G1"), .groupEnd, .groupStart("G2"), address(nil, "a", "x.example"), .groupEnd, address(nil, "z", "x.example"),
        ]),
        AddressFixture("Open group: a@x.example", [.groupStart("Open group"), address(nil, "a", "x.example"), .groupEnd]),
        // Junk real mail has.
        AddressFixture("mooch", [address(nil, "mooch", missingDomain)]),
        AddressFixture("<>", [address(nil, missingMailbox, missingDomain)]),
        AddressFixture("John Doe john@x.example", [address("John Doe", "john", "x.example")]),
        AddressFixture("Missing Bracket <mb@x.example, next@x.example",
                       [address("Missing Bracket", "mb", "x.example"), address(nil, "next", "x.example")]),
        AddressFixture("\"Unbalanced <u@x.example>", [address("\"Unbalanced", "u", "x.example")]),
        AddressFixture("<nohost>", [address(nil, "nohost", missingDomain)]),
        AddressFixture("a@", [address(nil, "a", missingDomain)]),
        AddressFixture("@@@ ,,, ;;; <<<>>>", [address(nil, missingMailbox, missingDomain), address(nil, missingMailbox, missingDomain)]),
        AddressFixture("(unterminated comment a@b", []),
    ]

    @Test(arguments: fixtures)
    func parsesAddresses(_ fixture: AddressFixture) {
        #expect(MIMEAddressParser.parse(fixture.input) == fixture.expected)
    }

    @Test func envelopeDefaultsAndRawStrings() {
        let text = "From: A <a@x.example>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\nTo: b@x.example\r\nBcc: c@x.example\r\n"
            + "In-Reply-To: <p@x>\r\nMessage-ID: <m@x>\r\n\r\n"
        let envelope = MIMEMessage(Array(text.utf8)).envelope
        #expect(envelope.subject == "=?utf-8?q?caf=C3=A9?=")
        #expect(envelope.date == nil)
        #expect(envelope.sender == envelope.from)
        #expect(envelope.replyTo == [address("A", "a", "x.example")])
        #expect(envelope.bcc == [address(nil, "c", "x.example")])
        #expect(envelope.cc == [])
        #expect(envelope.inReplyTo == "<p@x>")
        #expect(envelope.messageID == "<m@x>")
    }
}
