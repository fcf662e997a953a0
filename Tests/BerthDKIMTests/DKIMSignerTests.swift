@testable import BerthDKIM
import Crypto
import _CryptoExtras
import Foundation
import Testing

/// A message as Maildir keeps it: LF line ends, a folded header, repeated To.
let sampleMessage = bytes(
    "From: Alice <alice@example.com>\n"
        + "To: Bob <bob@example.org>\n"
        + "To: Carol <carol@example.org>\n"
        + "Subject: A folded\n subject line\twith  tabs\n"
        + "Date: Mon, 01 Jan 2024 10:00:00 +0000\n"
        + "Message-ID: <1@example.com>\n"
        + "MIME-Version: 1.0\n"
        + "Content-Type: text/plain; charset=utf-8\n"
        + "X-Unsigned: whatever\n"
        + "\n"
        + "Hello   Bob,  \n\ttabbed line\n\n"
        + String(repeating: "A longer line of body text, repeated to span several chunks. ", count: 40) + "\n"
        + "trailing blank lines follow\n\n\n"
)

/// The tags of a DKIM-Signature field, unfolded, values without whitespace.
func tags(of header: String) -> [String: String] {
    let unfolded = header.replacingOccurrences(of: "\r\n", with: "")
    let list = unfolded.dropFirst("DKIM-Signature:".count)
    var tags: [String: String] = [:]
    for spec in list.split(separator: ";") {
        let parts = spec.split(separator: "=", maxSplits: 1).map { $0.filter { !$0.isWhitespace } }
        if parts.count == 2 { tags[parts[0]] = parts[1] }
    }
    return tags
}

/// Verifies a signature the way RFC 6376 §6.1.3 describes, with swift-crypto's public keys:
/// independent of the signer's folding, so it checks that what is sent is what was signed.
func verifies(_ signature: String, headerBlock: [UInt8], bodyHash: [UInt8], record: String) throws -> Bool {
    let tags = tags(of: signature)
    guard tags["bh"] == Data(bodyHash).base64EncodedString() else { return false }
    let fields = DKIMHeaderField.fields(in: headerBlock)
    var used: [String: Int] = [:]
    var data: [UInt8] = []
    for name in try #require(tags["h"]).split(separator: ":").map({ $0.lowercased() }) {
        let instances = fields.filter { $0.name == name }
        let seen = used[name, default: 0]
        if seen < instances.count { data += instances[instances.count - 1 - seen].canonical }
        used[name] = seen + 1
    }
    // The field as sent, with the b= value (which runs to the end) removed.
    let withoutValue = String(signature[..<signature.range(of: "b=", options: .backwards)!.upperBound])
    let own = try #require(DKIMHeaderField(unfolded: Array(withoutValue.utf8).filter { $0 != 13 && $0 != 10 }))
    data += own.canonical.dropLast(2)
    let digest = SHA256.hash(data: data)
    let b = try #require(tags["b"])
    let signatureBytes = try #require(Data(base64Encoded: b))
    let p = try #require(Data(base64Encoded: String(record.split(separator: "p=").last!)))
    switch tags["a"] {
    case "rsa-sha256":
        return try _RSA.Signing.PublicKey(derRepresentation: p)
            .isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signatureBytes), for: digest, padding: .insecurePKCS1v1_5)
    case "ed25519-sha256":
        return try Curve25519.Signing.PublicKey(rawRepresentation: p).isValidSignature(signatureBytes, for: Data(digest))
    default:
        return false
    }
}

@Suite("The DKIM-Signature field")
struct DKIMSignerTests {
    static let keys = [DKIMKey.generate(.rsaSHA256, selector: "rsa1"), DKIMKey.generate(.ed25519SHA256, selector: "ed1")]

    @Test(arguments: keys)
    func fieldIsFoldedAtSeventyEightWithCRLF(_ key: DKIMKey) throws {
        let header = try DKIMSigner.signatureHeader(domain: "example.com", key: key, message: sampleMessage)
        #expect(header.hasPrefix("DKIM-Signature: v=1; "))
        #expect(header.hasSuffix("\r\n"))
        let lines = header.dropLast(2).components(separatedBy: "\r\n")
        for line in lines {
            #expect(line.utf8.count <= 78, "\(line)")
            #expect(!line.contains("\n") && !line.contains("\r"))
        }
        for line in lines.dropFirst() { #expect(line.hasPrefix(" "), "continuation lines start with WSP") }
    }

    @Test(arguments: keys)
    func tagsSayWhatWasSigned(_ key: DKIMKey) throws {
        let (headerBlock, bodyStart) = try DKIMMessage.split(sampleMessage)
        let bodyHash = bodyHash(Array(sampleMessage[bodyStart...]))
        let header = try DKIMSigner.signatureHeader(
            domain: "Example.COM", key: key, headerBlock: headerBlock, bodyHash: bodyHash,
            timestamp: Date(timeIntervalSince1970: 1_700_000_000.9)
        )
        let tags = tags(of: header)
        #expect(tags["v"] == "1")
        #expect(tags["a"] == key.algorithm.rawValue)
        #expect(tags["c"] == "relaxed/relaxed")
        #expect(tags["d"] == "example.com")
        #expect(tags["s"] == key.selector)
        #expect(tags["t"] == "1700000000")
        #expect(tags["h"] == "from:from:to:to:subject:date:message-id:mime-version:content-type")
        #expect(tags["bh"] == Data(bodyHash).base64EncodedString())
        #expect(tags["l"] == nil && tags["x"] == nil)
        #expect(try verifies(header, headerBlock: Array(headerBlock), bodyHash: bodyHash, record: key.dnsRecord))
    }

    @Test(arguments: keys)
    func signatureFailsForAChangedHeader(_ key: DKIMKey) throws {
        let (headerBlock, bodyStart) = try DKIMMessage.split(sampleMessage)
        let bodyHash = bodyHash(Array(sampleMessage[bodyStart...]))
        let header = try DKIMSigner.signatureHeader(domain: "example.com", key: key, headerBlock: headerBlock, bodyHash: bodyHash)
        // Relaxed canonicalisation tolerates refolding and case of names...
        let refolded = String(decoding: headerBlock, as: UTF8.self)
            .replacingOccurrences(of: "Subject: A folded\n subject", with: "SUBJECT:   A folded subject")
        #expect(try verifies(header, headerBlock: bytes(refolded), bodyHash: bodyHash, record: key.dnsRecord))
        // ...but not a changed value, nor an added From.
        let changed = refolded.replacingOccurrences(of: "tabs", with: "tabz")
        #expect(try !verifies(header, headerBlock: bytes(changed), bodyHash: bodyHash, record: key.dnsRecord))
        let addedFrom = refolded + "From: Mallory <m@example.net>\n"
        #expect(try !verifies(header, headerBlock: bytes(addedFrom), bodyHash: bodyHash, record: key.dnsRecord))
    }

    @Test func rsaSignatureIsTwoHundredFiftySixBytes() throws {
        let header = try DKIMSigner.signatureHeader(domain: "example.com", key: Self.keys[0], message: sampleMessage)
        #expect(Data(base64Encoded: try #require(tags(of: header)["b"]))?.count == 256)
    }

    @Test func longDomainStaysWholeOnItsOwnLine() throws {
        let domain = String(repeating: "a", count: 60) + "." + String(repeating: "b", count: 20) + ".example"
        let header = try DKIMSigner.signatureHeader(domain: domain, key: Self.keys[1], message: sampleMessage)
        #expect(header.contains("\r\n d=\(domain);"))
        #expect(tags(of: header)["d"] == domain)
    }

    @Test(arguments: ["", "exa mple.com", "example.com;", "a=b"])
    func badDomainIsRefused(_ domain: String) {
        #expect(throws: DKIMError.invalidDomain(domain)) {
            try DKIMSigner.signatureHeader(domain: domain, key: Self.keys[1], message: sampleMessage)
        }
    }

    @Test func badSelectorSetAfterGenerationIsRefused() {
        var key = Self.keys[1]
        key.selector = "bad selector"
        #expect(throws: DKIMError.invalidSelector("bad selector")) {
            try DKIMSigner.signatureHeader(domain: "example.com", key: key, message: sampleMessage)
        }
    }

    @Test func bodyHashMustBeADigest() {
        #expect(throws: DKIMError.invalidBodyHash(byteCount: 20)) {
            try DKIMSigner.signatureHeader(domain: "example.com", key: Self.keys[1], headerBlock: bytes("From: a@b\n"), bodyHash: Array(repeating: 0, count: 20))
        }
    }

    @Test func rfc8463ExampleBodyHash() {
        // RFC 8463 §A.3: the example message's bh=.
        let body = bytes("Hi.\r\n\r\nWe lost the game.  Are you hungry yet?\r\n\r\nJoe.\r\n")
        #expect(Data(bodyHash(body)).base64EncodedString() == "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=")
    }
}
