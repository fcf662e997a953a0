import Testing

@testable import BerthDNS

/// What a response means to the query `example.net`-ish of its fixture.
enum ParseOutcome: Sendable, Hashable, CustomStringConvertible {
    case answer(DNSLookup<DNSRecordData>)
    /// Not this query's answer: the resolver keeps waiting.
    case ignored
    /// Matches the query but does not parse; nil accepts any error.
    case malformed(DNSMessageError?)
    case rcode(DNSResponseCode)
    case cnameChainTooLong
    /// TC set: the resolver asks again over TCP.
    case retryOverTCP

    var description: String {
        switch self {
        case .answer(let lookup): "answer \(lookup)"
        case .ignored: "ignored"
        case .malformed(let error): "malformed \(error.map { "\($0)" } ?? "(any)")"
        case .rcode(let rcode): "rcode \(rcode)"
        case .cnameChainTooLong: "CNAME chain too long"
        case .retryOverTCP: "retry over TCP"
        }
    }

    func accepts(_ actual: ParseOutcome) -> Bool {
        if case .malformed(nil) = self, case .malformed = actual { return true }
        return self == actual
    }

    static func of(_ bytes: [UInt8], query: DNSQuery, maximumSize: Int = DNSLimits.udpResponseSize) -> ParseOutcome {
        switch DNSReply(bytes, to: query, maximumSize: maximumSize) {
        case .ignore: return .ignored
        case .malformed(let error): return .malformed(error)
        case .answer(let message):
            if message.header.truncated { return .retryOverTCP }
            do throws(DNSAnswer.Failure) {
                return .answer(try DNSAnswer.extract(from: message, for: query.question).lookup)
            } catch {
                switch error {
                case .rcode(let rcode): return .rcode(rcode)
                case .cnameChainTooLong: return .cnameChainTooLong
                }
            }
        }
    }
}

struct ParseFixture: Sendable, CustomTestStringConvertible {
    var label: String
    var name = "example.net"
    var type = DNSRecordType.mx
    var bytes: [UInt8]
    var expected: ParseOutcome
    var testDescription: String { label }
}

func ipv4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> DNSRecordData {
    .a(.init(UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)))
}

func txt(_ strings: String...) -> DNSRecordData {
    .txt(strings.map { Array($0.utf8) })
}

/// Recorded from dnsmasq 2.90 (`--mx-host=example.net,mx.example.net,10 --mx-host=example.net,mx2.example.net,20
/// --host-record=mx.example.net,127.0.0.20,::1 --cname=www.example.net,mx.example.net
/// --txt-record=txt.example.net,"v=spf1 ","-all"`), query id 0x1234.
enum Recorded {
    static let mx = hexBytes("""
        123485800001000200000002076578616d706c65036e657400000f0001c00c000f00010000000000130014036d7832076578616d706c65
        036e657400c00c000f0001000000000012000a026d78076578616d706c65036e657400c04a000100010000000000047f000014c04a001c
        000100000000001000000000000000000000000000000001
        """)
    static let aViaCNAME = hexBytes("""
        12348580000100020000000003777777076578616d706c65036e65740000010001c00c00050001000000000010026d78076578616d706c
        65036e657400c02d000100010000000000047f000014
        """)
    static let txt = hexBytes("""
        12348580000100010000000003747874076578616d706c65036e65740000100001c00c0010000100000000000d07763d7370663120042d
        616c6c
        """)
    static let nxdomain = hexBytes("123481830001000000000000046e6f7065076578616d706c65036e65740000010001")
    static let nodata = hexBytes("123481800001000000000000026d78076578616d706c65036e657400000f0001")
    static let aaaa = hexBytes("""
        123485800001000100000000026d78076578616d706c65036e657400001c0001c00c001c0001000000000010000000000000000000000000
        00000001
        """)
}

/// A response to `name`/`type` with id 0x1234 whose answer section `body` writes.
func response(
    _ name: String = "example.net", _ type: DNSRecordType = .mx, id: UInt16 = 0x1234, rcode: UInt8 = 0,
    truncated: Bool = false, an: UInt16 = 0, ns: UInt16 = 0, ar: UInt16 = 0,
    _ body: (inout WireBuilder) -> Void = { _ in }
) -> [UInt8] {
    var builder = WireBuilder()
    builder.header(id: id, truncated: truncated, rcode: rcode, an: an, ns: ns, ar: ar)
    builder.question(name, type)
    body(&builder)
    return builder.bytes
}

extension ParseFixture {
    static let all: [ParseFixture] = [
        ParseFixture(
            label: "recorded MX response: two exchanges, compressed, A and AAAA glue",
            bytes: Recorded.mx,
            expected: .answer(.records([.mx(preference: 20, exchange: "mx2.example.net"), .mx(preference: 10, exchange: "mx.example.net")]))
        ),
        ParseFixture(
            label: "recorded A response through CNAME www -> mx", name: "www.example.net", type: .a,
            bytes: Recorded.aViaCNAME, expected: .answer(.records([ipv4(127, 0, 0, 20)]))
        ),
        ParseFixture(
            label: "recorded AAAA ::1", name: "mx.example.net", type: .aaaa, bytes: Recorded.aaaa,
            expected: .answer(.records([.aaaa(.init(groups: [0, 0, 0, 0, 0, 0, 0, 1]))]))
        ),
        ParseFixture(
            label: "recorded TXT with two character-strings", name: "txt.example.net", type: .txt,
            bytes: Recorded.txt, expected: .answer(.records([txt("v=spf1 ", "-all")]))
        ),
        ParseFixture(
            label: "recorded NXDOMAIN", name: "nope.example.net", type: .a, bytes: Recorded.nxdomain,
            expected: .answer(.noSuchDomain)
        ),
        ParseFixture(
            label: "recorded NODATA: MX asked of a host with only addresses", name: "mx.example.net",
            bytes: Recorded.nodata, expected: .answer(.noRecords)
        ),
        ParseFixture(
            label: "null MX \".\" (RFC 7505)",
            bytes: response(an: 1) { $0.record("example.net", .mx, rdata: WireBuilder.mx(0, "")) },
            expected: .answer(.records([.mx(preference: 0, exchange: "")]))
        ),
        ParseFixture(
            label: "A through a three-link CNAME chain; an A of an unrelated owner is left out", name: "a.example", type: .a,
            bytes: response("a.example", .a, an: 5) {
                $0.record("a.example", .cname, rdata: WireBuilder.nameBytes("B.example"))
                $0.record("b.example", .cname, rdata: WireBuilder.nameBytes("c.example"))
                $0.record("c.example", .cname, rdata: WireBuilder.nameBytes("d.example."))
                $0.record("unrelated.example", .a, rdata: [192, 0, 2, 99])
                $0.record("D.EXAMPLE", .a, rdata: [192, 0, 2, 1])
            },
            expected: .answer(.records([ipv4(192, 0, 2, 1)]))
        ),
        ParseFixture(
            label: "CNAME chain of nine links is refused", name: "c0.example", type: .a,
            bytes: response("c0.example", .a, an: 10) { builder in
                for index in 0..<9 {
                    builder.record("c\(index).example", .cname, rdata: WireBuilder.nameBytes("c\(index + 1).example"))
                }
                builder.record("c9.example", .a, rdata: [192, 0, 2, 1])
            },
            expected: .cnameChainTooLong
        ),
        ParseFixture(
            label: "CNAME loop a -> b -> a is refused", name: "a.example", type: .a,
            bytes: response("a.example", .a, an: 2) {
                $0.record("a.example", .cname, rdata: WireBuilder.nameBytes("b.example"))
                $0.record("b.example", .cname, rdata: WireBuilder.nameBytes("a.example"))
            },
            expected: .cnameChainTooLong
        ),
        ParseFixture(
            label: "CNAME to a name with no A is NODATA", name: "a.example", type: .a,
            bytes: response("a.example", .a, an: 1) { $0.record("a.example", .cname, rdata: WireBuilder.nameBytes("b.example")) },
            expected: .answer(.noRecords)
        ),
        ParseFixture(
            label: "NXDOMAIN with an SOA in the authority section",
            bytes: response(rcode: 3, ns: 1) { $0.soa("example.net") }, expected: .answer(.noSuchDomain)
        ),
        ParseFixture(label: "SERVFAIL", bytes: response(rcode: 2), expected: .rcode(.serverFailure)),
        ParseFixture(label: "REFUSED", bytes: response(rcode: 5), expected: .rcode(.refused)),
        ParseFixture(
            label: "question and owners in mixed case match lower-case",
            bytes: response("Example.NET", an: 1) { $0.record("EXAMPLE.net", .mx, rdata: WireBuilder.mx(5, "MX.Example.Net")) },
            expected: .answer(.records([.mx(preference: 5, exchange: "mx.example.net")]))
        ),
        ParseFixture(
            label: "odd octets in a label are escaped as in master files",
            bytes: response(an: 1) {
                $0.record("example.net", .mx, rdata: [0, 1, 4, UInt8(ascii: "a"), UInt8(ascii: "."), 0, 0xFF, 0])
            },
            expected: .answer(.records([.mx(preference: 1, exchange: "a\\.\\000\\255")]))
        ),
        ParseFixture(
            label: "an unknown type (SRV) is skipped by its RDLENGTH",
            bytes: response(an: 2) {
                $0.record("example.net", DNSRecordType(rawValue: 33), rdata: [0, 1, 0, 1, 0, 25] + WireBuilder.nameBytes("srv.example"))
                $0.record("example.net", .mx, rdata: WireBuilder.mx(10, "mx.example.net"))
            },
            expected: .answer(.records([.mx(preference: 10, exchange: "mx.example.net")]))
        ),
        ParseFixture(
            label: "octets after the last record are ignored",
            bytes: response(an: 1) {
                $0.record("example.net", .mx, rdata: WireBuilder.mx(10, "mx.example.net"))
                $0.bytes += [1, 2, 3]
            },
            expected: .answer(.records([.mx(preference: 10, exchange: "mx.example.net")]))
        ),
        ParseFixture(
            label: "TC set with the answer section cut short", truncated: true,
            expected: .retryOverTCP
        ),

        // Not this query's answer: ignored, the wait goes on.
        ParseFixture(label: "wrong id", bytes: response(id: 0x4321, an: 1) { $0.record("example.net", .mx, rdata: WireBuilder.mx(10, "evil.example")) }, expected: .ignored),
        ParseFixture(label: "wrong question name", bytes: response("example.org", an: 1) { $0.record("example.org", .mx, rdata: WireBuilder.mx(10, "evil.example")) }, expected: .ignored),
        ParseFixture(label: "wrong question type", bytes: response("example.net", .a), expected: .ignored),
        ParseFixture(
            label: "QR clear: a query, not a response",
            bytes: { var b = WireBuilder(); b.header(id: 0x1234, response: false); b.question("example.net", .mx); return b.bytes }(),
            expected: .ignored
        ),
        ParseFixture(
            label: "two questions",
            bytes: { var b = WireBuilder(); b.header(id: 0x1234, qd: 2); b.question("example.net", .mx); b.question("example.net", .mx); return b.bytes }(),
            expected: .ignored
        ),
        ParseFixture(label: "empty datagram", bytes: [], expected: .ignored),
        ParseFixture(label: "header cut at 11 octets", bytes: Array(Recorded.mx.prefix(11)), expected: .ignored),
        ParseFixture(label: "question cut short", bytes: Array(Recorded.mx.prefix(20)), expected: .ignored),
        ParseFixture(
            label: "wrong id with a malformed answer section is ignored, not an error",
            bytes: response(id: 1, an: 1) { $0.u16(0xC0FF) }, expected: .ignored
        ),

        // Matches the query, does not parse.
        ParseFixture(label: "recorded MX cut inside the first answer", bytes: Array(Recorded.mx.prefix(40)), expected: .malformed(.truncated(offset: 39))),
        ParseFixture(label: "recorded MX cut before the last glue record ends", bytes: Array(Recorded.mx.dropLast(1)), expected: .malformed(nil)),
        ParseFixture(label: "answer count 65535 with no answers", bytes: response(an: 65535), expected: .malformed(.truncated(offset: 29))),
        ParseFixture(
            label: "compression loop: pointer to itself",
            bytes: response(an: 1) { $0.u16(0xC000 | 29); $0.recordTail(.mx, rdata: WireBuilder.mx(1, "")) },
            expected: .malformed(.badPointer(offset: 29, target: 29))
        ),
        ParseFixture(
            label: "compression loop through a forward pointer",
            bytes: response(an: 1) {
                $0.u16(0xC000 | 31)  // at 29, to 31
                $0.u16(0xC000 | 29)  // at 31, back to 29
                $0.recordTail(.mx, rdata: WireBuilder.mx(1, ""))
            },
            expected: .malformed(.badPointer(offset: 29, target: 31))
        ),
        ParseFixture(
            label: "label jumps back to itself through a pointer after it",
            bytes: response(an: 1) { $0.name("x", pointer: 29); $0.recordTail(.mx, rdata: WireBuilder.mx(1, "")) },
            expected: .malformed(.badPointer(offset: 31, target: 29))
        ),
        ParseFixture(
            label: "pointer past the end of the message",
            bytes: response(an: 1) { $0.u16(0xFFFF); $0.recordTail(.mx, rdata: WireBuilder.mx(1, "")) },
            expected: .malformed(.badPointer(offset: 29, target: 0x3FFF))
        ),
        ParseFixture(
            label: "pointer whose second octet is missing",
            bytes: response(an: 1) { $0.u8(0xC0) }, expected: .malformed(.truncated(offset: 29))
        ),
        ParseFixture(
            label: "backward pointer chain of 40 jumps",
            bytes: response(an: 2) { builder in
                // An unknown record whose RDATA (from octet 41) holds the chain, each pointer
                // to the one before, the first to the question name at 12.
                builder.u16(0xC00C); builder.recordTail(DNSRecordType(rawValue: 99), rdata: [], rdlength: 80)
                var previous = 12
                for _ in 0..<40 { previous = builder.name("", pointer: previous) }
                builder.name("", pointer: previous)
                builder.recordTail(.mx, rdata: WireBuilder.mx(1, ""))
            },
            expected: .malformed(.tooManyPointers(offset: 121))
        ),
        ParseFixture(
            label: "label length 64 (top bits 01)",
            bytes: response(an: 1) { $0.u8(64); $0.bytes += [UInt8](repeating: 0x61, count: 64); $0.u8(0); $0.recordTail(.mx, rdata: WireBuilder.mx(1, "")) },
            expected: .malformed(.labelTooLong(offset: 29))
        ),
        ParseFixture(
            label: "label type 10 (reserved)",
            bytes: response(an: 1) { $0.u8(0x80); $0.u8(0) }, expected: .malformed(.labelTooLong(offset: 29))
        ),
        ParseFixture(
            label: "name of 320 octets",
            bytes: response(an: 1) {
                $0.name(Array(repeating: String(repeating: "a", count: 63), count: 5).joined(separator: "."))
                $0.recordTail(.mx, rdata: WireBuilder.mx(1, ""))
            },
            expected: .malformed(.nameTooLong(offset: 221))
        ),
        ParseFixture(
            label: "RDLENGTH beyond the end",
            bytes: response(an: 1) { $0.name("example.net"); $0.recordTail(.mx, rdata: WireBuilder.mx(1, "mx"), rdlength: 200) },
            expected: .malformed(.truncated(offset: 52))
        ),
        ParseFixture(
            label: "A record with RDLENGTH 5", type: .a,
            bytes: response("example.net", .a, an: 1) { $0.record("example.net", .a, rdata: [1, 2, 3, 4, 5]) },
            expected: .malformed(.badRecordData(type: .a, offset: 52))
        ),
        ParseFixture(
            label: "MX whose exchange runs past its RDLENGTH",
            bytes: response(an: 2) {
                $0.name("example.net"); $0.recordTail(.mx, rdata: WireBuilder.mx(1, "mx.example"), rdlength: 5)
                $0.record("example.net", .mx, rdata: WireBuilder.mx(1, ""))
            },
            expected: .malformed(.badRecordData(type: .mx, offset: 52))
        ),
        ParseFixture(
            label: "TXT character-string longer than its RDLENGTH", name: "example.net", type: .txt,
            bytes: response("example.net", .txt, an: 1) { $0.name("example.net"); $0.recordTail(.txt, rdata: [10, 0x61, 0x62, 0, 0, 0, 0, 0, 0, 0], rdlength: 3) },
            expected: .malformed(.badRecordData(type: .txt, offset: 52))
        ),
        ParseFixture(
            label: "UDP response over 4096 octets",
            bytes: response(an: 1) { $0.record("example.net", .txt, rdata: WireBuilder.txt(Array(repeating: String(repeating: "x", count: 255), count: 17))) },
            expected: .malformed(.tooLarge(size: 4404, limit: 4096))
        ),
    ]
}

extension ParseFixture {
    init(label: String, truncated: Bool, expected: ParseOutcome) {
        var bytes = response(truncated: true, an: 3) { $0.record("example.net", .mx, rdata: WireBuilder.mx(10, "mx.example.net")) }
        bytes.removeLast(4)
        self.init(label: label, bytes: bytes, expected: expected)
    }
}

struct DNSMessageParserTests {
    @Test(arguments: ParseFixture.all)
    func parses(_ fixture: ParseFixture) throws {
        let query = try DNSQuery(id: 0x1234, name: fixture.name, type: fixture.type)
        let actual = ParseOutcome.of(fixture.bytes, query: query)
        #expect(fixture.expected.accepts(actual), "\(fixture.label): expected \(fixture.expected), got \(actual)")
    }

    @Test func recordedMXKeepsEverySection() throws {
        let message = try DNSMessage(parsing: Recorded.mx, maximumSize: DNSLimits.udpResponseSize)
        #expect(message.header.id == 0x1234)
        #expect(message.header.isResponse && message.header.authoritative && message.header.recursionDesired)
        #expect(message.questions == [DNSQuestion(name: "example.net", type: .mx)])
        #expect(message.answers.count == 2)
        #expect(message.additionals.map(\.name) == ["mx.example.net", "mx.example.net"])
        #expect(message.additionals.map(\.data) == [ipv4(127, 0, 0, 20), .aaaa(.init(groups: [0, 0, 0, 0, 0, 0, 0, 1]))])
    }

    @Test func oversizedTCPMessageIsRefused() {
        let bytes = [UInt8](repeating: 0, count: DNSLimits.tcpResponseSize + 1)
        #expect(throws: DNSMessageError.tooLarge(size: 65536, limit: 65535)) { try DNSMessage(parsing: bytes) }
    }

    @Test func negativeAnswersAreCachedForTheSOAMinimumCappedAt60Seconds() throws {
        let question = DNSQuestion(name: "example.net", type: .mx)
        let short = try DNSMessage(parsing: response(rcode: 3, ns: 1) { $0.soa("example.net", ttl: 3600, minimum: 30) })
        #expect(try DNSAnswer.extract(from: short, for: question).ttl == 30)
        let long = try DNSMessage(parsing: response(ns: 1) { $0.soa("example.net", ttl: 3600, minimum: 86400) })
        #expect(try DNSAnswer.extract(from: long, for: question) == .init(lookup: .noRecords, ttl: 60))
        let noSOA = try DNSMessage(parsing: response(rcode: 3))
        #expect(try DNSAnswer.extract(from: noSOA, for: question) == .init(lookup: .noSuchDomain, ttl: nil))
    }

    @Test func positiveTTLIsTheSmallestOnTheChain() throws {
        let message = try DNSMessage(parsing: response("a.example", .a, an: 2) {
            $0.record("a.example", .cname, ttl: 50, rdata: WireBuilder.nameBytes("b.example"))
            $0.record("b.example", .a, ttl: 600, rdata: [192, 0, 2, 1])
        })
        #expect(try DNSAnswer.extract(from: message, for: DNSQuestion(name: "a.example", type: .a)).ttl == 50)
    }

    @Test func duplicateRecordsAreReturnedOnce() throws {
        let message = try DNSMessage(parsing: response("a.example", .a, an: 2) {
            $0.record("a.example", .a, rdata: [192, 0, 2, 1])
            $0.record("a.example", .a, rdata: [192, 0, 2, 1])
        })
        #expect(try DNSAnswer.extract(from: message, for: DNSQuestion(name: "a.example", type: .a)).lookup == .records([ipv4(192, 0, 2, 1)]))
    }
}
