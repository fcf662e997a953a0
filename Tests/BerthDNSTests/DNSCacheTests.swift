import NIOCore
import Testing

@testable import BerthDNS

struct DNSCacheTests {
    let key = DNSCache.Key(name: "example.net", type: .mx)
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    @Test func entriesExpireAfterTheirTTL() {
        var cache = DNSCache(capacity: 10)
        cache.insert(.noSuchDomain, for: key, ttl: 30, now: start)
        #expect(cache.lookup(key, now: start + .seconds(29)) == .noSuchDomain)
        #expect(cache.lookup(key, now: start + .seconds(30)) == nil)
        #expect(cache.count == 0)
    }

    @Test func zeroTTLIsNotCached() {
        var cache = DNSCache(capacity: 10)
        cache.insert(.noRecords, for: key, ttl: 0, now: start)
        #expect(cache.lookup(key, now: start) == nil)
    }

    @Test func longTTLsAreCappedAtAnHour() {
        var cache = DNSCache(capacity: 10)
        cache.insert(.noRecords, for: key, ttl: 86400, now: start)
        #expect(cache.lookup(key, now: start + .seconds(3599)) == .noRecords)
        #expect(cache.lookup(key, now: start + .seconds(3600)) == nil)
    }

    @Test func aFullCacheDropsExpiredThenSoonestEntries() {
        var cache = DNSCache(capacity: 16)
        for index in 0..<16 {
            cache.insert(.noRecords, for: .init(name: "n\(index).example", type: .a), ttl: UInt32(100 + index), now: start)
        }
        #expect(cache.count == 16)
        cache.insert(.noRecords, for: .init(name: "new.example", type: .a), ttl: 500, now: start)
        // The eighth closest to expiring (two of sixteen) made room.
        #expect(cache.count == 15)
        #expect(cache.lookup(.init(name: "n0.example", type: .a), now: start) == nil)
        #expect(cache.lookup(.init(name: "n1.example", type: .a), now: start) == nil)
        #expect(cache.lookup(.init(name: "n2.example", type: .a), now: start) == .noRecords)
        #expect(cache.lookup(.init(name: "new.example", type: .a), now: start) == .noRecords)
        for index in 0..<200 {
            cache.insert(.noRecords, for: .init(name: "m\(index).example", type: .a), ttl: 60, now: start + .seconds(Int64(index)))
        }
        #expect(cache.count <= 16)
    }
}
