import BerthTestSupport
import Testing

@testable import BerthIMAP

struct ModifiedUTF7Tests {
    struct Pair: CustomTestStringConvertible, Sendable {
        let decoded: String
        let encoded: String
        var testDescription: String { encoded }
    }

    /// RFC 3501 §5.1.3 and its example `~peter/mail/&U,BTFw-/&ZeVnLIqe-`.
    static let pairs: [Pair] = [
        Pair(decoded: "INBOX", encoded: "INBOX"),
        Pair(decoded: "", encoded: ""),
        Pair(decoded: "&", encoded: "&-"),
        Pair(decoded: "Foo&Bar", encoded: "Foo&-Bar"),
        Pair(decoded: "日本語", encoded: "&ZeVnLIqe-"),
        Pair(decoded: "~peter/mail/台北/日本語", encoded: "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        Pair(decoded: "Entwürfe", encoded: "Entw&APw-rfe"),
        Pair(decoded: "😀", encoded: "&2D3eAA-"),
        Pair(decoded: "Ärger & Ölkanne", encoded: "&AMQ-rger &- &ANY-lkanne"),
        Pair(decoded: "Корзина", encoded: "&BBoEPgRABDcEOAQ9BDA-"),
        Pair(decoded: "a\tb", encoded: "a&AAk-b"),
        Pair(decoded: "ÿÿÿ", encoded: "&AP8A,wD,-"),
    ]

    @Test(arguments: pairs)
    func encodes(_ pair: Pair) {
        #expect(ModifiedUTF7.encode(pair.decoded) == pair.encoded)
    }

    @Test(arguments: pairs)
    func decodes(_ pair: Pair) {
        #expect(ModifiedUTF7.decode(Array(pair.encoded.utf8)) == pair.decoded)
    }

    struct Invalid: CustomTestStringConvertible, Sendable {
        let bytes: [UInt8]
        let why: String
        var testDescription: String { why }
    }

    static let invalid: [Invalid] = [
        Invalid(bytes: Array("&".utf8), why: "& alone"),
        Invalid(bytes: Array("&ZeVnLIqe".utf8), why: "unterminated &ZeVnLIqe"),
        Invalid(bytes: Array("&AGE-".utf8), why: "printable ASCII 'a' encoded"),
        Invalid(bytes: Array("&2D0-".utf8), why: "lone surrogate"),
        Invalid(bytes: Array("&AMR-".utf8), why: "padding bits set"),
        Invalid(bytes: Array("&Ze-".utf8), why: "too few bits for a UTF-16 unit"),
        Invalid(bytes: Array("&Ze*-".utf8), why: "not base64"),
        Invalid(bytes: Array("&ZeVnLIqe=-".utf8), why: "base64 padding"),
        Invalid(bytes: [0x61, 0x7F], why: "DEL"),
        Invalid(bytes: [0x61, 0x09], why: "raw tab"),
        Invalid(bytes: [0xC3, 0xA9], why: "8-bit"),
    ]

    @Test(arguments: invalid)
    func refuses(_ case_: Invalid) {
        #expect(ModifiedUTF7.decode(case_.bytes) == nil)
    }

    /// Random names survive a round trip, and their encoding is printable ASCII.
    @Test func roundTrips() {
        var generator = SeededGenerator(seed: 0x7F7)
        let alphabet: [Unicode.Scalar] = ["a", "Z", "&", "-", "/", ".", " ", "~", "é", "日", "😀", "\u{7F}", "\u{1}", "ß", "+", ","]
        for _ in 0..<500 {
            var name = String.UnicodeScalarView()
            for _ in 0..<Int.random(in: 0...12, using: &generator) {
                name.append(alphabet.randomElement(using: &generator)!)
            }
            let text = String(name)
            let encoded = ModifiedUTF7.encode(text)
            #expect(encoded.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E })
            #expect(ModifiedUTF7.decode(Array(encoded.utf8)) == text, "name: \(text.debugDescription)")
        }
    }
}
