import BerthTestSupport
@testable import BerthDKIM
import Foundation
import Testing

/// One body and its relaxed canonical form; the label names the case in a failure.
struct BodyFixture: CustomTestStringConvertible, Sendable {
    let label: String
    let body: String
    let canonical: String
    var testDescription: String { label }
}

@Suite("Relaxed body canonicalisation (RFC 6376 §3.4.4)")
struct DKIMBodyHasherTests {
    static let fixtures: [BodyFixture] = [
        .init(label: "RFC 6376 §3.4.5 example", body: " C \r\nD \t E\r\n\r\n\r\n", canonical: " C\r\nD E\r\n"),
        .init(label: "WSP run inside a line becomes one SP", body: "a  \t b\r\n", canonical: "a b\r\n"),
        .init(label: "leading WSP becomes one SP", body: "\t  a\r\n", canonical: " a\r\n"),
        .init(label: "trailing WSP is dropped", body: "a \t\r\nb \r\n", canonical: "a\r\nb\r\n"),
        .init(label: "empty trailing lines are dropped", body: "a\r\n\r\n\r\n", canonical: "a\r\n"),
        .init(label: "whitespace-only trailing lines are dropped", body: "a\r\n  \r\n\t\r\n", canonical: "a\r\n"),
        .init(label: "empty lines inside the body stay", body: "a\r\n\r\n \r\nb\r\n", canonical: "a\r\n\r\n\r\nb\r\n"),
        .init(label: "leading empty lines stay", body: "\r\n\r\na\r\n", canonical: "\r\n\r\na\r\n"),
        .init(label: "empty body hashes the empty string", body: "", canonical: ""),
        .init(label: "body of empty lines is empty", body: "\r\n\r\n\r\n", canonical: ""),
        .init(label: "body of whitespace is empty", body: " \t \r\n \n\t", canonical: ""),
        .init(label: "no final line end gets CRLF", body: "a\r\nb", canonical: "a\r\nb\r\n"),
        .init(label: "no final line end, trailing WSP", body: "a  ", canonical: "a\r\n"),
        .init(label: "LF line ends read as CRLF", body: "a \nb\t\n\n\n", canonical: "a\r\nb\r\n"),
        .init(label: "mixed LF and CRLF", body: "a\nb\r\n\nc\n", canonical: "a\r\nb\r\n\r\nc\r\n"),
        .init(label: "bare CR is an ordinary byte", body: "a\rb\n", canonical: "a\rb\r\n"),
        .init(label: "CR before CRLF is an ordinary byte", body: "a \r\r\n", canonical: "a \r\r\n"),
        .init(label: "CR at the very end is an ordinary byte", body: "a\r", canonical: "a\r\r\n"),
        .init(label: "non-ASCII passes through", body: "caf\u{e9}  \u{2603}\n", canonical: "caf\u{e9} \u{2603}\r\n"),
    ]

    @Test("canonical form", arguments: fixtures)
    func canonicalForm(_ fixture: BodyFixture) {
        #expect(bodyHash(bytes(fixture.body)) == sha256(bytes(fixture.canonical)))
        #expect(referenceRelaxedBody(bytes(fixture.body)) == bytes(fixture.canonical), "the test's reference reading agrees")
    }

    @Test("the same fixtures fed one byte at a time", arguments: fixtures)
    func byteAtATime(_ fixture: BodyFixture) {
        var hasher = DKIMBodyHasher()
        for byte in bytes(fixture.body) { hasher.update([byte]) }
        #expect(hasher.finalize() == sha256(bytes(fixture.canonical)))
    }

    @Test func emptyBodyIsTheHashOfNothing() {
        // RFC 6376 errata 1384: relaxed canonicalisation of an empty body is empty.
        #expect(DKIMBodyHasher().finalize() == sha256([]))
        #expect(Data(DKIMBodyHasher().finalize()).base64EncodedString() == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
    }

    @Test func lfAndCRLFGiveTheSameHash() {
        var rng = SeededGenerator(seed: 1)
        for _ in 0..<200 {
            let lf = randomBody(length: Int.random(in: 0...120, using: &rng), using: &rng, pieces: ["x", "y", " ", "\t", "\n", "\n\n", "  "])
            let crlf = lf.flatMap { $0 == UInt8(ascii: "\n") ? [13, 10] : [$0] }
            #expect(bodyHash(lf) == bodyHash(crlf), "\(lf)")
        }
    }

    @Test func chunkBoundariesDoNotMatter() {
        var rng = SeededGenerator(seed: 2)
        for round in 0..<500 {
            let body = randomBody(length: Int.random(in: 0...160, using: &rng), using: &rng)
            let whole = bodyHash(body)
            #expect(whole == sha256(referenceRelaxedBody(body)), "round \(round): \(body)")
            var hasher = DKIMBodyHasher()
            var start = 0
            while start < body.count {
                let end = min(body.count, start + Int.random(in: 0...9, using: &rng))
                hasher.update(body[start..<end])
                start = end
            }
            #expect(hasher.finalize() == whole, "round \(round): \(body)")
        }
    }

    @Test func largeBodyAcrossTheStagingBuffer() {
        // Several staging buffers' worth, with long runs of ordinary bytes and of blank
        // lines, fed in chunks from one byte to well over the buffer size.
        var rng = SeededGenerator(seed: 3)
        var body = randomBody(length: 3 * DKIMBodyHasher.stagingCapacity, using: &rng,
                              pieces: ["a", String(repeating: "z", count: 70_000), " \t", "\n", String(repeating: "\r\n", count: 40_000)])
        body += bytes(String(repeating: "\n", count: 100_000))
        let whole = bodyHash(body)
        #expect(whole == sha256(referenceRelaxedBody(body)))
        for maximum in [1, 4_096, 100_000, 300_000] {
            var hasher = DKIMBodyHasher()
            var start = 0
            while start < body.count {
                let end = min(body.count, start + Int.random(in: 1...maximum, using: &rng))
                body[start..<end].withUnsafeBytes { hasher.update($0) }
                start = end
            }
            #expect(hasher.finalize() == whole, "chunks up to \(maximum) bytes")
        }
    }

    @Test func finalizeLeavesTheHasherUsable() {
        var hasher = DKIMBodyHasher()
        hasher.update(bytes("a \r"))
        #expect(hasher.finalize() == sha256(bytes("a \r\r\n")))
        hasher.update(bytes("\nb"))
        #expect(hasher.finalize() == sha256(bytes("a\r\nb\r\n")))
    }

    @Test func nonContiguousCollectionsAreAccepted() {
        var hasher = DKIMBodyHasher()
        hasher.update(bytes("a  b\n\n").lazy.map { $0 })
        #expect(hasher.finalize() == sha256(bytes("a b\r\n")))
    }
}
