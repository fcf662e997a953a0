import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A stub resolver (RFC 1034 §5.3.1): it asks a recursive resolver and reads the answer.
///
/// Each lookup sends a query with a random id from a fresh UDP port to each server in turn,
/// `DNSLimits.rounds` times over, waiting `timeout` for each; a truncated answer is asked
/// again over TCP. SERVFAIL, REFUSED and the like move on to the next server too. Answers
/// are cached for their TTL (negative ones per RFC 2308, at most 60 s). Safe to share: all
/// methods may be called from any task at once.
public final class DNSResolver: Sendable {
    public let servers: [SocketAddress]
    public let timeout: TimeAmount
    let group: any EventLoopGroup
    private let cache: NIOLockedValueBox<DNSCache>

    /// - Parameters:
    ///   - servers: recursive resolvers, tried in order; `systemServers()` if empty.
    ///   - cacheEntries: answers kept at most; 0 turns the cache off.
    public init(
        servers: [SocketAddress],
        group: any EventLoopGroup,
        timeout: TimeAmount = DNSLimits.defaultTimeout,
        cacheEntries: Int = DNSLimits.cacheEntries
    ) {
        self.servers = servers.isEmpty ? Self.systemServers() : servers
        self.group = group
        self.timeout = timeout
        self.cache = NIOLockedValueBox(DNSCache(capacity: cacheEntries))
    }

    /// MX records (RFC 5321 §5.1), sorted by preference, equal preferences in the server's
    /// order (the caller shuffles those). A null MX (RFC 7505) is an exchange of "".
    public func mx(_ domain: String) async throws -> DNSLookup<MXRecord> {
        let lookup = try await lookup(domain, type: .mx) { data -> MXRecord? in
            guard case .mx(let preference, let exchange) = data else { return nil }
            return MXRecord(preference: preference, exchange: exchange)
        }
        guard case .records(let records) = lookup else { return lookup }
        return .records(records.enumerated().sorted {
            ($0.element.preference, $0.offset) < ($1.element.preference, $1.offset)
        }.map(\.element))
    }

    /// A records as dotted quads.
    public func ipv4(_ host: String) async throws -> DNSLookup<String> {
        try await lookup(host, type: .a) { data in
            guard case .a(let address) = data else { return nil }
            return address.description
        }
    }

    /// AAAA records as RFC 5952 text, e.g. "::1".
    public func ipv6(_ host: String) async throws -> DNSLookup<String> {
        try await lookup(host, type: .aaaa) { data in
            guard case .aaaa(let address) = data else { return nil }
            return address.description
        }
    }

    /// TXT records, each one's character-strings concatenated (RFC 7208 §3.3, RFC 6376 §3.6.2.2)
    /// and decoded as UTF-8, invalid sequences replaced.
    public func txt(_ name: String) async throws -> DNSLookup<String> {
        try await lookup(name, type: .txt) { data in
            guard case .txt(let strings) = data else { return nil }
            return String(decoding: strings.joined(), as: UTF8.self)
        }
    }

    /// Any type, as decoded RDATA: for the types the typed methods do not cover.
    public func lookup(_ name: String, type: DNSRecordType) async throws -> DNSLookup<DNSRecordData> {
        let question = try DNSQuery(id: 0, name: name, type: type).question
        let key = DNSCache.Key(name: question.name, type: type)
        if let cached = cache.withLockedValue({ $0.lookup(key, now: .now()) }) {
            return cached
        }
        let extracted = try await resolve(question)
        if let ttl = extracted.ttl {
            cache.withLockedValue { $0.insert(extracted.lookup, for: key, ttl: ttl, now: .now()) }
        }
        return extracted.lookup
    }

    private func lookup<Record>(
        _ name: String,
        type: DNSRecordType,
        _ transform: (DNSRecordData) -> Record?
    ) async throws -> DNSLookup<Record> {
        switch try await lookup(name, type: type) {
        case .records(let data):
            let records = data.compactMap(transform)
            return records.isEmpty ? .noRecords : .records(records)
        case .noRecords: return .noRecords
        case .noSuchDomain: return .noSuchDomain
        }
    }

    /// Asks each server in turn, `DNSLimits.rounds` times, until one gives NOERROR or NXDOMAIN.
    private func resolve(_ question: DNSQuestion) async throws -> DNSAnswer.Extracted {
        let subject = "DNS \(question.type) \(question.name)"
        var failures: [String] = []
        var serverFailure: String?
        var malformed: String?
        for _ in 0..<DNSLimits.rounds {
            for server in servers {
                try Task.checkCancellation()
                let query = try DNSQuery(id: .random(in: 0...UInt16.max), name: question.name, type: question.type)
                let serverName = Self.describe(server)
                let response: DNSMessage
                do {
                    let udp = try await exchangeUDP(query, server: server)
                    response = udp.header.truncated ? try await exchangeTCP(query, server: server) : udp
                } catch is CancellationError {
                    throw CancellationError()
                } catch DNSTransportFailure.malformed(let error) {
                    malformed = "\(subject): \(serverName) sent a malformed answer: \(error)"
                    continue
                } catch {
                    let reason = "\(serverName) \(DNSTransportFailure.describe(error))"
                    if !failures.contains(reason) { failures.append(reason) }
                    continue
                }
                do throws(DNSAnswer.Failure) {
                    return try DNSAnswer.extract(from: response, for: question)
                } catch {
                    switch error {
                    case .rcode(let rcode):
                        serverFailure = "\(subject): \(serverName) answered \(rcode)"
                    case .cnameChainTooLong:
                        throw DNSError.serverFailure(
                            "\(subject): \(serverName) answered with a CNAME chain that loops or is longer than \(DNSLimits.cnameLinks) links"
                        )
                    }
                }
            }
        }
        if let serverFailure { throw DNSError.serverFailure(serverFailure) }
        if let malformed { throw DNSError.malformed(malformed) }
        throw DNSError.timeout(
            "\(subject): no answer in \(DNSLimits.rounds) rounds (\(failures.joined(separator: "; ")))"
        )
    }
}
