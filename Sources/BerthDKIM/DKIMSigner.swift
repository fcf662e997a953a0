import Crypto
import Foundation

/// Makes the DKIM-Signature header field for an outgoing message (RFC 6376 §5), with
/// relaxed/relaxed canonicalisation.
public enum DKIMSigner {
    /// Headers signed when present: RFC 6376 §5.4.1's recommended set, plus the MIME fields,
    /// Message-ID, Sender and List-Unsubscribe-Post (RFC 8058 §4 requires it be signed).
    /// A name listed k > 1 times is over-signed: `h=` names it k − 1 more times than the
    /// message has it, so a verifier sees any instance added later. "from" is listed twice,
    /// so no second From can be added to a signed message (§8.15).
    public static let defaultSignedHeaders: [String] = [
        "from", "from",
        "to", "cc", "subject", "date", "message-id",
        "reply-to", "in-reply-to", "references",
        "mime-version", "content-type", "content-transfer-encoding",
        "sender",
        "resent-date", "resent-from", "resent-to", "resent-cc",
        "list-id", "list-help", "list-unsubscribe", "list-unsubscribe-post",
        "list-subscribe", "list-post", "list-owner", "list-archive",
    ]

    /// RFC 5322 §2.1.1: lines SHOULD be no longer than 78 characters without the CRLF.
    static let maximumLineLength = 78

    /// `headerBlock`: the message's header section as it will be sent (LF or CRLF line ends,
    /// folded lines allowed), without the blank line. `bodyHash`: `DKIMBodyHasher.finalize()`
    /// over the body. Returns the whole "DKIM-Signature: ...\r\n" field, folded at 78
    /// characters with CRLF line ends, to put first in the message.
    ///
    /// Relaxed header canonicalisation (§3.4.2); several instances of one field are signed
    /// from the bottom up (§5.4.2); `t=` is `timestamp`; no `l=`, so nothing can be appended
    /// to the body; no `x=`.
    public static func signatureHeader(
        domain: String,
        key: DKIMKey,
        headerBlock: some Collection<UInt8>,
        bodyHash: [UInt8],
        timestamp: Date = Date(),
        signedHeaders: [String] = defaultSignedHeaders
    ) throws -> String {
        guard isDNSName(domain) else { throw DKIMError.invalidDomain(domain) }
        guard isDNSName(key.selector) else { throw DKIMError.invalidSelector(key.selector) }
        guard bodyHash.count == SHA256.byteCount else { throw DKIMError.invalidBodyHash(byteCount: bodyHash.count) }
        let signingKey = try key.signingKey()

        let (names, signedData) = try select(signedHeaders, from: DKIMHeaderField.fields(in: headerBlock))

        var field = FoldedField(name: "DKIM-Signature")
        field.append("v=1;")
        field.append("a=\(key.algorithm.rawValue);")
        field.append("c=relaxed/relaxed;")
        field.append("d=\(domain.lowercased());")
        field.append("s=\(key.selector);")
        field.append("t=\(Int64(timestamp.timeIntervalSince1970.rounded(.down)));")
        for (position, name) in names.enumerated() {
            let last = position == names.count - 1
            let atom = (position == 0 ? "h=" : "") + name + (last ? ";" : ":")
            // FWS is allowed around ":" in h= (§3.5), so the list may fold between names.
            field.append(atom, separator: position == 0 ? " " : "")
        }
        field.append("bh=\(Data(bodyHash).base64EncodedString());")
        field.append("b=")

        // §3.7: the signature covers the signed fields, then this field as it will be sent
        // but with an empty b= value, canonicalised, without its final CRLF.
        var hashed = signedData
        let ownField = DKIMHeaderField(unfolded: Array(field.text.utf8).filter { $0 != .cr && $0 != .lf })!
        hashed.append(contentsOf: ownField.canonical.dropLast(2))
        let signature = try signingKey.sign(SHA256.hash(data: hashed))

        field.appendBreakable(signature.base64EncodedString())
        return field.text + "\r\n"
    }

    /// Signs a whole message held in memory: splits it, hashes the body, and returns the
    /// DKIM-Signature field as `signatureHeader` does. For large messages, feed the body to a
    /// `DKIMBodyHasher` in chunks instead.
    public static func signatureHeader(
        domain: String,
        key: DKIMKey,
        message: some Collection<UInt8>,
        timestamp: Date = Date(),
        signedHeaders: [String] = defaultSignedHeaders
    ) throws -> String {
        let (headerBlock, bodyStart) = try DKIMMessage.split(message)
        var hasher = DKIMBodyHasher()
        hasher.update(message[bodyStart...])
        return try signatureHeader(
            domain: domain, key: key, headerBlock: headerBlock, bodyHash: hasher.finalize(),
            timestamp: timestamp, signedHeaders: signedHeaders
        )
    }

    /// The `h=` list and the canonical bytes it stands for (§5.4.2). Names keep the order of
    /// their first appearance in `signedHeaders`; each name is listed once per instance in
    /// the message, and over-signed names once more per extra listing. Instances are taken
    /// from the bottom up, as a verifier takes them; an over-signed entry with no instance
    /// left stands for nothing.
    static func select(_ signedHeaders: [String], from fields: [DKIMHeaderField]) throws -> (names: [String], data: [UInt8]) {
        var listings: [(name: String, count: Int)] = []
        for name in signedHeaders.map({ $0.lowercased() }) {
            if let index = listings.firstIndex(where: { $0.name == name }) {
                listings[index].count += 1
            } else {
                listings.append((name, 1))
            }
        }
        guard listings.contains(where: { $0.name == "from" }) else { throw DKIMError.fromNotSigned }

        var names: [String] = []
        var data: [UInt8] = []
        for (name, listed) in listings {
            let instances = fields.filter { $0.name == name }
            var entries = instances.count + listed - 1
            // From is always in h=, even when the message has none (§5.4).
            if name == "from" { entries = max(entries, 1) }
            for entry in 0..<entries {
                names.append(name)
                if entry < instances.count {
                    data.append(contentsOf: instances[instances.count - 1 - entry].canonical)
                }
            }
        }
        return (names, data)
    }
}

/// A header field built atom by atom, folded (CRLF + one space) before an atom that would
/// make its line longer than `DKIMSigner.maximumLineLength`.
struct FoldedField {
    private(set) var lines: [String]

    init(name: String) {
        lines = [name + ":"]
    }

    var text: String { lines.joined(separator: "\r\n") }

    /// An atom that must stay whole; an atom longer than a line gets a line of its own.
    mutating func append(_ atom: String, separator: String = " ") {
        if lines[lines.count - 1].utf8.count + separator.utf8.count + atom.utf8.count <= DKIMSigner.maximumLineLength {
            lines[lines.count - 1] += separator + atom
        } else {
            lines.append(" " + atom)
        }
    }

    /// ASCII that may fold anywhere (a base64 value: §3.5 allows FWS inside b=), filling
    /// each line to the limit.
    mutating func appendBreakable(_ value: String) {
        var rest = Substring(value)
        while !rest.isEmpty {
            var room = DKIMSigner.maximumLineLength - lines[lines.count - 1].utf8.count
            if room <= 0 {
                lines.append(" ")
                room = DKIMSigner.maximumLineLength - 1
            }
            lines[lines.count - 1] += rest.prefix(room)
            rest = rest.dropFirst(room)
        }
    }
}
