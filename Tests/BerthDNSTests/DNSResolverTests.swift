import NIOCore
import NIOPosix
import Testing

@testable import BerthDNS

/// The resolver against in-process fake servers: matching, fallback, retries, caching.
struct DNSResolverTests {
    let group = MultiThreadedEventLoopGroup.singleton

    func mxAnswer(_ query: DNSMessage, ttl: UInt32 = 300) -> [UInt8] {
        reply(to: query, an: 1) { $0.record(query.questions[0].name, .mx, ttl: ttl, rdata: WireBuilder.mx(10, "mx.example.net")) }
    }

    @Test func strayDatagramsAreIgnoredUntilTheAnswerComes() async throws {
        let server = try await FakeDNSServer.start(group: group) { query, _ in
            [
                reply(to: query, id: query.header.id &+ 1, an: 1) { $0.record("example.net", .mx, rdata: WireBuilder.mx(1, "wrong-id.example")) },
                reply(to: query, name: "example.org", an: 1) { $0.record("example.org", .mx, rdata: WireBuilder.mx(1, "wrong-question.example")) },
                [0xDE, 0xAD],
                mxAnswer(query),
            ]
        }
        defer { Task { await server.stop() } }
        let resolver = DNSResolver(servers: [server.address], group: group, timeout: .seconds(2))
        #expect(try await resolver.mx("Example.NET.") == .records([MXRecord(preference: 10, exchange: "mx.example.net")]))
        #expect(server.queries == ["udp MX example.net"])
    }

    @Test func aTruncatedAnswerIsAskedAgainOverTCP() async throws {
        let big = String(repeating: "k", count: 255)
        let server = try await FakeDNSServer.start(group: group) { query, overTCP in
            guard overTCP else { return [reply(to: query, truncated: true)] }
            return [reply(to: query, an: 1) { $0.record(query.questions[0].name, .txt, rdata: WireBuilder.txt([String](repeating: big, count: 8))) }]
        }
        defer { Task { await server.stop() } }
        let resolver = DNSResolver(servers: [server.address], group: group, timeout: .seconds(2))
        #expect(try await resolver.txt("big.example") == .records([String(repeating: big, count: 8)]))
        #expect(server.queries == ["udp TXT big.example", "tcp TXT big.example"])
    }

    @Test func silentServersAreEachTriedTwiceThenTimeOut() async throws {
        let first = try await FakeDNSServer.start(group: group) { _, _ in [] }
        let second = try await FakeDNSServer.start(group: group) { _, _ in [] }
        defer { Task { await first.stop(); await second.stop() } }
        let resolver = DNSResolver(servers: [first.address, second.address], group: group, timeout: .milliseconds(150))
        let started = ContinuousClock.now
        do {
            _ = try await resolver.ipv4("slow.example")
            Issue.record("a lookup with no answer returned")
        } catch let error as DNSError {
            guard case .timeout(let text) = error else { Issue.record("expected a timeout, got \(error)"); return }
            #expect(text.hasPrefix("DNS A slow.example: no answer in 2 rounds"))
            #expect(text.contains(DNSResolver.describe(first.address)) && text.contains("timed out after 150 ms"))
        }
        #expect(ContinuousClock.now - started >= .milliseconds(600))
        #expect(first.queries == ["udp A slow.example", "udp A slow.example"])
        #expect(second.queries == ["udp A slow.example", "udp A slow.example"])
    }

    @Test func serverFailureMovesOnToTheNextServer() async throws {
        let failing = try await FakeDNSServer.start(group: group) { query, _ in [reply(to: query, rcode: 2)] }
        let working = try await FakeDNSServer.start(group: group) { query, _ in
            [reply(to: query, an: 1) { $0.record(query.questions[0].name, .aaaa, rdata: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]) }]
        }
        defer { Task { await failing.stop(); await working.stop() } }
        let resolver = DNSResolver(servers: [failing.address, working.address], group: group, timeout: .seconds(2))
        #expect(try await resolver.ipv6("v6.example") == .records(["2001:db8::1"]))
        #expect(failing.queries.count == 1)
    }

    @Test func everyServerFailingIsAServerFailure() async throws {
        let refusing = try await FakeDNSServer.start(group: group) { query, _ in [reply(to: query, rcode: 5)] }
        defer { Task { await refusing.stop() } }
        let resolver = DNSResolver(servers: [refusing.address], group: group, timeout: .seconds(2))
        await #expect(throws: DNSError.serverFailure("DNS MX example.net: \(DNSResolver.describe(refusing.address)) answered REFUSED")) {
            try await resolver.mx("example.net")
        }
        #expect(refusing.queries.count == 2)
    }

    @Test func aMalformedAnswerIsReportedAsSuch() async throws {
        let broken = try await FakeDNSServer.start(group: group) { query, _ in
            [reply(to: query, an: 1) { $0.name(query.questions[0].name); $0.recordTail(.mx, rdata: [0, 1], rdlength: 90) }]
        }
        defer { Task { await broken.stop() } }
        let resolver = DNSResolver(servers: [broken.address], group: group, timeout: .seconds(2))
        await #expect(throws: DNSError.malformed(
            "DNS MX example.net: \(DNSResolver.describe(broken.address)) sent a malformed answer: DNS message ends early (at octet 52)"
        )) {
            try await resolver.mx("example.net")
        }
    }

    @Test func aClosedPortIsPassedOverWithoutWaitingForTheTimeout() async throws {
        // A port nothing listens on: bind, note it, close. The timeout is long, so that
        // "not waiting for it" holds however loaded the machine is.
        let probe = try await DatagramBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let closed = probe.localAddress!
        try await probe.close()
        let working = try await FakeDNSServer.start(group: group) { query, _ in [mxAnswer(query)] }
        defer { Task { await working.stop() } }
        let resolver = DNSResolver(servers: [closed, working.address], group: group, timeout: .seconds(120))
        let started = ContinuousClock.now
        #expect(try await resolver.mx("example.net") == .records([MXRecord(preference: 10, exchange: "mx.example.net")]))
        #expect(ContinuousClock.now - started < .seconds(60), "answered long before the timeout")

        let alone = DNSResolver(servers: [closed], group: group, timeout: .seconds(120))
        await #expect(throws: DNSError.timeout(
            "DNS MX example.net: no answer in 2 rounds (\(DNSResolver.describe(closed)) refused the query (nothing listening))"
        )) {
            try await alone.mx("example.net")
        }
        #expect(ContinuousClock.now - started < .seconds(60), "answered long before the timeout")
    }

    @Test func answersAreCachedForTheirTTL() async throws {
        let server = try await FakeDNSServer.start(group: group) { query, _ in
            switch query.questions[0].name {
            case "cached.example": [mxAnswer(query, ttl: 300)]
            case "uncached.example": [mxAnswer(query, ttl: 0)]
            default: [reply(to: query, rcode: 3, ns: 1) { $0.soa("example", minimum: 30) }]
            }
        }
        defer { Task { await server.stop() } }
        let resolver = DNSResolver(servers: [server.address], group: group, timeout: .seconds(2))
        for _ in 0..<3 {
            _ = try await resolver.mx("cached.example")
            _ = try await resolver.mx("uncached.example")
            #expect(try await resolver.mx("missing.example") == .noSuchDomain)
        }
        #expect(server.queries.filter { $0.hasSuffix(" cached.example") }.count == 1)
        #expect(server.queries.filter { $0.hasSuffix(" uncached.example") }.count == 3)
        #expect(server.queries.filter { $0.hasSuffix(" missing.example") }.count == 1)
    }

    @Test func mxRecordsComeSortedByPreference() async throws {
        let server = try await FakeDNSServer.start(group: group) { query, _ in
            [reply(to: query, an: 3) {
                $0.record("example.net", .mx, rdata: WireBuilder.mx(20, "c.example"))
                $0.record("example.net", .mx, rdata: WireBuilder.mx(10, "b.example"))
                $0.record("example.net", .mx, rdata: WireBuilder.mx(20, "a.example"))
            }]
        }
        defer { Task { await server.stop() } }
        let resolver = DNSResolver(servers: [server.address], group: group, cacheEntries: 0)
        #expect(try await resolver.mx("example.net").recordsOrEmpty.map(\.exchange) == ["b.example", "c.example", "a.example"])
    }

    @Test func badNamesFailBeforeAnyQuery() async {
        let resolver = DNSResolver(servers: [try! DNSResolver.parseServer("127.0.0.1:9")], group: group)
        await #expect(throws: DNSError.invalidName(name: "a..b", reason: "it has an empty label")) {
            try await resolver.ipv4("a..b")
        }
    }
}
