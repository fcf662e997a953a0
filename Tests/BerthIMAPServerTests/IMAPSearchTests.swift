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
