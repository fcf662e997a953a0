import NIOCore

/// Answers kept until their TTL runs out (RFC 1035 §3.2.1, RFC 2308 §5 for negative ones),
/// at most `capacity` of them. A plain value: the resolver keeps it behind a lock, and tests
/// drive it with their own clock.
struct DNSCache {
    struct Key: Hashable {
        var name: String
        var type: DNSRecordType
    }

    private struct Entry {
        var lookup: DNSLookup<DNSRecordData>
        var expires: NIODeadline
    }

    let capacity: Int
    private var entries: [Key: Entry] = [:]

    init(capacity: Int = DNSLimits.cacheEntries) {
        self.capacity = capacity
    }

    var count: Int { entries.count }

    mutating func lookup(_ key: Key, now: NIODeadline) -> DNSLookup<DNSRecordData>? {
        guard let entry = entries[key] else { return nil }
        guard entry.expires > now else {
            entries[key] = nil
            return nil
        }
        return entry.lookup
    }

    /// Stores an answer for `ttl` seconds, capped at `DNSLimits.positiveCacheTTL`; a TTL of
    /// zero (RFC 1035 §3.2.1: "should not be cached") stores nothing. When full, expired
    /// entries go first, then the eighth closest to expiring, so a full cache is not
    /// scanned on every insert.
    mutating func insert(_ lookup: DNSLookup<DNSRecordData>, for key: Key, ttl: UInt32, now: NIODeadline) {
        guard ttl > 0, capacity > 0 else { return }
        let expires = now + .seconds(Int64(min(ttl, DNSLimits.positiveCacheTTL)))
        if entries[key] == nil && entries.count >= capacity {
            entries = entries.filter { $0.value.expires > now }
            if entries.count >= capacity {
                let soonest = entries.sorted { $0.value.expires < $1.value.expires }.prefix(max(1, capacity / 8))
                for (key, _) in soonest { entries[key] = nil }
            }
        }
        entries[key] = Entry(lookup: lookup, expires: expires)
    }
}
