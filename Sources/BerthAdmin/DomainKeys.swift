import BerthCore
import BerthDKIM
import BerthStore
import Foundation

/// A domain's DKIM keys (RFC 6376; ed25519 per RFC 8463): one RSA 2048 and one ed25519
/// key, made when the domain is created, replaced together by a rotation. Receivers that
/// know ed25519 check both; the rest check RSA.
public enum DomainKeys {
    /// The keys of `domain`, made first if it has none (a domain created before DKIM).
    public static func ensure(_ domain: String, in store: ConfigStore) throws -> [StoredDKIMKey] {
        let existing = try store.dkimKeys(domain: domain)
        if !existing.isEmpty { return existing }
        return try rotate(domain, in: store)
    }

    /// New keys under new selectors; the old ones stop signing at once. Publish the new
    /// records before rotating where receivers must verify every message.
    public static func rotate(_ domain: String, in store: ConfigStore, now: Date = Date()) throws -> [StoredDKIMKey] {
        // Time plus a random tag: two rotations in one second still get new selectors, and
        // a selector once published is never reused for another key.
        let stamp = selectorStamp(now) + "-" + String(UInt16.random(in: .min ... .max), radix: 16)
        let keys = [(DKIMAlgorithm.rsaSHA256, "rsa"), (.ed25519SHA256, "ed")].map { algorithm, tag in
            let key = DKIMKey.generate(algorithm, selector: "\(tag)-\(stamp)")
            return StoredDKIMKey(
                domain: domain.lowercased(), selector: key.selector, algorithm: algorithm.rawValue, privateKey: key.privateKey,
                createdAt: now)
        }
        try store.replaceDKIMKeys(domain: domain, with: keys)
        return keys
    }

    /// Every domain's signing keys, for the delivery policy; a key that does not parse
    /// is left out (and never made by Berth).
    public static func signingKeys(in store: ConfigStore, domains: [Domain]) -> [String: [DKIMKey]] {
        var result: [String: [DKIMKey]] = [:]
        for domain in domains {
            let stored = (try? store.dkimKeys(domain: domain.name)) ?? []
            result[domain.name] = stored.compactMap(key)
        }
        return result
    }

    static func key(_ stored: StoredDKIMKey) -> DKIMKey? {
        guard let algorithm = DKIMAlgorithm(rawValue: stored.algorithm) else { return nil }
        return try? DKIMKey(algorithm: algorithm, selector: stored.selector, privateKey: stored.privateKey)
    }

    static func selectorStamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMddHHmmss"
        return formatter.string(from: date)
    }

    /// `GET /api/v1/domains/{name}/dkim`.
    struct View: Encodable {
        struct Key: Encodable {
            var algorithm: String
            var selector: String
            var name: String
            var record: String
            var createdAt: Date
        }

        var domain: String
        var keys: [Key]

        init(domain: String, keys: [StoredDKIMKey]) {
            self.domain = domain
            self.keys = keys.compactMap { stored in
                guard let key = DomainKeys.key(stored) else { return nil }
                return Key(
                    algorithm: stored.algorithm, selector: stored.selector, name: "\(stored.selector)._domainkey.\(domain)",
                    record: key.dnsRecord, createdAt: stored.createdAt)
            }
        }
    }
}
