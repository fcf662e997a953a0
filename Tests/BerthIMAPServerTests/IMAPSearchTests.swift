import Testing

@testable import BerthIMAPServer

/// RFC 3501 §6.4.4: SEARCH strings match as case-insensitive substrings.
struct IMAPSearchTests {
    /// (text, search string, matches), labelled by their input.
    static let substrings: [(String, String, Bool)] = [
        ("Meeting on Friday", "friday", true),
        ("Meeting on Friday", "FRIDAY", true),
        ("Meeting on Friday", "Fri day", false),
        ("Meeting on Friday", "", true),
        ("", "a", false),
        ("ab", "abc", false),
        ("aaab", "aab", true),
        ("Grüße aus Köln", "köln", true),
        ("Grüße aus Köln", "KÖLN", true),
        ("Grüße aus Köln", "aus k", true),
        ("Grüße aus Köln", "koln", false),
        ("x@Example.COM", "@example.com", true),
        ("[bracket]{brace}", "]{", true),
        ("@[", "`{", false),  // ASCII folding touches letters only
    ]

    @Test(arguments: substrings)
    func caseInsensitiveSubstring(_ text: String, _ needle: String, _ expected: Bool) {
        #expect(IMAPSearch.contains(text, needle) == expected)
    }
}

/// SEARCH TEXT's fast path answers as the parse would, or steps aside.
struct IMAPSearchFastPathTests {
    static func verdict(_ needle: String, _ message: String) -> Bool? {
        let content = IMAPSearch.Content({ nil }, raw: { Array(message.utf8) })
        return IMAPSearch.plainTextVerdict(needle, content)
    }

    @Test func plainMessagesAreSearchedAsOctets() {
        let plain = "From: Ann <ann@example.org>\r\nSubject: Invoice\r\n\tfolded\r\n\r\nPay the DOVECOT bill.\r\n"
        #expect(Self.verdict("dovecot", plain) == true)
        #expect(Self.verdict("ann@EXAMPLE", plain) == true)
        #expect(Self.verdict("folded", plain) == true)
        #expect(Self.verdict("postfix", plain) == false)
        // The body may talk about base64 or multipart: only the header declares them.
        #expect(Self.verdict("bill", "Subject: x\n\nbase64 and multipart/mixed, the bill\n") == true)
    }

    @Test func anythingEncodedOrStructuredIsParsed() {
        #expect(Self.verdict("bill", "Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\nbill\r\n") == nil)
        #expect(Self.verdict("bill", "Content-Transfer-Encoding: base64\r\n\r\nYmlsbA==\r\n") == nil)
        #expect(Self.verdict("bill", "Content-Transfer-Encoding: Quoted-Printable\r\n\r\nbi=\r\nll\r\n") == nil)
        #expect(Self.verdict("bill", "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\nbill\r\n--x--\r\n") == nil)
        #expect(Self.verdict("the bill", "Subject: x\r\n\r\nthe bill\r\n") == nil, "white space could span a fold")
        #expect(Self.verdict("café", "Subject: x\r\n\r\ncafé\r\n") == nil, "non-ASCII goes through Unicode folding")
    }
}
