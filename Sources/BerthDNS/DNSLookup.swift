/// The outcome of a lookup that got an answer (RFC 2308 §2 names the negative cases).
public enum DNSLookup<Record: Sendable & Hashable>: Sendable, Hashable {
    /// NOERROR with at least one matching record.
    case records([Record])
    /// NOERROR and no record of that type (NODATA).
    case noRecords
    /// NXDOMAIN (RCODE 3).
    case noSuchDomain

    /// The records, or none for both negative answers.
    public var recordsOrEmpty: [Record] {
        if case .records(let records) = self { return records }
        return []
    }
}

/// An MX record (RFC 1035 §3.3.9). `exchange` is lower-case without the trailing dot, and ""
/// for the null MX "." of RFC 7505: the domain accepts no mail.
public struct MXRecord: Sendable, Hashable {
    public var preference: UInt16
    public var exchange: String

    public init(preference: UInt16, exchange: String) {
        self.preference = preference
        self.exchange = exchange
    }
}

/// Why a lookup has no answer. Each message names the query, e.g. "MX example.com".
public enum DNSError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No server answered within the timeout, in any round.
    case timeout(String)
    /// SERVFAIL, REFUSED, FORMERR, NOTIMP or another RCODE, or a CNAME loop; the text names the
    /// query, the server and the code.
    case serverFailure(String)
    /// A response that matched the query but did not parse.
    case malformed(String)
    /// A name that cannot be asked about (empty, over 255 octets, a label over 63, not ASCII).
    case invalidName(name: String, reason: String)
    /// A `--dns` value that is not an IP address with an optional port.
    case invalidServer(String)

    public var description: String {
        switch self {
        case .timeout(let text): text
        case .serverFailure(let text): text
        case .malformed(let text): text
        case .invalidName(let name, let reason): "DNS name \"\(name)\" cannot be looked up: \(reason)"
        case .invalidServer(let text): text
        }
    }
}

/// Reading the records of one type out of a response, following CNAMEs (RFC 1034 §3.6.2,
/// §5.3.3) only inside the answer section: a recursive resolver returns the whole chain.
enum DNSAnswer {
    /// The outcome and the TTL it may be cached for (nil: do not cache).
    struct Extracted: Sendable, Hashable {
        var lookup: DNSLookup<DNSRecordData>
        var ttl: UInt32?
    }

    /// Why a NOERROR/NXDOMAIN response still gives no answer.
    enum Failure: Error, Hashable {
        case rcode(DNSResponseCode)
        case cnameChainTooLong
    }

    /// Records of `question.type` whose owner is the question's name or a CNAME target on the
    /// chain from it, at most `DNSLimits.cnameLinks` links.
    static func extract(from response: DNSMessage, for question: DNSQuestion) throws(Failure) -> Extracted {
        switch response.header.rcode {
        case .noError, .nameError: break
        default: throw .rcode(response.header.rcode)
        }
        var owners: Set<String> = [question.name]
        var current = question.name
        var ttl = UInt32.max
        var links = 0
        while let link = response.answers.first(where: { $0.name == current && $0.type == .cname && $0.recordClass == question.recordClass }),
              case .cname(let target) = link.data, question.type != .cname {
            links += 1
            guard links <= DNSLimits.cnameLinks, !owners.contains(target) else { throw .cnameChainTooLong }
            ttl = min(ttl, link.ttl)
            owners.insert(target)
            current = target
        }
        if response.header.rcode == .nameError {
            return Extracted(lookup: .noSuchDomain, ttl: negativeTTL(response))
        }
        let matching = response.answers.filter {
            $0.type == question.type && $0.recordClass == question.recordClass && owners.contains($0.name)
        }
        guard !matching.isEmpty else {
            return Extracted(lookup: .noRecords, ttl: negativeTTL(response))
        }
        var seen: Set<DNSRecordData> = []
        var records: [DNSRecordData] = []
        for record in matching {
            ttl = min(ttl, record.ttl)
            if seen.insert(record.data).inserted { records.append(record.data) }
        }
        return Extracted(lookup: .records(records), ttl: ttl)
    }

    /// RFC 2308 §5: a negative answer lives min(SOA TTL, SOA MINIMUM), capped at
    /// `DNSLimits.negativeCacheTTL`; without an SOA in the authority section it is not cached.
    static func negativeTTL(_ response: DNSMessage) -> UInt32? {
        for record in response.authorities {
            if case .soa(_, _, _, let minimum) = record.data {
                return min(record.ttl, minimum, DNSLimits.negativeCacheTTL)
            }
        }
        return nil
    }
}
