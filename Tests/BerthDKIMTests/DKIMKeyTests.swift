@testable import BerthDKIM
import Crypto
import _CryptoExtras
import Foundation
import Testing

@Suite("DKIM keys and their DNS records")
struct DKIMKeyTests {
    @Test func generatedRSAKeyRoundTripsAndPublishesItsSPKI() throws {
        let key = DKIMKey.generate(.rsaSHA256, selector: "s2024")
        #expect(key.privateKey.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        #expect(try DKIMKey(algorithm: .rsaSHA256, selector: "s2024", privateKey: key.privateKey) == key)

        let record = key.dnsRecord
        #expect(record.hasPrefix("v=DKIM1; k=rsa; p="))
        let der = try #require(Data(base64Encoded: String(record.dropFirst("v=DKIM1; k=rsa; p=".count))))
        let publicKey = try _RSA.Signing.PublicKey(derRepresentation: der)
        #expect(publicKey.keySizeInBits == 2048)
        #expect(der == publicKey.derRepresentation, "p= is SubjectPublicKeyInfo, not PKCS#1 RSAPublicKey")
    }

    @Test func pkcs1PEMIsAccepted() throws {
        let generated = DKIMKey.generate(.rsaSHA256, selector: "a")
        let pkcs1 = try _RSA.Signing.PrivateKey(pemRepresentation: generated.privateKey).pemRepresentation
        #expect(pkcs1.hasPrefix("-----BEGIN RSA PRIVATE KEY-----"))
        let key = try DKIMKey(algorithm: .rsaSHA256, selector: "a", privateKey: pkcs1 + "\n")
        #expect(key.dnsRecord == generated.dnsRecord)
    }

    @Test func generatedEd25519KeyPublishesTheRawPublicKey() throws {
        let key = DKIMKey.generate(.ed25519SHA256, selector: "ed")
        let seed = try #require(Data(base64Encoded: key.privateKey))
        #expect(seed.count == 32)
        #expect(try DKIMKey(algorithm: .ed25519SHA256, selector: "ed", privateKey: key.privateKey) == key)

        let record = key.dnsRecord
        #expect(record.hasPrefix("v=DKIM1; k=ed25519; p="))
        let raw = try #require(Data(base64Encoded: String(record.dropFirst("v=DKIM1; k=ed25519; p=".count))))
        #expect(raw == (try Curve25519.Signing.PrivateKey(rawRepresentation: seed)).publicKey.rawRepresentation)
    }

    @Test func rfc8463ExampleKeyGivesItsPublishedRecord() throws {
        // RFC 8463 §A.2 and §A.3: the example seed and the record published for it.
        let key = try DKIMKey(algorithm: .ed25519SHA256, selector: "brisbane",
                              privateKey: "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=")
        #expect(key.dnsRecord == "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
    }

    struct BadKey: CustomTestStringConvertible, Sendable {
        let label: String
        let algorithm: DKIMAlgorithm
        let text: String
        var testDescription: String { label }
    }

    static let badKeys: [BadKey] = [
        .init(label: "RSA: not PEM", algorithm: .rsaSHA256, text: "hello"),
        .init(label: "RSA: PEM of something else", algorithm: .rsaSHA256, text: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
        .init(label: "RSA: encrypted PEM", algorithm: .rsaSHA256, text: "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"),
        .init(label: "RSA: an ed25519 seed", algorithm: .rsaSHA256, text: "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="),
        .init(label: "ed25519: not base64", algorithm: .ed25519SHA256, text: "not base64!"),
        .init(label: "ed25519: 31 bytes", algorithm: .ed25519SHA256, text: Data(repeating: 1, count: 31).base64EncodedString()),
        .init(label: "ed25519: 64 bytes", algorithm: .ed25519SHA256, text: Data(repeating: 1, count: 64).base64EncodedString()),
        .init(label: "ed25519: an RSA PEM", algorithm: .ed25519SHA256, text: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
    ]

    @Test("a key that does not parse is refused", arguments: badKeys)
    func badKeyIsRefused(_ bad: BadKey) {
        #expect {
            try DKIMKey(algorithm: bad.algorithm, selector: "s", privateKey: bad.text)
        } throws: { error in
            guard case DKIMError.invalidPrivateKey(bad.algorithm, _) = error else { return false }
            // The message names the problem but never repeats the key.
            return !String(describing: error).contains(bad.text)
        }
    }

    @Test func rsaKeyBelow2048BitsIsRefused() throws {
        let small = try _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: 1024)).pkcs8PEMRepresentation
        #expect {
            try DKIMKey(algorithm: .rsaSHA256, selector: "s", privateKey: small)
        } throws: { error in
            String(describing: error).contains("1024 bits")
        }
    }

    @Test(arguments: ["", "a b", "a;b", "a=b", ".a", "a..b", "-a", "a-", String(repeating: "x", count: 64)])
    func selectorThatIsNotADNSNameIsRefused(_ selector: String) {
        #expect(throws: DKIMError.invalidSelector(selector)) {
            try DKIMKey(algorithm: .ed25519SHA256, selector: selector, privateKey: "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=")
        }
    }

    @Test func algorithmNamesAreTheDKIMTagValues() {
        #expect(DKIMAlgorithm.allCases.map(\.rawValue) == ["rsa-sha256", "ed25519-sha256"])
    }
}
